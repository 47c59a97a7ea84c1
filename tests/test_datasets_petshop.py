"""The PetShop loader: full node names, (metric, statistic) by name, graph from graph.csv."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aisre.datasets as datasets
from aisre.datasets import petshop
from aisre.datasets.batch import load_all
from conftest import shared_dataset

from aisre.errors import AisreError, DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ROOT = SHARED / "datasets" / "petshop"



@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_dataset("petshop")


@pytest.fixture(scope="module")
def cases(shared: Path) -> dict:
    return {c.id: c for c in petshop.load(shared)}


@pytest.fixture(scope="module")
def manifest(shared: Path) -> dict:
    return json.loads((shared / "MANIFEST.json").read_text())


def _id(entry: dict) -> str:
    return "petshop/" + entry["case_id"].removeprefix("dataset/")


def test_every_shared_case_loads_with_its_label(cases: dict, manifest: dict) -> None:
    """All 45 cases load; root-cause node, fault and trigger time match the manifest."""
    assert len(cases) == 45
    kinds = {"delay": "delay", "error": "error", "request-load": "neighbour"}
    for entry in manifest["cases"]:
        case = cases[_id(entry)]
        assert case.system == "PetShop" and case.meta["dataset"] == "petshop"
        assert case.truth.service == case.truth.entity == entry["root_cause"]["node"]
        assert case.truth.meta["fault"] == entry["fault"]
        assert case.truth.fault == kinds[entry["fault"]]
        assert case.truth.meta["issue_type"] == entry["issue_type"]
        assert case.truth.inject_time == entry["inject_time"] == case.detected_at
        assert case.meta["case_window"] == [entry["metrics"]["start"], entry["metrics"]["end"]]
        # the trigger row is inject_row; the anomalous window starts there
        start = entry["metrics"]["start"] + entry["metrics"]["inject_row"] * entry["metrics"]["step_seconds"]
        assert case.meta["anomalous_window"] == [start, entry["metrics"]["end"]]
        assert case.topology is not None and case.topology.source == "file"
        assert case.truth.service in case.topology
        assert case.truth.service in set(case.metrics["entity"])


def test_labels_stay_out_of_what_rankers_read(cases: dict) -> None:
    """The injection command and the upstream split are only in truth (split: in the id)."""
    for case in cases.values():
        text = json.dumps(case.meta)
        assert "command" not in text and "root_cause" not in text and "upstream_split" not in text
        assert case.truth.service not in text
        assert set(case.meta["target"]) == {"node", "metric", "agg"}


def test_node_names_with_underscores_are_kept_whole(cases: dict) -> None:
    case = cases["petshop/high_traffic/test/issue_0"]
    entities = set(case.metrics["entity"])
    for name in (
        "PGSQL Query_remote",
        "lambda_step_readDDB",
        "lambda_step_readDDB_AWS::Lambda",
        "lambda_step_readDDB_AWS::Lambda::Function",
        "Servi-searc.us-west-2.elb.amazonaws.com_remote",
        "servi-searc.us-west-2.elb.amazonaws.com_remote",
    ):
        assert name in entities, name
    assert "lambda" not in entities and "lambda_step" not in entities
    assert set(case.metrics["metric"]) == {
        "latency.Average", "latency.p50", "latency.p90", "latency.p95", "latency.p99",
        "requests.Sum", "availability.Average",
    }  # fmt: skip
    # aligned by name: the first data value of PetSearch latency/Average in the raw file
    row = case.metrics[(case.metrics["time"] == 1681398600.0) & (case.metrics["entity"] == "PetSearch_AWS::ECS::Fargate")]
    assert row.set_index("metric").loc["latency.Average", "value"] == pytest.approx(0.0062028905307791)


def test_baseline_is_noissue_where_shipped_else_pre_trigger(cases: dict, manifest: dict) -> None:
    for entry in manifest["cases"]:
        case = cases[_id(entry)]
        if entry["normal_metrics"]:
            info = manifest["scenarios"][entry["scenario"]]["normal_metrics"]
            assert case.meta["baseline"] == "noissue"
            assert case.meta["normal_window"] == [info["start"], info["end"]]
            assert case.metrics["time"].nunique() == 5 + info["rows"]
        else:
            assert case.meta["baseline"] == "pre-trigger"
            assert case.meta["normal_window"] == [entry["metrics"]["start"]] * 2
            assert case.metrics["time"].nunique() == 5
        assert case.metrics["time"].is_monotonic_increasing
    assert sum(c.meta["baseline"] == "pre-trigger" for c in cases.values()) == 10


def test_graph_direction_is_caller_to_callee(cases: dict) -> None:
    topo = cases["petshop/high_traffic/test/issue_0"].topology
    assert "PetSearch_AWS::ECS::Fargate" in topo.callees("PetSite")
    assert "PetSite" not in topo.callees("PetSearch_AWS::ECS::Fargate")
    assert topo.node("petInfo_AWS::DynamoDB::Table")["kind"] == "database"
    assert topo.node("PGSQL Query_remote")["kind"] == "endpoint"
    assert topo.node("PetSearch_client")["kind"] == "endpoint"
    assert "PetSearch_client" not in topo.services() and "PetSite" in topo.services()
    assert len(topo.edges("calls")) == 47


def test_detect_and_order(shared: Path) -> None:
    folder = shared / "dataset" / "high_traffic" / "test" / "issue_10"
    assert petshop.detect(shared) and petshop.detect(folder) and petshop.detect(folder / "target.json")
    assert datasets.detect(shared / "dataset" / "low_traffic").name == "petshop"
    ids = [c.id for c in datasets.load(folder.parent, "petshop")]
    assert ids[:3] == ["petshop/high_traffic/test/issue_0", "petshop/high_traffic/test/issue_1", "petshop/high_traffic/test/issue_3"]
    assert ids[-1] == "petshop/high_traffic/test/issue_15"  # numeric, not text, order


# --------------------------------------------------------------------------- generated input

HEAD = (
    "microservice,PetSite,PetSite,Pet Search_AWS::ECS::Fargate,Pet Search_AWS::ECS::Fargate\n"
    "metric,latency,requests,latency,requests\n"
    "statistic,Average,Sum,p99,Sum\n"
    "unix_timestamp,,,,\n"
)
ROWS = "1000.0,0.1,10,0.02,5\n1300.0,0.2,11,,0\n1600.0,0.5,12,1.5,6\n"
TARGET = {"target": {"node": "PetSite", "metric": "latency", "agg": "Average", "timestamp": 1400},
          "root_cause": {"node": "Pet Search_AWS::ECS::Fargate", "metric": None}}  # fmt: skip
GRAPH = ",PetSite,Pet Search_AWS::ECS::Fargate\nPetSite,0.0,1.0\nPet Search_AWS::ECS::Fargate,0.0,0.0\n"


def _case(tmp: Path, metrics: str = HEAD + ROWS, target: object = TARGET, graph: str | None = GRAPH, n: int = 0) -> Path:
    folder = tmp / "dataset" / "scn" / "test" / f"issue_{n}"
    folder.mkdir(parents=True)
    (folder / "metrics.csv").write_text(metrics)
    (folder / "target.json").write_text(target if isinstance(target, str) else json.dumps(target))
    if graph is not None:
        (tmp / "dataset" / "scn" / "graph.csv").write_text(graph)
    return folder


def test_generated_case_without_baseline(tmp_path: Path) -> None:
    case = petshop.load_case(_case(tmp_path))
    assert case.id == "petshop/scn/test/issue_0"
    assert case.meta["baseline"] == "pre-trigger" and case.meta["normal_window"] == [1000.0, 1000.0]
    assert case.meta["anomalous_window"] == [1300.0, 1600.0]
    assert len(case.metrics) == 11  # one empty cell is a missing sample
    assert case.wide().loc[1600.0, "Pet Search_AWS::ECS::Fargate:latency.p99"] == 1.5
    assert case.topology.callees("PetSite") == ["Pet Search_AWS::ECS::Fargate"]
    assert case.truth.fault == "delay" and case.truth.service == "Pet Search_AWS::ECS::Fargate"


def test_columns_in_any_order_are_aligned_by_name(tmp_path: Path) -> None:
    swapped = (
        "microservice,Pet Search_AWS::ECS::Fargate,PetSite,PetSite,Pet Search_AWS::ECS::Fargate\n"
        "metric,requests,requests,latency,latency\n"
        "statistic,Sum,Sum,Average,p99\n"
        "unix_timestamp,,,,\n"
        "1000.0,5,10,0.1,0.02\n1300.0,0,11,0.2,\n1600.0,6,12,0.5,1.5\n"
    )
    a = petshop.load_case(_case(tmp_path / "a")).metrics
    b = petshop.load_case(_case(tmp_path / "b", swapped)).metrics
    key = ["time", "entity", "metric"]
    assert a.sort_values(key, ignore_index=True).equals(b.sort_values(key, ignore_index=True))


@pytest.mark.parametrize(
    ("metrics", "target", "file", "field"),
    [
        (HEAD + "1000.0,0.1,10,oops,5\n", TARGET, "metrics.csv", "Pet Search_AWS::ECS::Fargate/latency/p99"),
        (HEAD + "1000.0,0.1,10,inf,5\n", TARGET, "metrics.csv", "Pet Search_AWS::ECS::Fargate/latency/p99"),
        (HEAD + "1000.0,0.1,10,0.2,5\n1000.0,0.1,10,0.2,5\n", TARGET, "metrics.csv", "unix_timestamp"),
        (HEAD + "1300.0,0.1,10,0.2,5\n1000.0,0.1,10,0.2,5\n", TARGET, "metrics.csv", "unix_timestamp"),
        (HEAD.split("\n", 1)[1] + ROWS, TARGET, "metrics.csv", "header"),
        ("", TARGET, "metrics.csv", None),
        (HEAD + ROWS, ["not", "an", "object"], "target.json", "target"),
        (HEAD + ROWS, {"target": {"timestamp": "soon"}}, "target.json", "target.timestamp"),
        (HEAD + ROWS, {"target": {"timestamp": 1400}, "root_cause": {"node": 3}}, "target.json", "root_cause.node"),
        (HEAD + ROWS, "{not json", "target.json", None),
    ],
)
def test_malformed_input_names_file_and_field(tmp_path: Path, metrics: str, target: object, file: str, field: str | None) -> None:
    folder = _case(tmp_path, metrics, target)
    with pytest.raises(DataError) as err:
        petshop.load_case(folder)
    assert err.value.path == str(folder / file)
    assert err.value.field == field


def test_bad_graph_is_a_data_error(tmp_path: Path) -> None:
    folder = _case(tmp_path, graph=",PetSite,X\nPetSite,0.0,2.0\nX,0.0,0.0\n")
    with pytest.raises(DataError, match="0 or 1"):
        petshop.load_case(folder)


def test_batch_reports_the_bad_case_and_goes_on(tmp_path: Path) -> None:
    _case(tmp_path, n=0)
    _case(tmp_path, target="[]", n=1, graph=None)
    _case(tmp_path, n=2, graph=None)
    cases, failures = load_all(tmp_path)
    assert [c.id for c in cases] == ["petshop/scn/test/issue_0", "petshop/scn/test/issue_2"]
    assert [f.path for f in failures] == [str(tmp_path / "dataset/scn/test/issue_1/target.json")]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), which=st.sampled_from(["metrics.csv", "target.json", "graph.csv"]))
def test_random_bytes_raise_only_aisre_errors(tmp_path: Path, data: bytes, which: str) -> None:
    folder = tmp_path / "dataset" / "scn" / "test" / "issue_0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.csv").write_text(HEAD + ROWS)
    (folder / "target.json").write_text(json.dumps(TARGET))
    (tmp_path / "dataset" / "scn" / "graph.csv").write_text(GRAPH)
    (folder.parent.parent / which if which == "graph.csv" else folder / which).write_bytes(data)
    try:
        petshop.load_case(folder)
    except AisreError:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["target", "root_cause", "node", "timestamp", "metric", "metadata", "x"]), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json)
def test_random_json_targets_raise_only_aisre_errors(tmp_path: Path, doc: object) -> None:
    folder = tmp_path / "dataset" / "scn" / "test" / "issue_0"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.csv").write_text(HEAD + ROWS)
    (folder / "target.json").write_text(json.dumps(doc))
    try:
        petshop.load_case(folder)
    except AisreError:
        pass
