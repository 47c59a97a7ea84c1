"""Batch loading: split a dataset into case units, load each, record the bad ones and go on.

A loader's ``load(path)`` is a generator, and a generator that raises stops for good; a batch
must instead report the bad case and carry on. So each built-in loader also registers here how
it splits a path into **units** (one case folder, or one file) that its own ``load`` accepts one
at a time, plus a **version** that changes whenever its output changes (the cache key uses it).
Formats that register nothing are loaded as one unit (``case``: one unit per Case folder).

``aisre load PATH --format F --out DIR`` is :func:`convert`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aisre.case import Case, iter_case_folders, save_case
from aisre.datasets.registry import Loader, detect, get
from aisre.errors import AisreError, DataError

__all__ = [
    "LoadFailure",
    "convert",
    "folder_name",
    "iter_load",
    "load_all",
    "register_units",
    "units",
    "version",
]


@dataclass(frozen=True)
class _Units:
    split: Callable[[Path], list[Path]]
    version: str


_UNITS: dict[str, _Units] = {}


def register_units(name: str, split: Callable[[Path], list[Path]], version: str = "1") -> None:
    """Declare how format *name* splits a path into units its loader reads one at a time.

    *version* names the loader's output; bump it when the loader changes what it produces.
    """
    _UNITS[name] = _Units(split, str(version))


def version(format: str) -> str:
    """Return the registered output version of *format* (``"0"`` when it declared none)."""
    return _UNITS[format].version if format in _UNITS else "0"


@dataclass(frozen=True)
class LoadFailure:
    """One unit that failed to load: where, why, and which field and row where known."""

    path: str
    message: str
    format: str
    field: str | None = None
    row: int | None = None
    error: str = "DataError"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_error(cls, unit: Path, format: str, exc: AisreError) -> LoadFailure:
        """Build the record of *exc* raised while loading *unit*."""
        return cls(
            path=str(getattr(exc, "path", None) or unit),
            message=exc.message,
            format=format,
            field=getattr(exc, "field", None),
            row=getattr(exc, "row", None),
            error=type(exc).__name__,
        )


def units(path: str | Path, format: str | None = None) -> tuple[Loader, list[Path]]:
    """Return the loader for *path* (named or detected) and the units it splits *path* into.

    Raises:
        DataError: when the path does not exist, matches no layout, or holds no case.
        UsageError: for an unknown format name.
    """
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or folder", path=p)
    loader = get(format) if format else detect(p)
    if loader.name in _UNITS:
        found = _UNITS[loader.name].split(p)
    elif loader.name == "case":
        found = list(iter_case_folders(p))
    else:
        found = [p]
    if not found:
        raise DataError(f"holds no {loader.name} case", path=p)
    return loader, found


def iter_load(path: str | Path, format: str | None = None) -> Iterator[Case | LoadFailure]:
    """Yield each case at *path*, or a :class:`LoadFailure` for a unit that failed, in order.

    Raises:
        DataError: when *path* itself matches no layout (nothing to iterate).
        UsageError: for an unknown format name.
    """
    loader, found = units(path, format)
    for unit in found:
        try:
            yield from loader.load(unit)
        except AisreError as exc:
            yield LoadFailure.from_error(unit, loader.name, exc)


def load_all(path: str | Path, format: str | None = None) -> tuple[list[Case], list[LoadFailure]]:
    """Return every case at *path* that loads, and a failure record for each one that does not.

    Raises:
        DataError: when *path* itself matches no layout.
        UsageError: for an unknown format name.
    """
    cases: list[Case] = []
    failures: list[LoadFailure] = []
    for item in iter_load(path, format):
        (failures if isinstance(item, LoadFailure) else cases).append(item)
    return cases, failures


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def folder_name(case_id: str) -> str:
    """Return a one-level folder name for *case_id* (``rcd/carts-cpu/1`` -> ``rcd__carts-cpu__1``)."""
    name = "__".join(_UNSAFE.sub("_", part) for part in case_id.split("/") if part)
    return name.lstrip(".") or "case"


def convert(
    path: str | Path, out: str | Path, format: str | None = None
) -> tuple[list[Path], list[LoadFailure]]:
    """Load *path* and save each case as a Case folder under *out*, one level deep.

    Returns the folders written and the failures; a bad case is recorded and the rest go on.

    Raises:
        DataError: when *path* matches no layout, or *out* cannot be written.
        UsageError: for an unknown format name.
    """
    target = Path(out)
    written: list[Path] = []
    failures: list[LoadFailure] = []
    for item in iter_load(path, format):
        if isinstance(item, LoadFailure):
            failures.append(item)
            continue
        try:
            written.append(save_case(item, target / folder_name(item.id)))
        except OSError as exc:
            raise DataError(f"cannot write the Case folder: {exc.strerror or exc}", path=target) from exc
    return written, failures
