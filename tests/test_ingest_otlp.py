"""OTLP/JSON traces, logs and metrics become spans, logs and long metrics."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from aisre.datasets.ingest import parse_otlp_logs, parse_otlp_metrics, parse_otlp_traces
from aisre.datasets.ingest.otlp import normalise_id
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLES = SHARED / "formats" / "otlp_json"


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"shared format sample {path} is absent (set AISRE_SHARED)")
    return path


def test_proto_example_trace():
    """Upper-case hex ids are lower-cased; nanosecond strings become seconds."""
    spans = parse_otlp_traces(sample("otel-proto-examples-trace.json"))
    assert len(spans) == 1
    s = spans.iloc[0]
    assert (s.trace_id, s.span_id, s.parent_id) == ("5b8efff798038103d269b633813fc60c", "eee19b7ec3c1b174", "eee19b7ec3c1b173")
    assert (s.service, s.operation, s.status) == ("my.service", "I'm a server span", "unset")
    assert s.start == 1544712660.0 and s.duration == 1.0
    assert json.loads(s.attributes) == {"my.span.attr": "some value", "otel.scope.name": "my.library", "span.kind": "server"}


def test_duplicate_spans_and_missing_parent():
    """Two identical spans are kept once; the parent that is not in the batch stays as an id."""
    spans = parse_otlp_traces(sample("jaeger-otlp2jaeger-in.json"))
    assert len(spans) == 1
    s = spans.iloc[0]
    assert s.parent_id == "909541b92cf05311"
    assert s.service == "telemetrygen"
    assert s.duration == pytest.approx(123e-6)
    assert s.start == pytest.approx(1706678909.209712, abs=1e-6)


def test_repeated_resources_and_empty_root_parent():
    spans = parse_otlp_traces(sample("jaeger-ui-otlp2jaeger-multi-in-combined.json"))
    assert len(spans) == 4
    assert set(spans["service"]) == {"example-trace"}
    roots = spans[spans["parent_id"].isna()]
    assert roots["operation"].tolist() == ["main"]
    assert roots["duration"].iloc[0] == pytest.approx(0.176321958, abs=1e-6)


def test_apiv3_wrapper_without_times_or_service():
    """{"result": ...}; zero values omitted: NaN times, unknown_service, status code 2 = error."""
    spans = parse_otlp_traces(sample("jaeger-apiv3-GetTrace.json"))
    s = spans.iloc[0]
    assert (s.trace_id, s.span_id, s.service, s.status) == ("00000000000000000000000000000001", "0000000000000002", "unknown_service", "error")
    assert math.isnan(s.start) and math.isnan(s.duration)


def test_proto_example_logs_and_events():
    logs = parse_otlp_logs(sample("otel-proto-examples-logs.json"))
    r = logs.iloc[0]
    assert (r.time, r.entity, r.level, r.message, r.trace_id) == (1544712660.3, "my.service", "info", "Example log record", "5b8efff798038103d269b633813fc60c")
    events = parse_otlp_logs(sample("otel-proto-examples-events.json"))
    body = json.loads(events.iloc[0].message)
    assert body["title"] == "Free Online GUID Generator" and body["type"] == 0


def test_proto_example_metrics():
    """Sum and gauge give a row each; histograms give _count and _sum."""
    m = parse_otlp_metrics(sample("otel-proto-examples-metrics.json"))
    got = dict(zip(m["metric"], m["value"], strict=True))
    assert got == {
        "my.counter": 5.0, "my.gauge": 10.0, "my.histogram_count": 2.0, "my.histogram_sum": 2.0,
        "my.exponential.histogram_count": 3.0, "my.exponential.histogram_sum": 10.0,
    }  # fmt: skip
    assert set(m["entity"]) == {"my.service"}
    assert (m["time"] == 1544712660.3).all()


def _span(**kw):
    span = {"traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331", "name": "GET /", "startTimeUnixNano": 1700000000000000000, "endTimeUnixNano": "1700000000250000000"}
    span.update(kw)
    return {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "cart"}}]}, "scopeSpans": [{"spans": [span]}]}]}


def test_enum_names_base64_ids_and_zero_parent():
    doc = _span(traceId="W47/95gDgQPSabYzgT/GDA==", spanId="7q0w2l5j0ug=", parentSpanId="0000000000000000", status={"code": "STATUS_CODE_ERROR", "message": "boom"}, kind="SPAN_KIND_CLIENT")
    s = parse_otlp_traces(doc).iloc[0]
    assert s.trace_id == "5b8efff798038103d269b633813fc60c"  # the proto example id, base64-encoded
    assert len(s.span_id) == 16 and s.parent_id is None
    assert s.status == "error" and s.duration == pytest.approx(0.25)
    assert json.loads(s.attributes)["span.kind"] == "client"
    assert json.loads(s.attributes)["otel.status_description"] == "boom"


def test_json_lines_of_requests(tmp_path):
    f = tmp_path / "traces.jsonl"
    f.write_text(json.dumps(_span()) + "\n" + json.dumps(_span(spanId="b7ad6b7169203332")) + "\n")
    assert len(parse_otlp_traces(f)) == 2


def test_id_rules():
    assert normalise_id("ABCDEF0123456789", "x", None) == "abcdef0123456789"
    assert normalise_id("", "x", None) is None
    with pytest.raises(DataError):
        normalise_id("not an id!", "spanId", None)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"resourceLogs": []}, "resourceSpans"),
        (_span(startTimeUnixNano="yesterday"), "resourceSpans[0].scopeSpans[0].spans[0].startTimeUnixNano"),
        (_span(spanId=None), "resourceSpans[0].scopeSpans[0].spans[0].spanId"),
        (_span(status={"code": 7}), "resourceSpans[0].scopeSpans[0].spans[0].status.code"),
        (_span(attributes=[{"value": {"stringValue": "x"}}]), "resourceSpans[0].scopeSpans[0].spans[0].attributes[0].key"),
        ({"resourceSpans": [{"scopeSpans": {}}]}, "resourceSpans[0].scopeSpans"),
    ],
)
def test_malformed_traces_name_the_field(doc, field):
    with pytest.raises(DataError) as err:
        parse_otlp_traces(doc)
    assert err.value.field == field


def test_log_time_falls_back_to_observed_and_severity_number():
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"timeUnixNano": "0", "observedTimeUnixNano": "1700000001000000000", "severityNumber": 17, "body": {"stringValue": "x"}},
        {"timeUnixNano": "1700000000000000000", "severityText": "WARNING"},
    ]}]}]}  # fmt: skip
    logs = parse_otlp_logs(doc)
    assert logs["time"].tolist() == [1700000000.0, 1700000001.0]
    assert logs["level"].tolist() == ["warn", "error"]
    assert logs["entity"].tolist() == ["unknown_service"] * 2
