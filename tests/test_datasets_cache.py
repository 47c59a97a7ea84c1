"""The dataset cache: a reload gives the same cases, and any change to the files misses."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd
import pytest

from aisre.datasets import cache
from aisre.datasets.batch import LoadFailure, load_all
from aisre.errors import DataError

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))

HEADER = "time,carts_cpu,carts-db_cpu,carts_lat_90\n"
NORMAL = HEADER + "100,1.0,2.0,0.1\n101,1.1,2.1,0.1\n"
ANOMALOUS = HEADER + "500,90.0,2.0,0.3\n501,95.0,2.1,0.4\n"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISRE_CACHE", raising=False)


def _rcd(root: Path, name: str, anomalous: str = ANOMALOUS) -> Path:
    folder = root / name / "1"
    folder.mkdir(parents=True)
    (folder / "normal.csv").write_text(NORMAL)
    (folder / "anomalous.csv").write_text(anomalous)
    return folder


def _same(a: list, b: list) -> None:
    assert [c.id for c in a] == [c.id for c in b]
    for x, y in zip(a, b):
        assert (x.system, x.window, x.detected_at, x.truth, x.meta, x.source) == (y.system, y.window, y.detected_at, y.truth, y.meta, y.source)
        pd.testing.assert_frame_equal(x.metrics, y.metrics, check_dtype=False, check_categorical=False)
        assert x.topology == y.topology


def test_reload_equals_parse_and_lives_under_aisre_home(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _rcd(data, "carts-cpu")
    _rcd(data, "user-mem")
    first = list(cache.cached_load(data))
    assert cache.is_cached(data)
    entry = tmp_path / "home" / "cache" / cache.cache_key(data)
    assert sorted(p.name for p in entry.iterdir()) == ["index.json", "rcd__carts-cpu__1", "rcd__user-mem__1"]
    again = list(cache.cached_load(data))
    _same(first, again)
    _same(first, load_all(data)[0])


def test_a_changed_file_misses(tmp_path: Path) -> None:
    data = tmp_path / "data"
    folder = _rcd(data, "carts-cpu")
    key = cache.cache_key(data)
    list(cache.cached_load(data))
    time.sleep(0.01)
    (folder / "anomalous.csv").write_text(ANOMALOUS.replace("90.0", "80.0"))
    assert cache.cache_key(data) != key and not cache.is_cached(data)
    (case,) = cache.cached_load(data)
    assert case.wide().loc[500.0, "carts:cpu"] == 80.0
    _rcd(data, "orders-mem")
    assert [c.id for c in cache.cached_load(data)] == ["rcd/carts-cpu/1", "rcd/orders-mem/1"]


def test_failures_are_remembered_or_raised(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _rcd(data, "carts-cpu")
    _rcd(data, "orders-mem", HEADER + "500,1.0,oops,0.1\n")
    with pytest.raises(DataError, match="text"):
        list(cache.cached_load(data))
    assert not cache.is_cached(data)  # an interrupted build commits nothing
    failures: list[LoadFailure] = []
    assert [c.id for c in cache.cached_load(data, failures=failures)] == ["rcd/carts-cpu/1"]
    assert [f.field for f in failures] == ["carts-db_cpu"]
    again: list[LoadFailure] = []
    assert [c.id for c in cache.cached_load(data, failures=again)] == ["rcd/carts-cpu/1"]
    assert again == failures
    with pytest.raises(DataError, match="text"):
        list(cache.cached_load(data))


def test_an_abandoned_build_commits_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _rcd(data, "carts-cpu")
    _rcd(data, "user-mem")
    gen = cache.cached_load(data, cache_root=tmp_path / "c")
    next(gen)
    gen.close()
    assert not cache.is_cached(data, cache_root=tmp_path / "c")
    assert list((tmp_path / "c").iterdir()) == []


def test_a_damaged_entry_is_rebuilt(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _rcd(data, "carts-cpu")
    list(cache.cached_load(data))
    entry = tmp_path / "home" / "cache" / cache.cache_key(data)
    (entry / "rcd__carts-cpu__1" / "manifest.json").unlink()
    assert not cache.is_cached(data)
    assert [c.id for c in cache.cached_load(data)] == ["rcd/carts-cpu/1"]
    assert cache.clear_cache() == 1 and not cache.is_cached(data)


def test_no_layout_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(DataError, match="tried"):
        list(cache.cached_load(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rcd", "rcaeval"])
def test_reload_is_much_faster_than_parsing(tmp_path: Path, name: str) -> None:
    """On the shared data a reload beats parsing the CSVs (CPU time; the ratio is printed by benchmarks/bench_load.py)."""
    root = SHARED / "datasets" / name
    if not root.is_dir():
        pytest.skip(f"AISRE_SHARED not found: no {name} data at {root}")
    t = time.process_time()
    parsed, _ = load_all(root)
    parse = time.process_time() - t
    list(cache.cached_load(root))
    t = time.process_time()
    reloaded = list(cache.cached_load(root))
    reload = time.process_time() - t
    _same(parsed, reloaded)
    assert reload * 2 < parse
