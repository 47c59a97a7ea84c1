"""`kubectl get events -o json` becomes events rows: the last occurrence's time, the workload
as entity, scaling events as kind scale."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aisre.datasets.ingest import parse_k8s_events, workload_from_pod
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
OWN = Path(__file__).parent / "data" / "k8s_events_sample.json"


def shared(name: str) -> Path:
    path = SHARED / "formats" / "k8s_events" / name
    if not path.is_file():
        pytest.skip(f"shared format sample {path} is absent (set AISRE_SHARED)")
    return path


def test_own_sample():
    """Our hand-made List (written from the core/v1 Event schema): 6 events, sorted by time."""
    ev = parse_k8s_events(OWN)
    assert list(ev.columns) == ["time", "entity", "kind", "reason", "message", "attributes"]
    assert ev["reason"].tolist() == ["SuccessfulRescale", "SuccessfulCreate", "OOMKilling", "Pulled", "Unhealthy", "FailedScheduling"]
    assert ev["entity"].tolist() == ["frontend", "frontend", "worker-2", "node-exporter", "redis-cart", "frontend"]
    assert ev["kind"].tolist() == ["scale"] + ["k8s"] * 5
    assert ev["time"].is_monotonic_increasing
    # series.lastObservedTime of the events.k8s.io-style scheduler event: 2025-03-02T14:04:36.918004Z
    assert ev["time"].iloc[-1] == pytest.approx(1740924276.918004, abs=1e-6)
    unhealthy = json.loads(ev[ev["reason"] == "Unhealthy"]["attributes"].iloc[0])
    assert unhealthy == {
        "namespace": "boutique", "object_kind": "Pod", "object_name": "redis-cart-0", "count": 3,
        "type": "Warning", "first_time": 1740924070.0, "component": "kubelet", "host": "worker-2",
        "field_path": "spec.containers{redis}", "uid": "aa000004-1111-4222-8333-444455556666",
    }  # fmt: skip
    scheduler = json.loads(ev["attributes"].iloc[-1])
    assert scheduler["count"] == 6 and scheduler["component"] == "default-scheduler"


def test_handwritten_shared_list():
    ev = parse_k8s_events(shared("HANDWRITTEN-kubectl-get-events-o-json.json"))
    assert len(ev) == 11
    assert (ev["kind"] == "scale").sum() == 2
    assert set(ev["entity"]) == {"checkout", "ip-10-0-3-17.ec2.internal"}
    scheduled = ev[ev["reason"] == "Scheduled"]
    assert scheduled["time"].iloc[0] == pytest.approx(1715680682.413729, abs=1e-6)  # eventTime, MicroTime
    backoff = json.loads(ev[ev["reason"] == "BackOff"]["attributes"].iloc[0])
    assert backoff["count"] == 14
    assert ev[ev["reason"] == "SystemOOM"]["entity"].iloc[0] == "ip-10-0-3-17.ec2.internal"


def test_single_real_event():
    """The k9s sample is one Event, not a List; the CronJob pod maps to its CronJob."""
    ev = parse_k8s_events(shared("k9s-testdata-ev.json"))
    assert ev[["entity", "kind", "reason"]].values.tolist() == [["hello", "k8s", "Pulled"]]
    assert ev["time"].iloc[0] == 1567197785.0  # 2019-08-30T20:43:05Z


def test_events_k8s_io_shape():
    doc = {"apiVersion": "events.k8s.io/v1", "kind": "EventList", "items": [{
        "kind": "Event", "apiVersion": "events.k8s.io/v1", "eventTime": None,
        "deprecatedFirstTimestamp": "2024-05-14T10:00:00Z", "deprecatedLastTimestamp": "2024-05-14T10:05:00Z",
        "deprecatedCount": 7, "deprecatedSource": {"component": "kubelet", "host": "n1"},
        "regarding": {"kind": "ReplicaSet", "name": "cart-7b9c6d5f48", "namespace": "shop"},
        "reason": "FailedCreate", "note": "quota exceeded", "type": "Warning", "reportingController": "replicaset-controller",
        "metadata": {"name": "x", "namespace": "shop"},
    }]}  # fmt: skip
    ev = parse_k8s_events(doc)
    assert ev[["entity", "reason", "message"]].values.tolist() == [["cart", "FailedCreate", "quota exceeded"]]
    assert ev["time"].iloc[0] == 1715681100.0
    assert json.loads(ev["attributes"].iloc[0])["count"] == 7


@pytest.mark.parametrize(
    ("pod", "workload"),
    [
        ("checkout-6d8f7c9b54-x7k2p", "checkout"),
        ("api-gateway", "api-gateway"),
        ("redis-cart-0", "redis-cart"),
        ("node-exporter-x8wvn", "node-exporter"),
        ("hello-1567197780-mn4mv", "hello"),
        ("payment-service-5f9c7b8d46-q9wzl", "payment-service"),
    ],
)
def test_pod_name_rule(pod, workload):
    assert workload_from_pod(pod) == workload


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"kind": "List"}, "items"),
        ({"kind": "List", "items": [{"kind": "Event", "reason": "X"}]}, "items[0].regarding"),
        ({"items": [{"involvedObject": {"kind": "Pod"}, "lastTimestamp": "2024-01-01T00:00:00Z"}]}, "items[0].involvedObject.name"),
        ({"items": [{"involvedObject": {"name": "a"}, "lastTimestamp": "2024-02-30T00:00:00Z"}]}, "items[0].lastTimestamp"),
        ({"items": [{"involvedObject": {"name": "a"}}]}, "items[0].lastTimestamp"),
        ({"items": [{"involvedObject": {"name": "a"}, "lastTimestamp": "2024-01-01T00:00:00Z", "count": "many"}]}, "items[0].count"),
    ],
)
def test_malformed_events_name_the_field(doc, field):
    with pytest.raises(DataError) as err:
        parse_k8s_events(doc)
    assert err.value.field == field
