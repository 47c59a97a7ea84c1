"""The root-cause benchmark harness on hand-built cases whose answers are known."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aisre.bench import BenchResult, compare, run_benchmark
from aisre.bench.rca import BY_FAULT_KEYS, FAILURE_KEYS, ROW_KEYS, resolve_topology, service_map
from aisre.case import Case, Hypothesis, Ranking, Topology, Truth, save_case
from aisre.errors import DataError, SpecError, UsageError

SERVICES = ("front-end", "carts", "carts_db", "orders", "user")


def make_case(i: int, root: str, *, fault: str = "cpu", system: str = "SS", dataset: str = "rcd", **kw) -> Case:
    """A small case: 60 one-second rows per service, the root's cpu jumps at t=1030."""
    t = np.arange(1000.0, 1060.0)
    frames = []
    for s in SERVICES:
        v = np.full(t.size, 1.0) + 0.01 * (np.arange(t.size) % 3)
        if s == root:
            v[t >= 1030] += 10.0
        frames.append(pd.DataFrame({"time": t, "entity": s, "metric": "cpu", "value": v}))
    return Case(
        id=f"{dataset}-{i}",
        system=system,
        window=(1000.0, 1059.0),
        detected_at=1030.0,
        metrics=pd.concat(frames, ignore_index=True),
        truth=Truth(service=root, fault=fault, inject_time=1030.0),
        meta={"dataset": dataset, **kw.pop("meta", {})},
        **kw,
    )


class Oracle:
    """Peeks at the truth it must not get: right only if the harness leaks it (never)."""

    name = "oracle"

    def rank(self, case: Case) -> Ranking:
        assert case.truth is None, "the harness must hide the truth"
        return Ranking(self.name, [Hypothesis(case.meta["answer"]), Hypothesis("user")])


class Wrong:
    """Always names a service that is never the root."""

    name = "wrong"

    def rank(self, case: Case) -> Ranking:
        return Ranking(self.name, [Hypothesis("front-end")])


class Second:
    """Puts the right answer second, behind a wrong one."""

    name = "second"

    def rank(self, case: Case) -> Ranking:
        other = "user" if case.meta["answer"] != "user" else "orders"
        return Ranking(self.name, [Hypothesis(other), Hypothesis(case.meta["answer"])])


class Abstains:
    """Always abstains, with the right answer attached (which must not count)."""

    name = "abstains"

    def rank(self, case: Case) -> Ranking:
        return Ranking(self.name, [Hypothesis(case.meta["answer"])], abstained=True, reason="weak evidence")


class Raises:
    """Raises on cases whose id ends in 1, else is right."""

    name = "raises"

    def rank(self, case: Case) -> Ranking:
        if case.id.endswith("1"):
            raise RuntimeError("boom")
        return Ranking(self.name, [Hypothesis(case.meta["answer"])])


class SeesDetection:
    """Records the detection time it was given."""

    name = "sees"

    def __init__(self) -> None:
        self.seen: list[float | None] = []

    def rank(self, case: Case) -> Ranking:
        self.seen.append(case.detected_at)
        return Ranking(self.name, [Hypothesis(case.meta["answer"])])


def cases(n: int = 4, **kw) -> list[Case]:
    roots = ["carts", "orders", "user", "carts_db"]
    out = []
    for i in range(n):
        c = make_case(i, roots[i % 4], **kw)
        c.meta["answer"] = roots[i % 4]  # the fake rankers' cheat sheet, not the truth field
        out.append(c)
    return out


def test_always_right_scores_one_always_wrong_scores_zero():
    """An oracle scores AC@1 = 1; a ranker that always names a healthy service scores 0."""
    res = run_benchmark(cases(), [Oracle(), Wrong()], progress=False)
    rows = {r["method"]: r for r in res.rows}
    assert rows["oracle"]["ac1"] == 1.0 and rows["oracle"]["avg5"] == 1.0 and rows["oracle"]["n"] == 4
    assert rows["wrong"]["ac1"] == 0.0 and rows["wrong"]["ac5"] == 0.0 and rows["wrong"]["avg5"] == 0.0
    assert res.failures == []


def test_second_place_counts_from_ac3_and_avg5_is_the_mean():
    """Right answer in second place: AC@1 0, AC@3 1, Avg@5 = (0+1+1+1+1)/5."""
    [row] = run_benchmark(cases(), [Second()], progress=False).rows
    assert (row["ac1"], row["ac3"], row["ac5"], row["avg5"]) == (0.0, 1.0, 1.0, 0.8)


def test_abstaining_is_a_miss_and_counted():
    """An abstained ranking is a miss even when it carries the right hypothesis."""
    [row] = run_benchmark(cases(3), [Abstains()], progress=False).rows
    assert row["abstained"] == 3 and row["ac1"] == 0.0 and row["ac5"] == 0.0


def test_raising_ranker_goes_to_failures_and_the_run_goes_on():
    """Case 1 raises: it is a listed failure and a miss; the other cases are scored."""
    res = run_benchmark(cases(4), [Raises(), Oracle()], progress=False)
    rows = {r["method"]: r for r in res.rows}
    assert rows["raises"]["n"] == 4 and rows["raises"]["ac1"] == 0.75
    assert rows["oracle"]["ac1"] == 1.0
    [f] = res.failures
    assert f["id"] == "rcd-1" and f["method"] == "raises" and "RuntimeError: boom" in f["error"]
    assert set(f) == set(FAILURE_KEYS)


def test_case_without_truth_is_a_failure_not_a_row():
    c = cases(2)
    c[1].truth = None
    res = run_benchmark(c, [Oracle()], progress=False)
    assert res.rows[0]["n"] == 1
    assert [f["id"] for f in res.failures] == ["rcd-1"] and res.failures[0]["method"] is None


def test_delay_shifts_the_detection_time_without_touching_the_input():
    """--delay 60 hands rankers detected_at + 60; the caller's cases are unchanged."""
    sees = SeesDetection()
    src = cases(2)
    res = run_benchmark(src, [sees], delay=60, progress=False)
    assert sees.seen == [1090.0, 1090.0]
    assert [c.detected_at for c in src] == [1030.0, 1030.0]
    assert all(c.truth is not None for c in src)
    assert res.rows[0]["delay"] == 60.0 and res.config["delay"] == 60.0


class SeesWindows:
    name = "windows"

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def rank(self, case: Case) -> Ranking:
        self.seen.append((case.meta.get("normal_window"), case.meta.get("anomalous_window")))
        return Ranking(self.name, [Hypothesis(case.meta["answer"])])


def test_delay_moves_the_anomalous_window_start_too():
    """Contiguous windows (1-s rows): a 10-s late alert turns the first 10 fault rows normal."""
    c = cases(1)[0]
    c.meta.update(normal_window=[1000.0, 1029.0], anomalous_window=[1030.0, 1059.0])
    sees = SeesWindows()
    run_benchmark([c], [sees], delay=10, progress=False)
    run_benchmark([c], [sees], delay=-5, progress=False)
    assert sees.seen == [([1000.0, 1039.0], [1040.0, 1059.0]), ([1000.0, 1024.0], [1025.0, 1059.0])]
    assert c.meta["anomalous_window"] == [1030.0, 1059.0]  # the input is untouched


def test_delay_keeps_a_separate_baseline_and_the_row_holding_the_alert():
    """A baseline recorded apart stays as it is; on 5-s rows a 3-s delay keeps the trigger row."""
    c = cases(1)[0]
    c.metrics = c.metrics[(c.metrics["time"] % 5 == 0)].reset_index(drop=True)
    c.meta.update(normal_window=[1000.0, 1010.0], anomalous_window=[1030.0, 1055.0])
    sees = SeesWindows()
    for d in (3, 7, -20):
        run_benchmark([c], [sees], delay=d, progress=False)
    assert sees.seen == [
        ([1000.0, 1010.0], [1030.0, 1055.0]),
        ([1000.0, 1010.0], [1035.0, 1055.0]),
        ([1000.0, 1010.0], [1030.0, 1055.0]),
    ]


def test_json_has_exactly_the_contract_keys(tmp_path):
    res = run_benchmark(cases(2), [Oracle()], progress=False)
    doc = json.loads(res.to_json(tmp_path / "out.json"))
    assert json.loads((tmp_path / "out.json").read_text()) == doc
    assert set(doc) == {"config", "rows", "failures"}
    assert all(list(r) == list(ROW_KEYS) for r in doc["rows"])
    row = doc["rows"][0]
    assert (row["dataset"], row["system"], row["method"], row["topology"]) == ("rcd", "SS", "oracle", "none")
    assert row["median_seconds"] >= 0 and row["p95_seconds"] >= row["median_seconds"]


def test_rows_group_by_dataset_system_method():
    src = cases(2) + cases(3, dataset="nezha", system="OB") + cases(1, dataset="nezha", system="TT")
    res = run_benchmark(src, [Oracle(), Wrong()], progress=False)
    keys = [(r["dataset"], r["system"], r["method"], r["n"]) for r in res.rows]
    assert keys == [
        ("nezha", "OB", "oracle", 3), ("nezha", "OB", "wrong", 3),
        ("nezha", "TT", "oracle", 1), ("nezha", "TT", "wrong", 1),
        ("rcd", "SS", "oracle", 2), ("rcd", "SS", "wrong", 2),
    ]  # fmt: skip


def test_dataset_name_falls_back_to_source_then_case():
    a, b = cases(2)
    del a.meta["dataset"], b.meta["dataset"]
    a.source = "petshop"
    res = run_benchmark([a, b], [Oracle()], progress=False)
    assert sorted(r["dataset"] for r in res.rows) == ["case", "petshop"]


class PodRanker:
    """Names pods, never services."""

    name = "pods"

    def rank(self, case: Case) -> Ranking:
        return Ranking(self.name, [Hypothesis("front-end-7c9-x1"), Hypothesis("front-end-7c9-x2"), Hypothesis("carts-5d-a")])


def test_pods_count_as_their_service_and_duplicates_collapse():
    """Two front-end pods then a carts pod: carts is the 2nd distinct service, so AC@1 0, AC@3 1."""
    pods = {"front-end-7c9-x1": "front-end", "front-end-7c9-x2": "front-end", "carts-5d-a": "carts"}
    c = make_case(0, "carts", meta={"pods": pods})
    [row] = run_benchmark([c], [PodRanker()], progress=False).rows
    assert (row["ac1"], row["ac3"]) == (0.0, 1.0)
    # the same through the topology: instance nodes running on their service
    topo = Topology()
    for pod, svc in pods.items():
        topo.add_node(pod, "instance")
        topo.add_edge(pod, svc, "runs_on")
    c2 = make_case(1, "carts", topology=topo)
    assert service_map(c2) == pods
    [row] = run_benchmark([c2], [PodRanker()], progress=False).rows
    assert (row["ac1"], row["ac3"], row["topology"]) == (0.0, 1.0, "given")


def test_service_map_reads_service_to_pods_lists():
    c = make_case(0, "carts", meta={"pods": {"carts": ["carts-1", "carts-2"]}})
    assert service_map(c) == {"carts-1": "carts", "carts-2": "carts"}


def test_topology_file_given_to_cases_without_one(tmp_path):
    topo = Topology()
    topo.add_edge("front-end", "carts")
    path = tmp_path / "topo.json"
    path.write_text(json.dumps(topo.to_dict()))

    class Graph:
        name = "graph"

        def rank(self, case: Case) -> Ranking:
            assert case.topology is not None and case.topology.source == "file"
            return Ranking(self.name, [Hypothesis(case.topology.callees("front-end")[0])])

    own = Topology(source="given")
    own.add_edge("front-end", "carts")
    c1, c2 = make_case(0, "carts"), make_case(1, "carts", topology=own)
    res = run_benchmark([c1], [Graph()], topology=path, progress=False)
    assert res.rows[0]["topology"] == str(path) and res.rows[0]["ac1"] == 1.0
    assert res.config["topology"] == str(path)
    res = run_benchmark([c1, c2], [Oracle()], topology=path, progress=False)
    assert res.rows[0]["topology"] == ",".join(sorted(["given", str(path)]))


def test_bad_topology_and_bad_options():
    with pytest.raises(SpecError):
        resolve_topology("no-such-model-or-file")
    with pytest.raises(UsageError):
        run_benchmark(cases(1), ["no-such-method"], progress=False)
    with pytest.raises(UsageError):
        run_benchmark(cases(1), [Oracle()], workers=0, progress=False)
    with pytest.raises(UsageError):
        run_benchmark(cases(1), [], progress=False)


def test_builtin_simulator_model_as_topology():
    topo, label = resolve_topology("sock-shop")
    assert label == "sock-shop" and topo.source == "file" and "carts" in topo.services()
    [row] = run_benchmark(cases(1), [Oracle()], topology="sock-shop", progress=False).rows
    assert row["topology"] == "sock-shop"


def test_bad_topology_json(tmp_path):
    bad = tmp_path / "t.json"
    bad.write_text("{not json")
    with pytest.raises(SpecError):
        resolve_topology(bad)


def test_spans_give_a_graph_when_the_case_has_none():
    c = make_case(0, "carts")
    c.spans = pd.DataFrame(
        {
            "trace_id": ["t", "t"], "span_id": ["a", "b"], "parent_id": [None, "a"],
            "service": ["front-end", "carts"], "operation": ["GET", "get"], "start": [1000.0, 1000.1],
            "duration": [0.1, 0.05], "status": ["ok", "ok"], "attributes": ["{}", "{}"],
        }
    )  # fmt: skip
    [row] = run_benchmark([c], [Oracle()], progress=False).rows
    assert row["topology"] == "spans"


def test_case_folders_load_and_a_broken_one_is_a_failure(tmp_path):
    for c in cases(3):
        save_case(c, tmp_path / c.id)
    (tmp_path / "rcd-9").mkdir()
    (tmp_path / "rcd-9" / "manifest.json").write_text("{broken")
    res = run_benchmark([tmp_path], [Oracle()], progress=False)
    assert res.rows[0]["n"] == 3 and res.rows[0]["dataset"] == "rcd" and res.rows[0]["ac1"] == 1.0
    [f] = res.failures
    assert f["id"].endswith("rcd-9") and f["method"] is None
    res = run_benchmark([tmp_path / "nothing-here"], [Oracle()], progress=False)
    assert res.rows == [] and len(res.failures) == 1


def test_by_fault_and_tables():
    src = cases(4)
    src[1].truth.fault = "mem"
    src[3].truth.fault = None
    res = run_benchmark(src, [Oracle(), Second()], progress=False)
    bf = res.by_fault()
    assert all(list(r) == list(BY_FAULT_KEYS) for r in bf)
    assert [(r["method"], r["fault"], r["n"], r["ac1"]) for r in bf] == [
        ("oracle", "cpu", 2, 1.0), ("oracle", "mem", 1, 1.0), ("oracle", "unknown", 1, 1.0),
        ("second", "cpu", 2, 0.0), ("second", "mem", 1, 0.0), ("second", "unknown", 1, 0.0),
    ]  # fmt: skip
    text = res.table()
    assert text.splitlines()[0].split()[:6] == ["dataset", "system", "method", "topology", "delay", "n"]
    assert "oracle" in text and "1.00" in text
    assert "unknown" in res.fault_table()
    frame = res.cases_frame()
    assert len(frame) == 8 and set(frame["rank"].dropna()) == {1, 2}


def test_compare_flags_drops_beyond_tolerance(tmp_path):
    good = run_benchmark(cases(4), [Oracle()], progress=False)
    bad = run_benchmark(cases(4), [Raises()], progress=False)
    bad.rows[0]["method"] = "oracle"
    assert compare(good, good) == []
    path = tmp_path / "base.json"
    good.to_json(path)
    found = compare(bad, path, tolerance=0.05)
    assert found and all("ac" in line or "avg5" in line for line in found)
    assert compare(bad, path, tolerance=0.3) == []
    missing = compare(run_benchmark(cases(1, dataset="nezha"), [Oracle()], progress=False), path)
    assert missing == ["rcd/SS oracle (topology none, delay 0): missing from this run"]
    with pytest.raises(DataError):
        compare(good, tmp_path / "absent.json")


def test_result_round_trips_as_a_baseline():
    res = run_benchmark(cases(2), [Oracle()], progress=False)
    assert isinstance(res, BenchResult)
    assert compare(res.to_dict(), json.loads(res.to_json())) == []


def test_dask_two_workers_give_the_serial_rows():
    """Two worker processes: the same rows (timings aside) and the same failures as serially."""
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    src = cases(4)
    methods = [Oracle(), Raises(), Second()]
    serial = run_benchmark(src, methods, progress=False)
    par = run_benchmark(src, methods, workers=2, progress=False)

    def strip(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in rows]

    assert strip(par.rows) == strip(serial.rows)
    assert [r["ac1"] for r in par.rows] == [1.0, 0.75, 0.0]
    assert par.failures == serial.failures and len(par.failures) == 1
    assert par.config["workers"] == 2


def test_paths_and_cases_mix(tmp_path: Path):
    c = cases(2)
    save_case(c[0], tmp_path / "a")
    res = run_benchmark([tmp_path / "a", c[1]], [Oracle()], progress=False)
    assert res.rows[0]["n"] == 2


def test_limit_keeps_that_many_cases_per_source(tmp_path):
    for c in cases(4):
        save_case(c, tmp_path / c.id)
    [row] = run_benchmark([tmp_path], [Oracle()], limit=2, progress=False).rows
    assert row["n"] == 2


def test_outcomes_and_figures():
    res = run_benchmark(cases(4), [Oracle(), Second(), Abstains(), Raises()], progress=False)
    out = res.outcomes().set_index("method")
    assert out.loc["oracle", "top1"] == 4 and out.loc["second", "top5"] == 4
    assert out.loc["abstains", "abstained"] == 4 and out.loc["raises", "failed"] == 1
    assert set(res.figures()) == {"accuracy", "confusion", "time"}


@pytest.mark.slow
def test_benchmark_notebook_runs_headless(tmp_path):
    """notebooks/benchmark.ipynb executes with papermill on a tiny Case-folder dataset."""
    pm = pytest.importorskip("papermill")
    import nbformat

    data = tmp_path / "data"
    for c in cases(3):
        save_case(c, data / c.id)
    nb_path = Path(__file__).resolve().parents[1] / "notebooks" / "benchmark.ipynb"
    out = tmp_path / "out.ipynb"
    pm.execute_notebook(
        str(nb_path), str(out), parameters={"paths": [str(data)], "methods": ["random"], "quick": True},
        kernel_name="python3", progress_bar=False, cwd=str(tmp_path), execution_timeout=120,
    )  # fmt: skip
    executed = nbformat.read(out, as_version=4)
    text = "".join(o.get("text", "") for c in executed.cells for o in c.get("outputs", []))
    assert "random" in text and "AC@1" in text
