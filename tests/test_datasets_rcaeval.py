"""The RCAEval loader: nested RE1/RE2/RE3 folders, the flat variant, and the lone legacy file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import aisre.datasets as datasets
from aisre.datasets import rcaeval
from aisre.datasets.batch import load_all
from conftest import shared_dataset

from aisre.errors import AisreError, DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ROOT = SHARED / "datasets" / "rcaeval"



# --------------------------------------------------------------------------- the shared file


@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_dataset("rcaeval")


def test_legacy_file_loads_unlabelled_and_the_manifest_label_fits(shared: Path) -> None:
    """The lone file has no label in its layout: truth is None; the manifest's inferred label fits the data."""
    cases = list(rcaeval.load(shared))
    assert len(cases) == 1
    case = cases[0]
    entry = json.loads((shared / "MANIFEST.json").read_text())["cases"][0]
    assert case.id == "rcaeval/legacy/simple_metrics"
    assert case.truth is None and case.detected_at is None
    assert case.system == entry["system"] == "OB" and case.meta["system_from"] == "entities"
    assert case.window == (entry["metrics"]["start"], entry["metrics"]["end"])
    n_values = entry["metrics"]["rows"] * (entry["metrics"]["columns"] - 1) - entry["metrics"]["empty_cells"]
    assert len(case.metrics) == n_values  # the 4 empty cells are missing samples
    assert ("checkoutservice", "latency-90") in set(zip(case.metrics["entity"], case.metrics["metric"]))
    # the test supplies the label: the inferred inject time splits a CPU step of the named service
    t = entry["inject_time_inferred"]
    cpu = case.metrics[(case.metrics["entity"] == entry["service"]) & (case.metrics["metric"] == entry["fault"])]
    before, after = cpu[cpu["time"] < t]["value"], cpu[cpu["time"] >= t + 60]["value"]
    assert after.median() > 10 * before.median()


def test_legacy_file_detected_directly(shared: Path) -> None:
    file = shared / "legacy" / "simple_metrics.csv"
    assert datasets.detect(file).name == "rcaeval" and datasets.detect(shared).name == "rcaeval"
    assert [c.id for c in datasets.load(file)] == ["rcaeval/legacy/simple_metrics"]


# --------------------------------------------------------------------------- synthetic fixtures

T0 = 1_705_353_846
INJECT = T0 + 30


def _metrics_frame(n: int = 60, services: tuple[str, ...] = ("frontend", "checkoutservice", "redis")) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    data: dict[str, object] = {"time": np.arange(T0, T0 + n)}
    for s in services:
        data[f"{s}_cpu"] = rng.uniform(0.1, 1.0, n)
        data[f"{s}_mem"] = rng.uniform(1e7, 2e7, n)
        data[f"{s}_latency-90"] = rng.uniform(0.01, 0.02, n)
    frame = pd.DataFrame(data)
    frame.loc[frame["time"] >= INJECT, f"{services[1]}_cpu"] += 19.0
    return frame


def _logs(path: Path) -> None:
    ns = (np.array([T0 + 5, T0 + 1, T0 + 40]) * 1_000_000_000).astype(np.int64)
    pd.DataFrame(
        {
            "time": ["21:24", "21:24", "21:24"],
            "timestamp": ns,
            "container_name": ["frontend", "checkoutservice", "checkoutservice"],
            "message": ["GET /", "placing order", "severity=error rpc timeout"],
            "level": ["INFO", "info", "ERROR"],
            "req_path": ["/", "", ""],
            "error": ["", "", "timeout"],
            "cluster_id": [1, 2, 3],
            "log_template": ["GET <*>", "placing order", "severity=error rpc <*>"],
        }
    ).to_csv(path, index=False)


def _traces(path: Path) -> None:
    us = np.array([T0 + 10, T0 + 10.2, T0 + 50]) * 1e6
    pd.DataFrame(
        {
            "time": ["21:24"] * 3,
            "traceID": ["t1", "t1", "t2"],
            "spanID": ["a", "b", "c"],
            "serviceName": ["frontendservice", "checkoutservice", "frontendservice"],
            "methodName": [np.nan, "PlaceOrder", np.nan],
            "operationName": ["GET /cart/checkout", np.nan, "GET /"],
            "startTimeMillis": (us / 1000).astype(np.int64),
            "startTime": us.astype(np.int64),
            "duration": [250_000, 120_000, 3_000],
            "statusCode": [0.0, 2.0, np.nan],
            "parentSpanID": [np.nan, "a", np.nan],
        }
    ).to_csv(path, index=False)


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    """RE1/RE2/RE3 nested cases, flat json/parquet cases and a stray non-case copy."""
    root = tmp_path / "data"
    re2 = root / "RE2" / "RE2-OB" / "checkoutservice_cpu" / "1"
    re2.mkdir(parents=True)
    _metrics_frame().to_csv(re2 / "simple_metrics.csv", index=False)
    _metrics_frame().rename(columns=lambda c: c.replace("_", "-pod-0_container_", 1) if c != "time" else c).to_csv(re2 / "metrics.csv", index=False)
    (re2 / "inject_time.txt").write_text(f"{INJECT}\n")
    _logs(re2 / "logs.csv")
    _traces(re2 / "traces.csv")
    stray = re2.parent / "multi-source-data"
    stray.mkdir()
    _metrics_frame().to_csv(stray / "simple_metrics.csv", index=False)

    re1 = root / "RE1" / "RE1-SS" / "carts_mem" / "2"
    re1.mkdir(parents=True)
    frame = _metrics_frame(services=("front-end", "carts", "carts-db"))
    frame.insert(1, "time.1", frame["time"])
    frame = pd.concat([frame, pd.DataFrame({"time": [np.nan]})], ignore_index=True)  # trailing empty time
    frame.to_csv(re1 / "data.csv", index=False)
    (re1 / "inject_time.txt").write_text(str(INJECT))

    re3 = root / "RE3" / "RE3-TT" / "ts-auth-service_f2" / "3"
    re3.mkdir(parents=True)
    _metrics_frame(services=("ts-ui-dashboard", "ts-auth-service")).to_csv(re3 / "simple_metrics.csv", index=False)
    (re3 / "inject_time.txt").write_text(str(INJECT * 1000))  # milliseconds

    flat = root / "flat" / "re2ob_checkoutservice_delay_1"
    flat.mkdir(parents=True)
    (flat / "metrics.json").write_text(_metrics_frame().to_json(orient="columns"))
    (flat / "inject_time.txt").write_text(str(INJECT))
    _traces(flat / "traces.csv")

    flat2 = root / "flat" / "re2tt_ts-order-service_socket_2"
    flat2.mkdir(parents=True)
    pq = _metrics_frame(services=("ts-ui-dashboard", "ts-order-service"))
    pq["time"] = pq["time"] * 1_000_000  # microseconds
    pq.to_parquet(flat2 / "metrics.parquet")
    (flat2 / "inject_time.txt").write_text(str(INJECT))
    return root


IDS = [
    "rcaeval/RE1-SS/carts_mem/2",
    "rcaeval/RE2-OB/checkoutservice_cpu/1",
    "rcaeval/RE3-TT/ts-auth-service_f2/3",
    "rcaeval/re2ob_checkoutservice_delay_1",
    "rcaeval/re2tt_ts-order-service_socket_2",
]


def test_every_layout_loads_with_its_label(tree: Path) -> None:
    cases = {c.id: c for c in datasets.load(tree)}
    assert sorted(cases) == sorted(IDS)
    expect = {
        IDS[0]: ("RE1", "SS", "carts", "mem", "mem", "data.csv"),
        IDS[1]: ("RE2", "OB", "checkoutservice", "cpu", "cpu", "simple_metrics.csv"),
        IDS[2]: ("RE3", "TT", "ts-auth-service", "error", "f2", "simple_metrics.csv"),
        IDS[3]: ("RE2", "OB", "checkoutservice", "delay", "delay", "metrics.json"),
        IDS[4]: ("RE2", "TT", "ts-order-service", "socket", "socket", "metrics.parquet"),
    }
    for cid, (suite, system, service, fault, original, file) in expect.items():
        case = cases[cid]
        assert (case.meta["suite"], case.system, case.meta["metrics_file"]) == (suite, system, file)
        assert (case.truth.service, case.truth.fault, case.truth.meta["fault"]) == (service, fault, original)
        assert case.truth.inject_time == case.detected_at == float(INJECT)
        assert case.meta["normal_window"] == [T0, INJECT - 1]
        assert case.meta["anomalous_window"] == [INJECT, T0 + 59]
        assert case.window == (T0, T0 + 59)  # every time unit converted to seconds
        assert case.metrics["time"].nunique() == 60


def test_stray_copies_and_metrics_csv_are_not_cases(tree: Path) -> None:
    """``multi-source-data/`` is not a numeric rep; simple_metrics.csv wins over metrics.csv."""
    found = rcaeval.case_paths(tree)
    assert not any("multi-source-data" in str(p) for p in found)
    case = rcaeval.load_case(tree / "RE2" / "RE2-OB" / "checkoutservice_cpu" / "1")
    assert "checkoutservice" in set(case.metrics["entity"])  # not the container-level names


def test_first_underscore_split_and_extra_time_column(tree: Path) -> None:
    case = rcaeval.load_case(tree / "RE1" / "RE1-SS" / "carts_mem" / "2")
    pairs = set(zip(case.metrics["entity"], case.metrics["metric"]))
    assert ("carts-db", "latency-90") in pairs and ("carts", "cpu") in pairs
    assert not any(e.startswith("time") for e, _ in pairs)
    assert case.meta["dropped_rows"] == 1


def test_logs_and_traces_in_seconds_with_call_graph(tree: Path) -> None:
    case = rcaeval.load_case(tree / "RE2" / "RE2-OB" / "checkoutservice_cpu" / "1")
    assert case.logs["time"].tolist() == [T0 + 1, T0 + 5, T0 + 40]  # ns -> s, sorted
    assert case.logs["level"].tolist() == ["info", "info", "error"]
    assert case.logs["template"].iloc[2] == "severity=error rpc <*>"
    spans = case.spans.set_index("span_id")
    assert spans.loc["a", "start"] == pytest.approx(T0 + 10)
    assert spans.loc["a", "duration"] == pytest.approx(0.25)  # µs -> s
    assert spans.loc["a", "service"] == "frontend"  # aligned with the metric entity
    assert spans.loc["b", "operation"] == "PlaceOrder"
    assert spans["status"].tolist() == ["unset", "error", "unset"]
    assert case.topology is not None and case.topology.source == "spans"
    assert case.topology.edges() == [("frontend", "checkoutservice", "calls")]


def test_detect_accepts_root_subfolder_and_case(tree: Path) -> None:
    case = tree / "RE2" / "RE2-OB" / "checkoutservice_cpu" / "1"
    for p in (tree, tree / "RE2", case.parent, case, case / "simple_metrics.csv", tree / "flat" / "re2ob_checkoutservice_delay_1"):
        assert datasets.detect(p).name == "rcaeval", p
    assert [c.id for c in datasets.load(tree / "RE2", "rcaeval")] == [IDS[1]]


# --------------------------------------------------------------------------- malformed input


def _one(tmp: Path, files: dict[str, str | bytes]) -> Path:
    folder = tmp / "RE2-OB" / "checkoutservice_cpu" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    base = {"simple_metrics.csv": _metrics_frame(5).to_csv(index=False), "inject_time.txt": str(T0 + 2)}
    for name, content in {**base, **files}.items():
        (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
    return folder


GOOD = _metrics_frame(3).to_csv(index=False)
HEAD, *ROWS = GOOD.splitlines()


@pytest.mark.parametrize(
    ("files", "file", "field"),
    [
        ({"simple_metrics.csv": GOOD[:-40]}, "simple_metrics.csv", "redis_mem"),
        ({"simple_metrics.csv": GOOD.replace("time,", "when,", 1)}, "simple_metrics.csv", "time"),
        ({"simple_metrics.csv": "\n".join([HEAD, ROWS[0], ROWS[0]]) + "\n"}, "simple_metrics.csv", "time"),
        ({"simple_metrics.csv": "\n".join([HEAD, ROWS[1], ROWS[0]]) + "\n"}, "simple_metrics.csv", "time"),
        ({"simple_metrics.csv": "\n".join([HEAD, ",".join([ROWS[0].split(",")[0], "x"] + ROWS[0].split(",")[2:])]) + "\n"}, "simple_metrics.csv", "frontend_cpu"),
        ({"simple_metrics.csv": "\n".join([HEAD, ",".join([ROWS[0].split(",")[0], "-inf"] + ROWS[0].split(",")[2:])]) + "\n"}, "simple_metrics.csv", "frontend_cpu"),
        ({"simple_metrics.csv": ""}, "simple_metrics.csv", None),
        ({"inject_time.txt": "soon"}, "inject_time.txt", "inject_time"),
        ({"logs.csv": "time,container_name,message\n21:24,frontend,hi\n"}, "logs.csv", "timestamp"),
        ({"logs.csv": "timestamp,container_name\nabc,frontend\n"}, "logs.csv", "timestamp"),
        ({"traces.csv": "traceID,spanID,serviceName,startTime,duration\nt,s,f,1705353846000000,oops\n"}, "traces.csv", "duration"),
        ({"traces.csv": "traceID,spanID,serviceName,duration\nt,s,f,3\n"}, "traces.csv", "startTime"),
    ],
)
def test_malformed_input_names_file_and_field(tmp_path: Path, files: dict, file: str, field: str | None) -> None:
    folder = _one(tmp_path, files)
    with pytest.raises(DataError) as err:
        rcaeval.load_case(folder)
    assert err.value.path == str(folder / file)
    assert err.value.field == field


@pytest.mark.parametrize(
    "doc",
    [[1, 2, 3], {"time": [1, 2], "svc_cpu": [1]}, {"columns": ["time"], "data": [[1, 2]]}, "text", {"time": [1, None, 3], "svc_cpu": [1, 2, 3]},
     {"time": [1, 2], "svc_cpu": [[1], 2]}],  # fmt: skip
)
def test_wrong_json_shapes_are_data_errors(tmp_path: Path, doc: object) -> None:
    folder = tmp_path / "re2ob_checkoutservice_cpu_1"
    folder.mkdir()
    (folder / "metrics.json").write_text(json.dumps(doc))
    with pytest.raises(DataError) as err:
        rcaeval.load_case(folder)
    assert err.value.path == str(folder / "metrics.json")


def test_json_in_record_and_split_shapes(tmp_path: Path) -> None:
    frame = _metrics_frame(4)
    for orient in ("records", "split", "columns"):
        folder = tmp_path / orient / "re1ob_checkoutservice_cpu_1"
        folder.mkdir(parents=True)
        (folder / "metrics.json").write_text(frame.to_json(orient=orient))
        case = rcaeval.load_case(folder)
        assert len(case.metrics) == 4 * 9 and case.truth.inject_time is None


def test_batch_reports_the_bad_case_and_goes_on(tree: Path) -> None:
    (tree / "RE3" / "RE3-TT" / "ts-auth-service_f2" / "3" / "inject_time.txt").write_text("later")
    cases, failures = load_all(tree)
    assert [c.id for c in cases] == [i for i in IDS if "RE3" not in i]
    assert len(failures) == 1 and failures[0].field == "inject_time"


NAMES = ["simple_metrics.csv", "inject_time.txt", "logs.csv", "traces.csv"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), which=st.sampled_from(NAMES + ["metrics.json", "metrics.parquet"]))
def test_random_bytes_raise_only_aisre_errors(tmp_path: Path, data: bytes, which: str) -> None:
    folder = tmp_path / "re2ob_checkoutservice_cpu_1"
    folder.mkdir(exist_ok=True)
    for f in folder.iterdir():
        f.unlink()
    (folder / "simple_metrics.csv").write_text(GOOD)
    (folder / which).write_bytes(data)
    try:
        rcaeval.load_case(folder)
    except AisreError:
        pass


_json = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(["time", "svc_cpu", "columns", "data", "metrics", "a_b"]), inner, max_size=4),
    max_leaves=16,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=_json)
def test_random_json_raises_only_aisre_errors(tmp_path: Path, doc: object) -> None:
    folder = tmp_path / "re2ob_checkoutservice_cpu_1"
    folder.mkdir(exist_ok=True)
    (folder / "metrics.json").write_text(json.dumps(doc))
    try:
        case = rcaeval.load_case(folder)
    except AisreError:
        return
    assert np.isfinite(case.metrics["value"]).all()
