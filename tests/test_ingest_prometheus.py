"""Prometheus query responses become the long metrics table, one series at a time."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from aisre.datasets.ingest import parse_query_range
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
SAMPLES = SHARED / "formats" / "prometheus_api"


def sample(name: str) -> Path:
    path = SAMPLES / name
    if not path.is_file():
        pytest.skip(f"shared format sample {path} is absent (set AISRE_SHARED)")
    return path


def test_docs_matrix():
    """Two series of `up`, three samples each, millisecond timestamps kept as floats."""
    m = parse_query_range(sample("prometheus-docs-api-query_range-matrix.json"))
    assert list(m.columns) == ["time", "entity", "metric", "value"]
    assert len(m) == 6
    assert set(m["metric"]) == {"up"}
    node = m[m["entity"] == "node"]
    assert node["time"].tolist() == [1435781430.781, 1435781445.781, 1435781460.781]
    assert node["value"].tolist() == [0.0, 0.0, 1.0]
    assert m[m["entity"] == "prometheus"]["value"].tolist() == [1.0, 1.0, 1.0]
    assert m.attrs["result_type"] == "matrix"


def test_docs_vector():
    m = parse_query_range(sample("prometheus-docs-api-query-vector.json"))
    assert sorted(zip(m["entity"], m["value"], strict=True)) == [("node", 0.0), ("prometheus", 1.0)]
    assert (m["time"] == 1435781451.781).all()


def test_spanmetrics_without_name_and_big_counter():
    """No __name__: the metric is the rendering of the non-entity labels; service_name is the entity."""
    m = parse_query_range(sample("jaeger-service_span_name_datapoint_response.json"))
    assert m["entity"].tolist() == ["emailservice"]
    assert m["metric"].tolist() == ['{span_name="/OrderResult"}']
    assert m["value"].iloc[0] == 9223372036854.0
    assert m["time"].iloc[0] == 1620351786.0


def test_warning_status_kept_with_empty_result():
    m = parse_query_range(sample("jaeger-warning_response.json"))
    assert m.empty
    assert list(m.columns) == ["time", "entity", "metric", "value"]
    assert m.attrs["warnings"] == ["warning0", "warning1"]


def test_special_values_gaps_and_series_identity():
    """NaN/Inf strings parse; series with different sample times are not zipped; two series
    that share job and name stay apart by the label that differs."""
    doc = {
        "status": "success",
        "warnings": ["partial data"],
        "data": {
            "resultType": "matrix",
            "result": [
                {"metric": {"__name__": "up", "job": "node", "instance": "a:9100"}, "values": [[10, "1"], [20, "NaN"], [30, "+Inf"]]},
                {"metric": {"__name__": "up", "job": "node", "instance": "b:9100"}, "values": [[15, "-Inf"]]},
                {"metric": {}, "values": [[10, "2.5"]]},
            ],
        },
    }
    m = parse_query_range(doc)
    a = m[m["metric"] == 'up{instance="a:9100"}']
    b = m[m["metric"] == 'up{instance="b:9100"}']
    assert a["time"].tolist() == [10.0, 20.0, 30.0]
    assert a["value"].iloc[0] == 1.0 and math.isnan(a["value"].iloc[1]) and a["value"].iloc[2] == math.inf
    assert b["time"].tolist() == [15.0] and b["value"].iloc[0] == -math.inf
    empty = m[m["metric"] == "value"]
    assert empty["entity"].tolist() == [""] and empty["value"].tolist() == [2.5]
    assert m.attrs["warnings"] == ["partial data"]


def test_scalar_and_string():
    s = parse_query_range({"status": "success", "data": {"resultType": "scalar", "result": [1700000000.5, "42"]}})
    assert s[["time", "metric", "value"]].values.tolist() == [[1700000000.5, "scalar", 42.0]]
    t = parse_query_range({"status": "success", "data": {"resultType": "string", "result": [1, "hello"]}})
    assert math.isnan(t["value"].iloc[0]) and t.attrs["strings"] == ["hello"]


def test_pod_labels_and_native_histogram():
    doc = {"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"__name__": "req", "namespace": "shop", "pod": "cart-6d8f7c9b54-x7k2p"}, "histogram": [5, {"count": "10", "sum": "2.5", "buckets": []}]},
    ]}}  # fmt: skip
    m = parse_query_range(doc)
    assert m[["entity", "metric", "value"]].values.tolist() == [["cart", "req_count", 10.0], ["cart", "req_sum", 2.5]]


def test_error_response():
    with pytest.raises(DataError, match="bad_data: invalid parameter") as err:
        parse_query_range({"status": "error", "errorType": "bad_data", "error": "invalid parameter 'query'"})
    assert err.value.field == "status"


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"status": "success"}, "data"),
        ({"status": "success", "data": {"resultType": "table", "result": []}}, "data.resultType"),
        ({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1, "x"]]}]}}, "data.result[0].values[0][1]"),
        ({"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1]]}]}}, "data.result[0].values[0]"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"metric": [], "value": [1, "1"]}]}}, "data.result[0].metric"),
        ({"status": "success", "data": {"resultType": "scalar", "result": "1"}}, "data.result"),
    ],
)
def test_malformed_responses_name_the_field(doc, field):
    with pytest.raises(DataError) as err:
        parse_query_range(doc)
    assert err.value.field == field
