"""Fixtures shared by every test: a private aisre home, and the shared real data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("AISRE_SHARED", ROOT.parent / "shared"))


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
