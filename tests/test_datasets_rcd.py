"""The RCD Sock Shop loader: one case per repetition, both windows at their real times."""

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
from aisre.datasets import rcd
from aisre.datasets.batch import convert, load_all
from conftest import shared_dataset

from aisre.errors import AisreError, DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))
ROOT = SHARED / "datasets" / "rcd"



@pytest.fixture(scope="module")
def shared() -> Path:
    return shared_dataset("rcd")


@pytest.fixture(scope="module")
def cases(shared: Path) -> dict[str, object]:
    return {c.id: c for c in rcd.load(shared)}


@pytest.fixture(scope="module")
def manifest(shared: Path) -> dict:
    return json.loads((shared / "MANIFEST.json").read_text())


def test_every_shared_case_loads_with_its_label(cases: dict, manifest: dict) -> None:
    """All 36 cases load; service, fault and windows match the manifest."""
    assert len(cases) == 36
    for entry in manifest["cases"]:
        case = cases["rcd/" + entry["case_id"].removeprefix("sock-shop-data/")]
        assert case.system == "SS" and case.meta["dataset"] == "rcd"
        assert case.truth.service == entry["service"]
        assert case.truth.fault == entry["fault"]
        assert case.truth.meta["fault"] == entry["fault_original"]
        assert case.meta["normal_window"] == [entry["normal"]["start"], entry["normal"]["end"]]
        assert case.meta["anomalous_window"] == [entry["anomalous"]["start"], entry["anomalous"]["end"]]
        assert case.truth.inject_time == entry["anomalous"]["start"] == case.detected_at
        rows = entry["normal"]["rows"] + entry["anomalous"]["rows"]
        assert case.metrics["time"].nunique() == rows
        assert len(case.metrics) == rows * 38  # no empty cell in RCD


def test_cases_come_sorted(cases: dict) -> None:
    """Cases come by folder then numeric rep."""
    ids = list(cases)
    assert ids == sorted(ids, key=lambda i: (i.split("/")[1], int(i.split("/")[2])))


def test_gap_between_windows_is_kept_not_closed(cases: dict, manifest: dict) -> None:
    """The windows stay days apart; the reversed case (normal after anomalous) is flagged."""
    gaps = {c.id: c.meta["gap_seconds"] for c in cases.values()}
    assert max(gaps.values()) == 249789.0 and min(gaps.values()) == -880.0
    reversed_ = [c.id for c in cases.values() if c.meta["normal_after_anomalous"]]
    expected = ["rcd/" + e["case_id"].removeprefix("sock-shop-data/") for e in manifest["cases"] if e["normal_after_anomalous"]]
    assert reversed_ == expected == ["rcd/orders-mem/5"]
    case = cases["rcd/orders-mem/5"]
    assert case.metrics["time"].is_monotonic_increasing
    t = case.metrics["time"]
    nw, aw = case.meta["normal_window"], case.meta["anomalous_window"]
    assert ((t >= nw[0]) & (t <= nw[1]) | (t >= aw[0]) & (t <= aw[1])).all()
    # no row is invented between the windows
    assert not ((t > aw[1]) & (t < nw[0])).any()


def test_columns_split_on_the_first_underscore(cases: dict) -> None:
    """``carts_lat_90`` is carts / lat_90, and carts-db stays its own entity."""
    case = cases["rcd/carts-cpu/1"]
    pairs = set(zip(case.metrics["entity"], case.metrics["metric"]))
    assert ("carts", "lat_90") in pairs and ("shipping", "lat_50") in pairs
    assert ("carts-db", "cpu") in pairs
    assert not any(m in ("lat", "50", "90", "99") for _, m in pairs)
    first = case.metrics[case.metrics["time"] == 1652565600]
    assert first.set_index(["entity", "metric"]).loc[("carts-db", "cpu"), "value"] == pytest.approx(100.19112315502423)


def test_detect_accepts_root_subfolder_case_and_file(shared: Path) -> None:
    folder = shared / "sock-shop-data" / "carts-cpu" / "1"
    assert rcd.detect(shared) and rcd.detect(shared / "sock-shop-data")
    assert rcd.detect(folder.parent) and rcd.detect(folder) and rcd.detect(folder / "normal.csv")
    assert datasets.detect(folder).name == "rcd"
    assert [c.id for c in datasets.load(folder.parent, format="rcd")] == [
        "rcd/carts-cpu/1", "rcd/carts-cpu/2", "rcd/carts-cpu/4", "rcd/carts-cpu/5",
    ]  # fmt: skip


# --------------------------------------------------------------------------- malformed input

HEADER = "time,carts_cpu,carts-db_cpu,carts_lat_90\n"


def _case(tmp: Path, normal: str, anomalous: str, name: str = "carts-cpu") -> Path:
    folder = tmp / "sock-shop-data" / name / "1"
    folder.mkdir(parents=True)
    (folder / "normal.csv").write_text(normal)
    (folder / "anomalous.csv").write_text(anomalous)
    return folder


GOOD_N = HEADER + "100,1.0,2.0,0.1\n101,1.1,2.1,0.1\n"
GOOD_A = HEADER + "500,90.0,2.0,0.3\n501,95.0,2.1,0.4\n"


def test_small_generated_case_loads(tmp_path: Path) -> None:
    case = rcd.load_case(_case(tmp_path, GOOD_N, GOOD_A))
    assert case.id == "rcd/carts-cpu/1" and case.truth.inject_time == 500.0
    assert case.window == (100.0, 501.0)
    assert case.wide().loc[500.0, "carts:cpu"] == 90.0


@pytest.mark.parametrize(
    ("normal", "field", "words"),
    [
        (HEADER + "100,1.0,2.0,0.1\n101,1.1,2.", "carts-db_cpu", "truncated"),
        ("carts_cpu,carts-db_cpu\n1.0,2.0\n", "time", "no 'time' column"),
        (HEADER + "100,1.0,oops,0.1\n101,1.1,2.1,0.1\n", "carts-db_cpu", "text"),
        (HEADER + "100,1.0,NaN,0.1\n101,1.1,2.1,0.1\n", "carts-db_cpu", "text"),
        (HEADER + "100,1.0,inf,0.1\n101,1.1,2.1,0.1\n", "carts-db_cpu", "infinite"),
        (HEADER + "100,1.0,2.0,0.1\n100,1.1,2.1,0.1\n", "time", "duplicate"),
        (HEADER + "101,1.0,2.0,0.1\n100,1.1,2.1,0.1\n", "time", "out of order"),
        (HEADER + ",1.0,2.0,0.1\n100,1.1,2.1,0.1\n", "time", "missing"),
        ("", None, "empty"),
        ("time,cpu\n100,1\n", "cpu", "<container>_<metric>"),
    ],
)
def test_malformed_input_names_file_and_field(tmp_path: Path, normal: str, field: str | None, words: str) -> None:
    folder = _case(tmp_path, normal, GOOD_A)
    with pytest.raises(DataError) as err:
        rcd.load_case(folder)
    assert err.value.path == str(folder / "normal.csv")
    assert err.value.field == field
    assert words in str(err.value)


def test_error_names_the_csv_line(tmp_path: Path) -> None:
    folder = _case(tmp_path, HEADER + "100,1.0,2.0,0.1\n101,1.1,x,0.1\n", GOOD_A)
    with pytest.raises(DataError) as err:
        rcd.load_case(folder)
    assert err.value.row == 3


def test_overlapping_windows_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="overlaps"):
        rcd.load_case(_case(tmp_path, GOOD_N, HEADER + "101,1.0,2.0,0.1\n102,1.0,2.0,0.1\n"))


def test_batch_reports_the_bad_case_and_goes_on(tmp_path: Path) -> None:
    _case(tmp_path, GOOD_N, GOOD_A, "carts-cpu")
    _case(tmp_path, GOOD_N, HEADER + "500,1.0,zz,0.1\n", "orders-mem")
    _case(tmp_path, GOOD_N, GOOD_A, "user-mem")
    cases, failures = load_all(tmp_path, "rcd")
    assert [c.id for c in cases] == ["rcd/carts-cpu/1", "rcd/user-mem/1"]
    assert len(failures) == 1 and failures[0].field == "carts-db_cpu"
    assert failures[0].path.endswith("orders-mem/1/anomalous.csv")
    written, failures = convert(tmp_path, tmp_path / "out")
    assert [p.name for p in written] == ["rcd__carts-cpu__1", "rcd__user-mem__1"]
    back = list(datasets.load(tmp_path / "out"))
    assert [c.id for c in back] == ["rcd/carts-cpu/1", "rcd/user-mem/1"]
    pd.testing.assert_frame_equal(back[0].metrics, cases[0].metrics, check_dtype=False, check_categorical=False)


def test_load_of_an_empty_folder_fails_clearly(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no RCD case"):
        list(rcd.load(tmp_path))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=400), which=st.sampled_from(["normal.csv", "anomalous.csv"]))
def test_random_bytes_raise_only_aisre_errors(tmp_path: Path, data: bytes, which: str) -> None:
    """Whatever the bytes, the loader returns a case or raises an AisreError."""
    folder = tmp_path / "carts-cpu" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "normal.csv").write_text(GOOD_N)
    (folder / "anomalous.csv").write_text(GOOD_A)
    (folder / which).write_bytes(data)
    try:
        rcd.load_case(folder)
    except AisreError:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    values=st.lists(
        st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5), st.none()),
        min_size=6, max_size=6,
    )  # fmt: skip
)
def test_random_cells_raise_only_aisre_errors(tmp_path: Path, values: list) -> None:
    cells = ["" if v is None else str(v).replace(",", ";").replace("\n", " ").replace("\r", " ").replace('"', "") for v in values]
    normal = HEADER + f"100,{cells[0]},{cells[1]},{cells[2]}\n101,{cells[3]},{cells[4]},{cells[5]}\n"
    folder = tmp_path / "carts-cpu" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "normal.csv").write_text(normal)
    (folder / "anomalous.csv").write_text(GOOD_A)
    try:
        case = rcd.load_case(folder)
    except AisreError:
        return
    assert np.isfinite(case.metrics["value"]).all()
