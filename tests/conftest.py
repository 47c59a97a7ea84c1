"""Fixtures shared by every test: a private aisre home, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AISRE_SHARED", ROOT.parent / "shared"))


def pytest_configure(config: pytest.Config) -> None:
    """Before any fixture (module-scoped ones included) runs, the session's AISRE_HOME is a fresh
    temporary folder; the per-test fixture below then gives each test its own."""
    import tempfile

    os.environ["AISRE_HOME"] = tempfile.mkdtemp(prefix="aisre-session-home-")
    for name in ("AISRE_DB", "AISRE_CACHE"):
        os.environ.pop(name, None)


def shared_dataset(name: str) -> Path:
    """Return the shared dataset folder *name* (with its MANIFEST.json), or skip the test."""
    root = SHARED / "datasets" / name
    if not (root / "MANIFEST.json").is_file():
        pytest.skip(f"AISRE_SHARED not found: no {name} data at {root}")
    return root


@pytest.fixture(autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Tests never touch the real home: AISRE_HOME points at a fresh temporary folder."""
    home = tmp_path_factory.mktemp("aisre-home")
    monkeypatch.setenv("AISRE_HOME", str(home))
    monkeypatch.delenv("AISRE_DB", raising=False)
    monkeypatch.delenv("AISRE_CACHE", raising=False)
    return home


@pytest.fixture
def shared() -> Path:
    """The shared real data folder (AISRE_SHARED, default ../shared); skips when absent."""
    if not (SHARED / "datasets").is_dir():
        pytest.skip(f"AISRE_SHARED not found: {SHARED} has no datasets/ (set AISRE_SHARED)")
    return SHARED


def build_toy_case(seed: int = 0):
    """A three-service case with a known answer: a CPU hog in ``cart`` at t0+300 s raises its CPU,
    then the latency of ``cart`` and its caller ``fe``; ``redis`` stays quiet."""
    import numpy as np
    import pandas as pd

    from aisre.case import Case, Topology, Truth

    t0 = 1_700_000_000.0
    t = np.arange(0.0, 600.0)
    rng = np.random.default_rng(seed)
    frames = []
    for entity, base in (("fe", 0.10), ("cart", 0.05), ("redis", 0.01)):
        for metric in ("cpu", "latency-90"):
            v = base + rng.normal(0, 0.005, len(t))
            if entity == "cart" and metric == "cpu":
                v[300:] += 0.8
            if metric == "latency-90" and entity in ("fe", "cart"):
                v[305:] += 0.2
            frames.append(pd.DataFrame({"time": t0 + t, "entity": entity, "metric": metric, "value": v}))
    topo = Topology(source="given")
    topo.add_node("fe", tier="critical", owner="web-team")
    topo.add_node("cart", owner="cart-team")
    topo.add_node("redis", kind="cache")
    topo.add_edge("fe", "cart")
    topo.add_edge("cart", "redis", "reads")
    return Case(id="toy/cart-cpu", system="toy", window=(t0, t0 + 600), detected_at=t0 + 320, topology=topo,
                metrics=pd.concat(frames, ignore_index=True), truth=Truth("cart", "cpu", t0 + 300), source="test")


@pytest.fixture
def toy_case():
    """A small case whose root cause is a CPU hog in ``cart`` (see :func:`build_toy_case`)."""
    return build_toy_case()
