"""The registry of dataset layouts: each loader says whether a path is its layout, and loads it.

A loader registers under its ``--format`` name with :func:`register`. Third-party packages add
loaders through the ``aisre.datasets`` entry-point group (an object with ``name``,
``detect(path) -> bool`` and ``load(path) -> Iterator[Case]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

from aisre.case import Case
from aisre.errors import DataError, UsageError

__all__ = ["Loader", "detect", "formats", "get", "load", "register"]


@dataclass(frozen=True)
class Loader:
    """A dataset layout: its name, a test for a path, and the loader itself."""

    name: str
    detect: Callable[[Path], bool]
    load: Callable[[Path], Iterator[Case]]
    description: str = ""


_LOADERS: dict[str, Loader] = {}
_entry_points_read = False


def register(loader: Loader) -> Loader:
    """Add *loader* to the registry (a later one of the same name replaces it) and return it."""
    _LOADERS[loader.name] = loader
    return loader


def _all() -> dict[str, Loader]:
    global _entry_points_read
    if not _entry_points_read:
        _entry_points_read = True
        for ep in entry_points(group="aisre.datasets"):
            if ep.name not in _LOADERS:
                try:
                    obj = ep.load()
                except Exception:  # a broken plug-in must not break the built-in loaders
                    continue
                register(obj if isinstance(obj, Loader) else Loader(ep.name, obj.detect, obj.load))
    return _LOADERS


def formats() -> list[str]:
    """Return the registered format names, in registration order."""
    return list(_all())


def get(name: str) -> Loader:
    """Return the loader named *name*.

    Raises:
        UsageError: for a name no loader has.
    """
    try:
        return _all()[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}; known: {', '.join(formats())}") from None


def detect(path: str | Path) -> Loader:
    """Return the first loader whose layout *path* matches.

    Raises:
        DataError: when the path does not exist or matches no layout (the message lists those tried).
    """
    p = Path(path)
    if not p.exists():
        raise DataError("no such file or folder", path=p)
    for loader in _all().values():
        try:
            if loader.detect(p):
                return loader
        except OSError:
            continue
    raise DataError(f"matches no known layout; tried: {', '.join(formats())}", path=p)


def load(path: str | Path, format: str | None = None) -> Iterator[Case]:
    """Yield the Cases at *path*, in the layout *format* or the one detected.

    Raises:
        DataError: when the path matches no layout, or its data is malformed.
        UsageError: for an unknown format name.
    """
    loader = get(format) if format else detect(path)
    yield from loader.load(Path(path))
