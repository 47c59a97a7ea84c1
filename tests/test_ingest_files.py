"""Format detection, read_json, and ingest_files merging a mix of files into one Case."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import aisre.datasets.ingest as ingest
from aisre.case import load_case, save_case
from aisre.datasets.ingest import FORMATS, detect_format, ingest_files, read_json
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FORMATS_DIR = SHARED / "formats"
OWN_EVENTS = Path(__file__).parent / "data" / "k8s_events_sample.json"

EXPECTED = {
    "alertmanager_webhook/prom2teams-all_ok_multiple.json": "alertmanager",
    "alertmanager_webhook/prom2teams-with_common_items.json": "alertmanager",
    "alertmanager_webhook/prometheus-msteams-prom_post_request.json": "alertmanager",
    "alertmanager_webhook/promgen-alertmanager-v3.json": "alertmanager",
    "alertmanager_webhook/zulip-alertmanager-alert.json": "alertmanager",
    "alertmanager_webhook/zulip-grafana-alert-9-mixed.json": "alertmanager",
    "prometheus_api/jaeger-service_span_name_datapoint_response.json": "prometheus",
    "prometheus_api/jaeger-warning_response.json": "prometheus",
    "prometheus_api/prometheus-docs-api-query-vector.json": "prometheus",
    "prometheus_api/prometheus-docs-api-query_range-matrix.json": "prometheus",
    "otlp_json/jaeger-apiv3-GetTrace.json": "otlp-traces",
    "otlp_json/jaeger-otlp2jaeger-in.json": "otlp-traces",
    "otlp_json/jaeger-ui-otlp2jaeger-multi-in-combined.json": "otlp-traces",
    "otlp_json/otel-proto-examples-trace.json": "otlp-traces",
    "otlp_json/otel-proto-examples-logs.json": "otlp-logs",
    "otlp_json/otel-proto-examples-events.json": "otlp-logs",
    "otlp_json/otel-proto-examples-metrics.json": "otlp-metrics",
    "jaeger_json/jaeger-otlp2jaeger-out.json": "jaeger",
    "jaeger_json/jaeger-ui_01.json": "jaeger",
    "jaeger_json/jaeger-ui-spansAmongEachOther.json": "jaeger",
    "k8s_events/HANDWRITTEN-kubectl-get-events-o-json.json": "k8s-events",
    "k8s_events/k9s-testdata-ev.json": "k8s-events",
    "github_webhooks/deployment.payload.json": "github-deployment",
    "github_webhooks/deployment.gh-pages.payload.json": "github-deployment",
    "github_webhooks/deployment_status.payload.json": "github-deployment-status",
    "github_webhooks/deployment_status.gh-pages.payload.json": "github-deployment-status",
}


@pytest.fixture
def formats_dir() -> Path:
    if not FORMATS_DIR.is_dir():
        pytest.skip(f"shared format samples {FORMATS_DIR} are absent (set AISRE_SHARED)")
    return FORMATS_DIR


def test_every_shared_json_sample_is_detected(formats_dir):
    found = {str(p.relative_to(formats_dir)) for p in formats_dir.glob("*/*.json")}
    assert found == set(EXPECTED), "a shared sample was added or removed: extend EXPECTED"
    for name, fmt in EXPECTED.items():
        assert detect_format(read_json(formats_dir / name)) == fmt, name


def test_own_sample_detected():
    assert detect_format(read_json(OWN_EVENTS)) == "k8s-events"


def test_unknown_documents_list_what_was_tried():
    with pytest.raises(DataError) as err:
        detect_format({"hello": "world"})
    for fmt in FORMATS:
        assert fmt in str(err.value)
    with pytest.raises(DataError, match="empty array"):
        detect_format([])
    with pytest.raises(DataError, match="not all of one known format"):
        detect_format([{"alerts": []}, {"resourceSpans": []}])


def test_read_json_errors(tmp_path):
    with pytest.raises(DataError, match="no such file") as err:
        read_json(tmp_path / "nope.json")
    assert err.value.path == str(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\xff\xfe{")
    with pytest.raises(DataError, match="not UTF-8"):
        read_json(bad)
    bad.write_text("")
    with pytest.raises(DataError, match="empty"):
        read_json(bad)
    bad.write_text('{"a": 1,}')
    with pytest.raises(DataError, match="not valid JSON"):
        read_json(bad)
    lines = tmp_path / "lines.jsonl"
    lines.write_text('{"a": 1}\n{"b": 2}\n')
    assert read_json(lines) == [{"a": 1}, {"b": 2}]


def test_ingest_everything_into_one_case(formats_dir, tmp_path):
    """Every shared sample plus our own events file merge into one Case that saves and reloads."""
    paths = [formats_dir / name for name in EXPECTED] + [OWN_EVENTS]
    case = ingest_files(paths, case_id="mix", received_at=1.8e9)
    assert case.id == "mix" and case.source == "ingest"
    # 2 + 1 + 1 + 2 + 2 + 3 alerts; the two prom2teams alerts sharing a fingerprint differ in labels
    assert len(case.alerts) == 11
    assert len(case.changes) == 1  # four payloads, one deployment id
    assert len(case.events) == 4 + 11 + 1 + 6
    # spans: 1 (apiv3) + 1 (otlp2jaeger, also in Jaeger form: one after dedupe) + 4 + 1 + 5 + 12
    assert len(case.spans) == 24
    assert len(case.logs) == 2
    assert len(case.metrics) == 6 + 1 + 2 + 6
    assert case.window[0] == pytest.approx(1435781430.781)  # the Prometheus docs example, 2015
    assert case.window[1] == pytest.approx(1740924276.918004, abs=1e-6)  # our events sample, 2025
    assert case.detected_at == pytest.approx(1461269677.698)  # the promgen alert, 2016
    assert case.topology is not None
    assert ("api-gateway", "customers-service", "calls") in case.topology.edges()
    assert case.meta["files"][str(OWN_EVENTS)] == "k8s-events"
    assert any("warning0" in w for w in case.meta["warnings"])
    back = load_case(save_case(case, tmp_path / "case"))
    assert len(back.spans) == 24 and len(back.alerts) == 11


def test_ingest_files_names_the_bad_file(tmp_path):
    good = tmp_path / "alerts.json"
    good.write_text(json.dumps({"alerts": [{"startsAt": "2024-01-01T00:00:00Z", "labels": {"service": "a"}}]}))
    odd = tmp_path / "odd.json"
    odd.write_text('{"x": 1}')
    with pytest.raises(DataError) as err:
        ingest_files([good, odd])
    assert err.value.path == str(odd)
    broken = tmp_path / "broken.json"
    broken.write_text('{"alerts": [{"startsAt": "never"}]}')
    with pytest.raises(DataError) as err:
        ingest_files([good, broken])
    assert err.value.path == str(broken) and err.value.field == "alerts[0].startsAt"
    with pytest.raises(DataError, match="no files"):
        ingest_files([])
    case = ingest_files([good])
    assert case.id.startswith("ingest-") and case.window == (1704067200.0, 1704067200.0)
    assert case.topology is None


def test_public_names_sorted():
    assert ingest.__all__ == sorted(ingest.__all__)
    for name in ingest.__all__:
        assert hasattr(ingest, name)
