"""Jaeger JSON traces become spans: microseconds to seconds, parents from references."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from aisre.case import topology_from_spans
from aisre.datasets.ingest import parse_jaeger, parse_otlp_traces
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
FORMATS = SHARED / "formats"


def sample(name: str) -> Path:
    path = FORMATS / name
    if not path.is_file():
        pytest.skip(f"shared format sample {path} is absent (set AISRE_SHARED)")
    return path


def test_api_envelope_matches_its_otlp_twin():
    """The same trace read from Jaeger JSON and from OTLP gives the same span."""
    j = parse_jaeger(sample("jaeger_json/jaeger-otlp2jaeger-out.json"))
    o = parse_otlp_traces(sample("otlp_json/jaeger-otlp2jaeger-in.json"))
    assert len(j) == 1  # the duplicate span is dropped
    cols = ["trace_id", "span_id", "parent_id", "service", "operation"]
    assert j[cols].values.tolist() == o[cols].values.tolist()
    assert j["start"].iloc[0] == pytest.approx(o["start"].iloc[0], abs=1e-6)
    assert j["duration"].iloc[0] == pytest.approx(o["duration"].iloc[0], abs=1e-9)


def test_petclinic_trace_and_call_graph():
    """12 spans, unsorted; the 15-digit span id is padded; the call graph api-gateway -> customers-service."""
    spans = parse_jaeger(sample("jaeger_json/jaeger-ui-spansAmongEachOther.json"))
    assert len(spans) == 12
    assert (spans["trace_id"] == "0df84e36b9e2ee3815d07f0867a5be1f").all()
    assert "0a68c6983a6d81a2" in set(spans["span_id"])
    assert spans["service"].value_counts().to_dict() == {"customers-service": 10, "api-gateway": 2}
    root = spans[spans["parent_id"].isna()]
    assert root["operation"].tolist() == ["GET /api/customer/owners"]
    assert root["start"].iloc[0] == pytest.approx(1573131432.955, abs=1e-6)
    assert root["duration"].iloc[0] == pytest.approx(0.00372)
    topo = topology_from_spans(spans)
    assert topo is not None and topo.edges() == [("api-gateway", "customers-service", "calls")]


def test_ui01_references_tags_and_shared_span_ids():
    """Cross-trace CHILD_OF is not a parent; error=true marks an error; int64 beyond 2^53 stays exact;
    two different spans sharing an id are both kept."""
    spans = parse_jaeger(sample("jaeger_json/jaeger-ui_01.json"))
    assert len(spans) == 5
    assert (spans["span_id"] == "0000000000000002").sum() == 2
    by_op = spans.set_index("operation")
    assert by_op.loc["reference-test", "parent_id"] == "0000000000000002"
    assert by_op.loc["preserveParentID-test", "parent_id"] == "0000000000000004"
    assert spans["status"].tolist().count("error") == 1
    tagged = json.loads(spans[spans["status"] == "error"]["attributes"].iloc[0])
    assert tagged["javascript_limit"] == 9223372036854775222
    assert tagged["blob"] == "AAAwOQ=="
    assert by_op.loc["preserveParentID-test", "duration"] == pytest.approx(4e-6)


def test_embedded_process_follows_from_and_otel_status():
    trace = {"traceID": "1", "spans": [
        {"spanID": "a", "startTime": 1_700_000_000_000_000, "duration": 1000, "process": {"serviceName": "cart"},
         "references": [{"refType": "FOLLOWS_FROM", "spanID": "b"}], "tags": [{"key": "otel.status_code", "value": "ERROR"}]},
        {"spanID": "b", "startTime": "1700000000000500", "duration": "10", "processID": "p", "tags": [{"key": "error", "type": "bool", "value": "true"}]},
    ], "processes": {"p": {"serviceName": "web"}}}  # fmt: skip
    spans = parse_jaeger([trace])
    assert spans["service"].tolist() == ["cart", "web"]
    assert spans["parent_id"].tolist() == ["000000000000000b", None]
    assert spans["status"].tolist() == ["error", "error"]
    assert spans["start"].tolist() == [1700000000.0, 1700000000.0005]


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"total": 0}, "data"),
        ({"data": [{"spans": [{"spanID": "a", "startTime": 1}]}]}, "data[0].spans[0].traceID"),
        ({"data": [{"traceID": "1", "spans": [{"spanID": "a", "startTime": "noon"}]}]}, "data[0].spans[0].startTime"),
        ({"data": [{"traceID": "1", "spans": [{"spanID": "a", "startTime": 1, "processID": "p9"}], "processes": {}}]}, "data[0].spans[0].processID"),
        ({"data": [{"traceID": "1", "spans": {}}]}, "data[0].spans"),
    ],
)
def test_malformed_traces_name_the_field(doc, field):
    with pytest.raises(DataError) as err:
        parse_jaeger(doc)
    assert err.value.field == field
