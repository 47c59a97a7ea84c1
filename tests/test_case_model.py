"""The shared model: a Case survives a save/load round trip exactly; bad folders fail clearly."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from aisre.case import (
    Alert,
    Case,
    Change,
    Evidence,
    Hypothesis,
    Ranking,
    Topology,
    Truth,
    empty_table,
    load_case,
    save_case,
    topology_from_spans,
)
from aisre.errors import DataError, SchemaError, SpecError


def _case() -> Case:
    topo = Topology(source="given")
    topo.add_node("frontend", tier="critical", replicas=2, owner="web")
    topo.add_node("cart", replicas=3)
    topo.add_node("redis", kind="cache")
    topo.add_edge("frontend", "cart")
    topo.add_edge("cart", "redis", "reads")
    topo.add_edge("cart", "redis", "writes")
    metrics = pd.DataFrame({
        "time": [1.0, 1.0, 2.0, 2.0],
        "entity": ["cart", "frontend", "cart", "frontend"],
        "metric": ["cpu", "latency-90", "cpu", "latency-90"],
        "value": [0.5, 0.1, 0.95, float("nan")],
    })
    logs = pd.DataFrame({"time": [1.5], "entity": ["cart"], "level": ["error"], "template": ["timeout <*>"],
                         "message": ["timeout redis"], "trace_id": ["t1"]})
    spans = pd.DataFrame({"trace_id": ["t1", "t1"], "span_id": ["a", "b"], "parent_id": [None, "a"],
                          "service": ["frontend", "cart"], "operation": ["GET /", "GetCart"],
                          "start": [1.0, 1.01], "duration": [0.2, 0.15], "status": ["ok", "error"],
                          "attributes": ['{"http.status_code": 500}', "{}"]})
    events = pd.DataFrame({"time": [0.5], "entity": ["cart"], "kind": ["deploy"], "reason": ["Deployed"],
                           "message": ["v2"], "attributes": ["{}"]})
    return Case(
        id="demo/1", system="OB", window=(0.0, 10.0), detected_at=2.0, topology=topo,
        metrics=metrics, logs=logs, spans=spans, events=events,
        alerts=[Alert("abc", {"alertname": "High"}, {"summary": "s"}, "firing", 1.0, None, "cart", "critical")],
        changes=[Change("c1", "cart", 0.5, "ana", "deadbeef", ["cart/main.go"], "bump")],
        truth=Truth("cart", "cpu", 1.0, "cart-0", {"fault": "cpu_hog"}),
        meta={"note": "x", "nested": {"a": [1, 2]}}, source="test",
    )


def test_round_trip_keeps_everything(tmp_path):
    """Every table, record, the typed topology and the truth come back equal."""
    case = _case()
    save_case(case, tmp_path / "c")
    back = load_case(tmp_path / "c")
    for name in ("metrics", "logs", "spans", "events"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(case, name), check_dtype=False,
                                      check_categorical=False)
    assert back.topology == case.topology
    assert back.topology.edges() == case.topology.edges()
    assert ("cart", "redis", "reads") in back.topology.edges() and ("cart", "redis", "writes") in back.topology.edges()
    assert back.topology.node("frontend") == {"kind": "service", "tier": "critical", "replicas": 2, "owner": "web"}
    assert back.alerts == case.alerts and back.changes == case.changes and back.truth == case.truth
    assert (back.id, back.system, back.window, back.detected_at, back.meta, back.source) == (
        case.id, case.system, case.window, case.detected_at, case.meta, case.source)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["schema"] == "aisre.case/1"
    assert set(manifest["files"]) >= {"metrics.parquet", "alerts.json", "topology.json"}


def test_missing_tables_are_empty_not_absent(tmp_path):
    """A case with no logs has an empty logs table with the model's columns, before and after saving."""
    case = Case(id="bare")
    save_case(case, tmp_path / "bare")
    back = load_case(tmp_path / "bare")
    assert list(back.logs.columns) == list(empty_table("logs").columns) and back.logs.empty
    assert back.topology is None and back.truth is None


def test_newer_schema_names_versions(tmp_path):
    """A manifest from a newer aisre fails with SchemaError naming what was found and what is read."""
    save_case(_case(), tmp_path / "c")
    path = tmp_path / "c" / "manifest.json"
    doc = json.loads(path.read_text())
    doc["schema"] = "aisre.case/9"
    path.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"aisre.case/9.*aisre.case/1"):
        load_case(tmp_path / "c")


@pytest.mark.parametrize("content", ["{", "[]", '{"schema": "aisre.case/1", "window": [1]}'])
def test_bad_manifest_is_a_data_error(tmp_path, content):
    """A truncated or wrongly shaped manifest gives DataError naming the file."""
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(DataError, match="manifest.json"):
        load_case(tmp_path)


def test_not_a_case_folder(tmp_path):
    """A folder without a manifest is named in the error."""
    with pytest.raises(DataError, match="manifest.json is missing"):
        load_case(tmp_path)


def test_wide_pivots_entity_metric_columns():
    """wide() gives one column per entity:metric, indexed by time, averaging duplicates."""
    case = _case()
    w = case.wide()
    assert list(w.columns) == ["cart:cpu", "frontend:latency-90"]
    assert w.loc[2.0, "cart:cpu"] == 0.95


def test_bad_tables_and_specs_are_rejected():
    """Missing columns, text times, unknown node kinds and self-loops name the field."""
    with pytest.raises(DataError, match="lacks columns"):
        Case(id="x", metrics=pd.DataFrame({"time": [1.0]}))
    with pytest.raises(DataError, match="time"):
        Case(id="x", metrics=pd.DataFrame({"time": ["noon"], "entity": ["a"], "metric": ["m"], "value": [1.0]}))
    topo = Topology()
    with pytest.raises(SpecError, match="kind"):
        topo.add_node("a", kind="planet")
    with pytest.raises(SpecError, match="self-loop"):
        topo.add_edge("a", "a")
    with pytest.raises(DataError, match="window"):
        Case(id="x", window=(5.0, 1.0))


def test_topology_from_spans_links_services_across_parents():
    """Parent and child spans in different services make a calls edge; same-service pairs do not."""
    spans = pd.DataFrame({
        "trace_id": ["t"] * 4, "span_id": ["1", "2", "3", "4"], "parent_id": [None, "1", "2", "2"],
        "service": ["fe", "cart", "cart", "redis"],
    })
    topo = topology_from_spans(spans)
    assert topo.source == "spans"
    assert sorted(topo.edges()) == [("cart", "redis", "calls"), ("fe", "cart", "calls")]
    assert topology_from_spans(spans[spans.service == "cart"]) is None


def test_ranking_prints_and_serialises():
    """A ranking prints its entities best first and serialises without NaN."""
    r = Ranking("aisre", [Hypothesis("cart", "cpu", 3.0, 0.8, [Evidence("cpu", "cart", 1.0, 5.0, None, "cpu up 5 sigma")]),
                          Hypothesis("fe", None, float("nan"), 0.1)])
    assert r.entities() == ["cart", "fe"]
    text = str(r)
    assert text.index("cart") < text.index("fe") and "cpu up 5 sigma" in text
    doc = json.dumps(r.to_dict(), allow_nan=False)
    assert '"score": null' in doc
    assert "<table>" in r._repr_html_()
