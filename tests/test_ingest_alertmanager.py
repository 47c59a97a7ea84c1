"""Alertmanager webhook payloads become Alerts: times in unix seconds, zero endsAt as None,
per-alert status first, fingerprints kept or computed as Alertmanager does."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from aisre.case import Alert
from aisre.datasets.ingest import alert_fingerprint, alert_to_webhook, dedupe_alerts, parse_alertmanager
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLES = SHARED / "formats" / "alertmanager_webhook"


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"shared format sample {path} is absent (set AISRE_SHARED)")
    return path


def test_zulip_v4_group_zero_end_and_nanoseconds():
    """A v4 group: two firing alerts, nanosecond startsAt, the zero endsAt read as None."""
    alerts = parse_alertmanager(sample("zulip-alertmanager-alert.json"))
    assert [a.fingerprint for a in alerts] == ["a1bc48475b20e73d", "c2ea85182f28cbd9"]
    assert [a.status for a in alerts] == ["firing", "firing"]
    assert alerts[0].starts_at == pytest.approx(1580948278.432911, abs=1e-6)  # 2020-02-06T00:17:58.432911368Z
    assert alerts[0].ends_at is None
    assert alerts[0].severity == "critical"
    assert alerts[0].service == "andromeda"  # from the host label, the last resort
    assert alerts[0].annotations["description"] == "CPU core temperature is 34.75C"


def test_computed_fingerprint_is_alertmanagers():
    """The fallback fingerprint is Alertmanager's own: it reproduces the real one in the sample."""
    alerts = parse_alertmanager(sample("zulip-alertmanager-alert.json"))
    assert alert_fingerprint(alerts[0].labels) == "a1bc48475b20e73d"


def test_grafana_mixed_per_alert_status_wins():
    """Grafana's variant says firing at the top, but two of its three alerts are resolved."""
    path = sample("zulip-grafana-alert-9-mixed.json")
    assert json.loads(path.read_text())["status"] == "firing"
    alerts = parse_alertmanager(path)
    assert [a.status for a in alerts] == ["resolved", "resolved", "firing"]
    assert alerts[0].ends_at == pytest.approx(1655428108.652747, abs=1e-6)  # 2022-06-17T01:08:28.652747827Z
    assert alerts[2].ends_at is None
    assert [a.service for a in alerts] == ["rabbitmq", "rabbitmq", None]  # job; the last has no service label
    assert alerts[2].fingerprint == "6f9cd313db421ef1"


def test_escaped_ampersand_and_pod_labels():
    """The \\u0026 escape decodes; namespace/pod_name labels give the workload as service."""
    alerts = parse_alertmanager(sample("prom2teams-with_common_items.json"))
    assert len(alerts) == 1
    a = alerts[0]
    assert a.status == "resolved"
    assert a.service == "alertmanager-ot-mon-prometheus-operator-alertmanager"  # StatefulSet ordinal stripped
    assert a.ends_at - a.starts_at == pytest.approx(60.0)
    assert a.starts_at == pytest.approx(1548707183.868893, abs=1e-6)  # 2019-01-28T20:26:23.868893Z


def test_fractional_digits_and_shared_fingerprint():
    """9, 3, 6 and 5 fractional digits all parse; two different alerts sharing one fingerprint
    both survive dedupe."""
    alerts = parse_alertmanager(sample("prom2teams-all_ok_multiple.json"))
    assert [a.fingerprint for a in alerts] == ["dd19ae3d4e06ac55"] * 2
    assert alerts[0].starts_at == pytest.approx(1494313297.803, abs=1e-6)
    assert alerts[0].ends_at == pytest.approx(1494313717.818, abs=1e-6)
    assert alerts[1].ends_at == pytest.approx(1494313717.81827, abs=1e-6)
    assert [a.severity for a in alerts] == ["severe", "critical"]
    assert [a.service for a in alerts] == ["cs30.evilcorp", "cs31.evilcorp"]
    assert len(dedupe_alerts(alerts)) == 2


def test_old_payload_without_status_or_fingerprint():
    """No per-alert status: zero endsAt means firing; no fingerprint: the label hash; a
    -05:00 offset converts to UTC."""
    path = sample("prometheus-msteams-prom_post_request.json")
    alerts = parse_alertmanager(path, received_at=1.6e9)
    assert len(alerts) == 1
    a = alerts[0]
    assert a.status == "firing"
    assert a.fingerprint == alert_fingerprint(a.labels)
    assert len(a.fingerprint) == 16
    assert a.starts_at == pytest.approx(1520422401.873077, abs=1e-6)  # 06:33:21.873077559-05:00 = 11:33:21 UTC
    assert a.service == "docker_nodes"


def test_legacy_v3_integer_group_key():
    """Version 3 with an integer groupKey; the firing alert keeps its non-zero endsAt."""
    alerts = parse_alertmanager(sample("promgen-alertmanager-v3.json"))
    assert [a.status for a in alerts] == ["firing", "resolved"]
    assert [a.service for a in alerts] == ["Service 1", "Service 2"]
    assert alerts[0].ends_at == pytest.approx(1461269737.698)
    assert alerts[1].annotations == {}


def _payload(**alert):
    base = {"labels": {"alertname": "X", "service": "cart"}, "startsAt": "2024-01-01T00:00:00Z", "endsAt": "2024-01-01T00:10:00Z"}
    base.update(alert)
    return {"version": "4", "status": "firing", "alerts": [base]}


def test_status_derived_from_ends_at_and_receive_time():
    """Without a per-alert status, an end before the receive time means resolved."""
    doc = _payload()
    t_end = 1704067800.0
    assert parse_alertmanager(doc, received_at=t_end + 1)[0].status == "resolved"
    assert parse_alertmanager(doc, received_at=t_end - 1)[0].status == "firing"
    resolved_group = {**doc, "status": "resolved"}
    assert parse_alertmanager(resolved_group, received_at=t_end - 1)[0].status == "resolved"


def test_dedupe_resends():
    """The same alert delivered twice (HA replicas) is kept once; a resolution is new."""
    doc = _payload(status="firing", fingerprint="abc")
    again = copy.deepcopy(doc)
    resolved = _payload(status="resolved", fingerprint="abc")
    alerts = parse_alertmanager([doc, again, resolved])
    assert len(alerts) == 3
    kept = dedupe_alerts(alerts)
    assert [a.status for a in kept] == ["firing", "resolved"]


def test_service_order():
    """service beats app beats job; a Deployment pod name loses its hash and suffix."""
    def service(labels, common=None):
        doc = {"alerts": [{"labels": labels, "startsAt": "2024-01-01T00:00:00Z"}], "commonLabels": common or {}}
        return parse_alertmanager(doc)[0].service

    assert service({"service": "a", "app": "b", "job": "c"}) == "a"
    assert service({"app": "b", "job": "c"}) == "b"
    assert service({"job": "c", "instance": "h:9100"}) == "c"
    assert service({"namespace": "shop", "pod": "checkout-6d8f7c9b54-x7k2p"}) == "checkout"
    assert service({"namespace": "shop", "deployment": "cart", "pod": "x-0"}) == "cart"
    assert service({"instance": "h:9100"}) == "h:9100"
    assert service({"alertname": "x"}, {"service": "from-common"}) == "from-common"


def test_round_trip_through_webhook():
    """alert_to_webhook renders a v4 payload that parses back to the same alerts."""
    alerts = [
        Alert("f1", {"alertname": "HighLatency", "service": "cart"}, {"summary": "slow"}, "firing", 1700000000.123456, None, "cart", "critical"),
        Alert("f2", {"alertname": "Down"}, {}, "resolved", 1700000100.5, 1700000200.25, "payment", "warning"),
    ]
    payload = alert_to_webhook(alerts, receiver="test")
    assert payload["version"] == "4"
    assert payload["status"] == "firing"
    assert payload["alerts"][0]["endsAt"] == "0001-01-01T00:00:00Z"
    assert payload["alerts"][0]["startsAt"] == "2023-11-14T22:13:20.123456Z"
    back = parse_alertmanager(json.dumps(payload), received_at=1700000150.0)
    assert [a.fingerprint for a in back] == ["f1", "f2"]
    for a, b in zip(alerts, back, strict=True):
        assert (b.status, b.service, b.severity, b.ends_at is None) == (a.status, a.service, a.severity, a.ends_at is None)
        assert b.starts_at == pytest.approx(a.starts_at, abs=1e-6)
        assert b.annotations == a.annotations
    assert back[1].ends_at == pytest.approx(1700000200.25)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"receiver": "x"}, "alerts"),
        ({"alerts": {}}, "alerts"),
        ({"alerts": [{"labels": {}}]}, "alerts[0].startsAt"),
        ({"alerts": [{"startsAt": "yesterday"}]}, "alerts[0].startsAt"),
        ({"alerts": [{"startsAt": 1700000000}]}, "alerts[0].startsAt"),
        ({"alerts": [{"startsAt": "2024-01-01T00:00:00Z", "endsAt": "soon"}]}, "alerts[0].endsAt"),
        ({"alerts": [{"startsAt": "2024-01-01T00:00:00Z", "status": "pending"}]}, "alerts[0].status"),
        ({"alerts": [{"startsAt": "2024-01-01T00:00:00Z", "labels": {"a": {"b": 1}}}]}, "alerts[0].labels.a"),
        ({"alerts": [{"startsAt": "2024-01-01T00:00:00Z"}, {"startsAt": "x"}, {}, {}]}, "alerts[1].startsAt"),
    ],
)
def test_malformed_payloads_name_the_field(doc, field):
    with pytest.raises(DataError) as err:
        parse_alertmanager(doc)
    assert err.value.field == field
    assert field in str(err.value)


def test_errors_name_the_file(tmp_path):
    bad = tmp_path / "alerts.json"
    bad.write_text('{"alerts": [{"startsAt": "2024-13-01T00:00:00Z"}]}')
    with pytest.raises(DataError) as err:
        parse_alertmanager(bad)
    assert err.value.path == str(bad)
    assert "alerts[0].startsAt" in str(err.value)
    with pytest.raises(DataError, match="no such file"):
        parse_alertmanager(tmp_path / "missing.json")
    (tmp_path / "trunc.json").write_text('{"alerts": [')
    with pytest.raises(DataError, match="not valid JSON"):
        parse_alertmanager(tmp_path / "trunc.json")
