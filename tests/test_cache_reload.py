"""The dataset cache reloads complete cases equal to parsing, stores shared rows once, and
rebuilds an entry whose files were damaged instead of failing."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from aisre.datasets import cache
from aisre.datasets.batch import load_all
from test_case_pack import assert_same

SHARED = Path(os.environ.get("AISRE_SHARED", Path(__file__).resolve().parents[2] / "shared"))

COLUMNS = ["carts_cpu", "carts-db_cpu", "carts_lat_90", "orders_cpu", "orders_lat_90"]


def _csv(t0: int, n: int, seed: int) -> str:
    rng = np.random.default_rng(seed)
    rows = [",".join([str(t0 + i), *(f"{v:.6f}" for v in rng.normal(size=len(COLUMNS)))]) for i in range(n)]
    return "\n".join(["time," + ",".join(COLUMNS), *rows]) + "\n"


def _rcd(root: Path) -> Path:
    """Three RCD repetitions that share one 4000-second normal window (as a scenario's baseline)."""
    normal = _csv(1_000_000, 4_000, seed=0)
    for i, name in enumerate(["carts-cpu", "orders-mem", "carts-mem"]):
        folder = root / name / "1"
        folder.mkdir(parents=True)
        (folder / "normal.csv").write_text(normal)
        (folder / "anomalous.csv").write_text(_csv(2_000_000 + 1000 * i, 300, seed=1 + i))
    return root


def _pack(cache_root: Path, data: Path) -> Path:
    return cache_root / f"{cache.cache_key(data)}.tables"


def test_reloaded_cases_equal_parsed_ones_and_shared_rows_are_stored_once(tmp_path):
    """Every table, the truth, the topology and the meta of a reload equal what parsing gives;
    the normal window the three cases share is stored once."""
    data = _rcd(tmp_path / "data")
    parsed, _ = load_all(data)
    built = list(cache.cached_load(data, cache_root=tmp_path / "c"))
    reloaded = list(cache.cached_load(data, cache_root=tmp_path / "c"))
    assert [c.id for c in reloaded] == [c.id for c in parsed] == [c.id for c in built]
    for a, b in zip(parsed, reloaded):
        assert_same(a, b)
        assert b.truth is not None and b.truth == a.truth
    import pyarrow.parquet as pq

    stored = pq.ParquetFile(_pack(tmp_path / "c", data) / "metrics.parquet").metadata.num_rows
    total = sum(len(c.metrics) for c in parsed)
    assert total == 3 * (4_000 + 300) * len(COLUMNS)
    assert stored < 4_000 * len(COLUMNS) + 3 * (300 * len(COLUMNS) + 2 * 2048)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip", "delete"])
def test_a_damaged_pack_is_rebuilt(tmp_path, damage):
    """A truncated, overwritten, bit-flipped (its page checksums catch that) or missing pack
    file gives the same cases again (the entry is rebuilt from the data), and the rebuilt entry
    reloads."""
    data = _rcd(tmp_path / "data")
    first = list(cache.cached_load(data, cache_root=tmp_path / "c"))
    file = _pack(tmp_path / "c", data) / "metrics.parquet"
    if damage == "truncate":
        file.write_bytes(file.read_bytes()[: file.stat().st_size // 2])
    elif damage == "garbage":
        file.write_bytes(b"PAR1" + os.urandom(file.stat().st_size - 8) + b"PAR1")
    elif damage == "flip":
        content = bytearray(file.read_bytes())
        content[len(content) // 3] ^= 0xFF  # inside a data page: the footer still reads
        file.write_bytes(bytes(content))
    else:
        shutil.rmtree(file.parent)
        assert not cache.is_cached(data, cache_root=tmp_path / "c")
    again = list(cache.cached_load(data, cache_root=tmp_path / "c"))
    for a, b in zip(first, again, strict=True):
        assert_same(a, b)
    assert cache.is_cached(data, cache_root=tmp_path / "c")
    for a, b in zip(first, cache.cached_load(data, cache_root=tmp_path / "c"), strict=True):
        assert_same(a, b)


@pytest.mark.parametrize("damage", ["{", '{"schema": "aisre.case/9"}', "ranges"])
def test_a_damaged_manifest_is_rebuilt(tmp_path, damage):
    """A garbled manifest, one from a newer aisre, or one whose rows lie outside the pack: the
    entry is rebuilt, never a crash and never wrong rows."""
    data = _rcd(tmp_path / "data")
    first = list(cache.cached_load(data, cache_root=tmp_path / "c"))
    entry = tmp_path / "c" / cache.cache_key(data)
    manifest = next(entry.glob("*/manifest.json"))
    if damage == "ranges":
        doc = json.loads(manifest.read_text())
        doc["tables"]["metrics"]["rows"] = [[0, 10**9]]
        damage = json.dumps(doc)
    manifest.write_text(damage)
    for a, b in zip(first, cache.cached_load(data, cache_root=tmp_path / "c"), strict=True):
        assert_same(a, b)


def test_clear_cache_removes_entries_with_their_packs(tmp_path):
    """clear_cache counts the entry and leaves no pack behind."""
    data = _rcd(tmp_path / "data")
    list(cache.cached_load(data, cache_root=tmp_path / "c"))
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == sorted([cache.cache_key(data), _pack(tmp_path / "c", data).name])
    assert cache.clear_cache(tmp_path / "c") == 1
    assert list((tmp_path / "c").iterdir()) == []


def test_an_abandoned_build_leaves_no_pack(tmp_path):
    """Stopping after the first case writes nothing into the cache root."""
    data = _rcd(tmp_path / "data")
    gen = cache.cached_load(data, cache_root=tmp_path / "c")
    next(gen)
    gen.close()
    assert list((tmp_path / "c").iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["rcd", "petshop", "rcaeval", "nezha"])
def test_shared_datasets_reload_equal_to_parsing(tmp_path, name):
    """On the shared data every reloaded case equals its parsed one, table by table (PetShop's
    baseline, carried by every case of a scenario, is stored once: the pack holds a fraction of
    the rows the cases have)."""
    root = SHARED / "datasets" / name
    if not (root / "MANIFEST.json").is_file():
        pytest.skip(f"AISRE_SHARED not found: no {name} data at {root}")
    parsed, _ = load_all(root, name)
    list(cache.cached_load(root, name, tmp_path / "c"))
    reloaded = list(cache.cached_load(root, name, tmp_path / "c"))
    assert [c.id for c in reloaded] == [c.id for c in parsed]
    for a, b in zip(parsed, reloaded):
        assert_same(a, b)
    if name == "petshop":
        import pyarrow.parquet as pq

        stored = pq.ParquetFile(_pack(tmp_path / "c", root) / "metrics.parquet").metadata.num_rows
        assert stored * 5 < sum(len(c.metrics) for c in parsed)
