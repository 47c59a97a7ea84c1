"""The ``case`` layout: Case folders written by :func:`aisre.case.save_case` (the cache)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from aisre.case import Case, iter_case_folders, load_case
from aisre.datasets.registry import Loader, register

__all__ = ["detect", "load"]


def detect(path: Path) -> bool:
    """Return True when *path* is a Case folder or holds Case folders."""
    if (path / "manifest.json").is_file():
        return True
    return path.is_dir() and next(path.glob("*/manifest.json"), None) is not None


def load(path: Path) -> Iterator[Case]:
    """Yield every Case folder at or below *path*.

    Raises:
        DataError, SchemaError: from :func:`aisre.case.load_case` for a malformed folder.
    """
    for folder in iter_case_folders(path):
        yield load_case(folder)


register(Loader("case", detect, load, "Case folders written by aisre (manifest.json + Parquet)"))
