"""Packed Case folders: cases saved with one TablePack come back exactly, share rows on disk
and never in memory, and a damaged pack or manifest is a DataError, not a crash."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

import aisre.case_pack as case_module
from aisre.case import (
    PACKED_SCHEMA,
    Case,
    TablePack,
    Topology,
    Truth,
    _conform,
    load_case,
    load_cases,
    save_case,
)
from aisre.errors import DataError, SchemaError

TABLES = ("metrics", "logs", "spans", "events")


def _metrics(n: int, t0: float, seed: int, entities: tuple[str, ...] = ("cart", "db", "front")) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "time": t0 + np.arange(n) // len(entities),
        "entity": np.array(entities, dtype=object)[np.arange(n) % len(entities)],
        "metric": np.where(rng.random(n) < 0.5, "cpu", "lat_90").astype(object),
        "value": rng.normal(size=n),
    })  # fmt: skip


def _case(i: int, metrics: pd.DataFrame, **kw) -> Case:
    topo = Topology()
    topo.add_edge("front", "cart")
    topo.add_edge("cart", "db", "reads")
    return Case(id=f"t/{i}", system="OB", window=(0.0, 1e9), detected_at=5.0, topology=topo, metrics=metrics,
                truth=Truth("cart", "cpu", 5.0, "cart-0", {"fault": "cpu_hog"}), meta={"i": i, "w": [1.0, 2.0]},
                source=f"src/{i}", **kw)  # fmt: skip


def _pack_rows(folder) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(folder / "metrics.parquet").metadata.num_rows


def assert_same(a: Case, b: Case) -> None:
    """Every table has the same values (NaN where NaN, the sign of zero too), and every record is equal."""
    for name in TABLES:
        x, y = getattr(a, name), getattr(b, name)
        assert list(x.columns) == list(y.columns), name
        pd.testing.assert_frame_equal(x, y, check_dtype=False, check_categorical=False)
        for column in x.columns:
            if x[column].dtype.kind == "f":
                xs, ys = x[column].to_numpy(), y[column].to_numpy()
                assert np.array_equal(xs, ys, equal_nan=True) and np.array_equal(np.signbit(xs), np.signbit(ys)), column
            else:
                as_list = x[column].astype(object).where(x[column].notna(), None).tolist()
                assert as_list == y[column].astype(object).where(y[column].notna(), None).tolist(), (name, column)
    assert a.topology == b.topology and a.truth == b.truth and a.alerts == b.alerts and a.changes == b.changes
    assert (a.id, a.system, a.window, a.detected_at, a.meta, a.source) == (b.id, b.system, b.window, b.detected_at, b.meta, b.source)


def _save(tmp_path, cases: list[Case]) -> list:
    with TablePack(tmp_path / "pack") as pack:
        return [save_case(c, tmp_path / "cases" / f"c{i}", pack=pack) for i, c in enumerate(cases)]


def test_a_shared_run_of_rows_is_stored_once_and_every_case_comes_back(tmp_path):
    """Three cases carry one 30 000-row baseline after their own rows: the pack holds it once
    (plus at most two chunks of about 1024 rows per case where the runs meet), and each case
    reads back equal, with categories that are the values it has, sorted."""
    baseline = _metrics(30_000, 1e6, seed=0)
    own = [_metrics(2_000, 1000.0 * i, seed=10 + i, entities=("cart", "db", "front", f"only{i}")[: 3 + i % 2]) for i in range(3)]
    cases = [_case(i, pd.concat([own[i], baseline], ignore_index=True)) for i in range(3)]
    folders = _save(tmp_path, cases)
    assert _pack_rows(tmp_path / "pack") <= 30_000 + 6_000 + 3 * 2 * 4096
    assert sum(len(c.metrics) for c in cases) == 96_000
    manifest = json.loads((folders[2] / "manifest.json").read_text())
    assert manifest["schema"] == PACKED_SCHEMA == "aisre.case/2"
    assert not (folders[2] / "metrics.parquet").exists() and "metrics.parquet" not in manifest["files"]
    for before, after in zip(cases, load_cases(folders)):
        assert_same(before, after)
        for column in ("entity", "metric"):
            assert list(after.metrics[column].cat.categories) == sorted(set(before.metrics[column]))
    assert_same(cases[1], load_case(folders[1]))  # one folder alone reads too


def test_every_kind_of_value_survives(tmp_path):
    """NaN, -0.0, infinities, null labels and text, empty and non-ASCII text come back as they
    were; a text column with no value keeps its kind of missing value (None or NaN)."""
    metrics = pd.DataFrame({"time": [1.0, 2.0, 3.0, 4.0], "entity": ["a", None, "ü", "a"], "metric": ["m", "m", None, "m"],
                            "value": [float("nan"), -0.0, math.inf, -math.inf]})  # fmt: skip
    logs = pd.DataFrame({"time": [1.0, 2.0], "entity": ["a", "a"], "level": ["ERROR", None], "template": ["", "x <*>"],
                         "message": ["naïve ☃", None], "trace_id": [None, None]})  # fmt: skip
    spans = pd.DataFrame({"trace_id": ["t", "t"], "span_id": ["1", "2"], "parent_id": [None, "1"], "service": ["a", "b"],
                          "operation": ["GET", "get"], "start": [0.5, 0.6], "duration": [0.0, -0.0], "status": ["ok", "error"],
                          "attributes": ["{}", '{"k": 1}']})  # fmt: skip
    events = pd.DataFrame({"time": [0.0, 1.0], "entity": ["a", "b"], "kind": ["deploy", "k8s"], "reason": [None, None],
                           "message": pd.Series([np.nan, np.nan], dtype=object), "attributes": ["{}", "{}"]})  # fmt: skip
    case = _case(0, metrics, logs=logs, spans=spans, events=events)
    same_but_zero = _case(1, metrics.assign(value=[float("nan"), 0.0, math.inf, -math.inf]))
    folders = _save(tmp_path, [case, same_but_zero])
    back = list(load_cases(folders))
    assert_same(case, back[0])
    assert_same(same_but_zero, back[1])  # 0.0 is not -0.0: no chunk was shared by mistake
    assert np.signbit(back[0].metrics["value"].to_numpy()[1]) and not np.signbit(back[1].metrics["value"].to_numpy()[1])


def test_rows_that_repeat_are_cut_evenly(tmp_path):
    """A table of one repeated row whose hash marks a chunk's end is cut every 1024 rows, not
    into one-row chunks: one chunk stored, few ranges, the same rows back."""
    mask = np.uint64((1 << case_module._CHUNK_BITS) - 1)
    row = lambda v: pd.DataFrame({"time": [1.0], "entity": ["a"], "metric": ["m"], "value": [float(v)]})
    value = next(v for v in range(100_000) if (case_module._row_hashes("metrics", row(v))[0] & mask) == 0)
    metrics = row(value).iloc[np.zeros(50_000, dtype=int)].reset_index(drop=True)
    (folder,) = _save(tmp_path, [_case(0, metrics)])
    ranges = json.loads((folder / "manifest.json").read_text())["tables"]["metrics"]["rows"]
    assert len(ranges) <= 50 and _pack_rows(tmp_path / "pack") <= 2 * 1024
    assert_same(_case(0, metrics), load_case(folder))


def test_text_that_is_not_text_stays_in_the_folder(tmp_path):
    """A table whose values do not fit the pack's types (numbers in a text column) is written in
    the case's own folder and reads back like the rest."""
    logs = pd.DataFrame({"time": [1.0], "entity": ["a"], "level": ["INFO"], "template": ["t"], "message": [42], "trace_id": ["x"]})
    case = _case(0, _metrics(10, 0.0, 1), logs=logs)
    (folder,) = _save(tmp_path, [case])
    manifest = json.loads((folder / "manifest.json").read_text())
    assert "logs" not in manifest["tables"] and "logs.parquet" in manifest["files"]
    back = load_case(folder)
    assert back.logs["message"].tolist() == [42]
    pd.testing.assert_frame_equal(back.metrics, case.metrics, check_dtype=False, check_categorical=False)


def test_rows_spread_over_row_groups(tmp_path, monkeypatch):
    """With small row groups (and a reader that keeps few of them) cases whose rows span groups
    come back equal, their categories merged across groups and sorted."""
    monkeypatch.setattr(case_module, "_PACK_GROUP_ROWS", 3_000)
    monkeypatch.setattr(case_module, "_PACK_KEEP_ROWS", 4_000)
    baseline = _metrics(8_000, 1e6, seed=3, entities=("zeta", "alpha", "mid"))
    cases = [_case(i, pd.concat([baseline, _metrics(2_500, 1000.0 * i, 20 + i, (f"e{i}", "alpha"))], ignore_index=True))
             for i in range(4)]  # fmt: skip
    folders = _save(tmp_path, cases)
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "pack" / "metrics.parquet").metadata.num_row_groups >= 3
    for before, after in zip(cases[::-1], load_cases(folders[::-1])):  # backwards: groups evicted and read again
        assert_same(before, after)
        assert list(after.metrics["entity"].cat.categories) == sorted(set(before.metrics["entity"]))


def test_reloaded_tables_conform_and_belong_to_their_case(tmp_path):
    """Tables read from a pack need nothing of Case's checks (conforming returns them as they
    are), and changing one case's rows in place changes no other case, nor a later read."""
    baseline = _metrics(5_000, 1e6, seed=4)
    cases = [_case(i, pd.concat([_metrics(100, 10.0 * i, i), baseline], ignore_index=True)) for i in range(2)]
    folders = _save(tmp_path, cases)
    a, b = load_cases(folders)
    for name in TABLES:
        assert _conform(name, getattr(a, name)) is getattr(a, name)
    a.metrics.loc[len(a.metrics) - 1, "value"] = 1e9
    a.metrics._mgr.blocks[0].values[:, -2] = -7.0  # even writing through the block array
    assert b.metrics["value"].iloc[-1] == baseline["value"].iloc[-1] and b.metrics["time"].iloc[-2] == baseline["time"].iloc[-2]
    assert_same(cases[0], load_case(folders[0]))


def test_damaged_packs_and_manifests_are_data_errors(tmp_path):
    """A garbled or missing pack, ranges outside it, categories that miss a value, or a pack of
    another table: each is a DataError naming the file, never another exception."""
    logs = pd.DataFrame({"time": [1.0], "entity": ["a"], "level": ["INFO"], "template": ["t"], "message": ["m"], "trace_id": ["x"]})
    folders = _save(tmp_path, [_case(0, _metrics(3_000, 0.0, 5), logs=logs), _case(1, _metrics(3_000, 0.0, 6))])
    manifest_path = folders[0] / "manifest.json"
    good = json.loads(manifest_path.read_text())

    def with_manifest(change) -> None:
        doc = json.loads(json.dumps(good))
        change(doc["tables"]["metrics"])
        manifest_path.write_text(json.dumps(doc))
        with pytest.raises(DataError, match=r"manifest.json|\.parquet"):
            load_case(folders[0])

    with_manifest(lambda ref: ref.update(rows=[[0, 10**9]]))
    with_manifest(lambda ref: ref.update(rows="all"))
    with_manifest(lambda ref: ref["categories"].update(entity=["cart"]))  # db and front are in the rows
    with_manifest(lambda ref: ref["categories"].update(entity=["cart", "db", "front", "nowhere"]))
    with_manifest(lambda ref: ref.update(file="../../pack/logs.parquet"))
    with_manifest(lambda ref: ref.update(file="../../pack/none.parquet"))
    manifest_path.write_text(json.dumps(good))
    pack_file = tmp_path / "pack" / "metrics.parquet"
    data = pack_file.read_bytes()
    for broken in (data[: len(data) // 2], b"PAR1" + bytes(200) + b"PAR1", data[:100] + bytes(len(data) - 200) + data[-100:]):
        pack_file.write_bytes(broken)
        with pytest.raises(DataError, match="metrics.parquet"):
            list(load_cases(folders))


def test_a_packed_folder_without_tables_or_from_a_newer_aisre_fails_clearly(tmp_path):
    """A packed manifest must say where its tables are; an unknown schema names the ones read."""
    (folder,) = _save(tmp_path, [_case(0, _metrics(10, 0.0, 1))])
    doc = json.loads((folder / "manifest.json").read_text())
    del doc["tables"]
    (folder / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(DataError, match="tables"):
        load_case(folder)
    doc["schema"] = "aisre.case/3"
    (folder / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=r"aisre.case/3.*aisre.case/1, aisre.case/2"):
        load_case(folder)


def test_plain_folders_are_unchanged(tmp_path):
    """Without a pack, save_case writes schema aisre.case/1 with a Parquet file per table, as before."""
    case = _case(0, _metrics(10, 0.0, 1))
    folder = save_case(case, tmp_path / "plain")
    doc = json.loads((folder / "manifest.json").read_text())
    assert doc["schema"] == "aisre.case/1" and "tables" not in doc
    assert {"metrics.parquet", "logs.parquet", "alerts.json", "topology.json"} <= set(doc["files"])
    assert_same(case, load_case(folder))
    assert_same(case, next(load_cases([folder])))
