"""The dataset cache: parse a dataset once, save its cases as Case folders, reload them fast.

An entry lives in ``<cache root>/<key>/``: one Case folder per case (named by
:func:`aisre.datasets.batch.folder_name`) plus ``index.json``, written last, listing the cases
and the failures in load order. Beside it, ``<key>.tables/`` is the :class:`aisre.case.TablePack`
holding the rows of the cases' tables: a run of rows that several cases carry (PetShop's
normal-period baseline) is stored, and read, once. An entry without ``index.json`` is
incomplete, and one whose files are damaged is rebuilt.

The key hashes the resolved path, the format, the loader's output version
(:func:`aisre.datasets.batch.version`), the Case and index schemas, and the relative path, size
and modification time of every file at or below the path. Editing, adding or removing a file there
gives a new key. Files *above* the path that a loader also reads (PetShop's scenario-level
``graph.csv`` and ``noissue/`` when the path is one case folder) are not part of the key: cache
a whole dataset or scenario, or :func:`clear_cache` after editing them.

Entries are built in a private temporary folder and renamed into place (the pack first, the
entry with its ``index.json`` last), so two processes caching the same dataset at once never see
each other's half-written folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from aisre.case import CASE_SCHEMA, PACKED_SCHEMA, Case, TablePack, load_cases, save_case
from aisre.datasets.batch import LoadFailure, folder_name, iter_load, units, version
from aisre.errors import DataError, StoreError
from aisre.store import cache_dir

__all__ = ["INDEX_SCHEMA", "cache_key", "cached_load", "clear_cache", "is_cached"]

INDEX_SCHEMA = "aisre.cache/2"
"""Schema of a cache entry's ``index.json`` (2: the cases' tables live in the entry's pack)."""

_PACK = ".tables"
"""Suffix of the table pack folder beside an entry (``<key>.tables``)."""


def _fingerprint(path: Path) -> list[tuple[str, int, int]]:
    """Return ``(relative path, size, mtime_ns)`` of every file at or below *path*, sorted."""
    if not path.is_dir():
        st = path.stat()
        return [(path.name, st.st_size, st.st_mtime_ns)]
    out: list[tuple[str, int, int]] = []
    todo = [(path, "")]
    while todo:  # os.scandir: a dataset of thousands of files is keyed on every reload
        folder, prefix = todo.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    todo.append((Path(entry.path), f"{prefix}{entry.name}/"))
                elif entry.is_file():
                    st = entry.stat()
                    out.append((f"{prefix}{entry.name}", st.st_size, st.st_mtime_ns))
            except OSError:
                continue
    return sorted(out)


def cache_key(path: str | Path, format: str | None = None) -> str:
    """Return the cache key of *path* loaded as *format* (detected when None).

    Raises:
        DataError: when the path does not exist or matches no layout.
        UsageError: for an unknown format name.
    """
    p = Path(path).resolve()
    loader, _ = units(p, format)
    doc = {
        "path": str(p),
        "format": loader.name,
        "version": version(loader.name),
        "schema": [CASE_SCHEMA, PACKED_SCHEMA, INDEX_SCHEMA],
        "files": _fingerprint(p),
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32]


def _root(cache_root: str | Path | None) -> Path:
    root = Path(cache_root) if cache_root is not None else cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the dataset cache {root}: {exc.strerror}") from exc
    return root


def _index(entry: Path) -> dict | None:
    """Return the entry's index when it is complete and every case folder (and the pack, where
    it has one) is present."""
    try:
        doc = json.loads((entry / "index.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != INDEX_SCHEMA or not isinstance(doc.get("cases"), list):
        return None
    if not all(isinstance(n, str) and (entry / n / "manifest.json").is_file() for n in doc["cases"]):
        return None
    if doc.get("pack") is not None and not (entry.parent / f"{entry.name}{_PACK}").is_dir():
        return None
    return doc


def is_cached(path: str | Path, format: str | None = None, cache_root: str | Path | None = None) -> bool:
    """Return True when a complete cache entry exists for *path* as it is now."""
    return _index(_root(cache_root) / cache_key(path, format)) is not None


def _raise(failure: LoadFailure) -> None:
    raise DataError(failure.message, path=failure.path, field=failure.field, row=failure.row)


def cached_load(
    path: str | Path,
    format: str | None = None,
    cache_root: str | Path | None = None,
    *,
    failures: list[LoadFailure] | None = None,
) -> Iterator[Case]:
    """Yield the cases at *path*, from the cache when an entry for its current files exists.

    On a miss the dataset is parsed, each case is saved as it is yielded, and the entry is
    committed once the whole dataset has been read. A case that fails to load is appended to
    *failures* when a list is given (and remembered in the entry), otherwise it raises.

    Raises:
        DataError: when the path matches no layout, or a case fails and *failures* is None.
        UsageError: for an unknown format name.
        StoreError: when the cache folder cannot be written.
    """
    root = _root(cache_root)
    key = cache_key(path, format)
    entry = root / key
    index = _index(entry)
    if index is not None:
        # Every manifest and the pack are checked before the first case is handed out, so a
        # damaged entry is rebuilt rather than failing halfway through.
        cases = load_cases((entry / name for name in index["cases"]), check_first=True)
        try:
            first = next(cases, None)
        except DataError:
            shutil.rmtree(entry, ignore_errors=True)
            shutil.rmtree(root / f"{key}{_PACK}", ignore_errors=True)
        else:
            for item in index.get("failures", []):
                failure = LoadFailure(**item)
                if failures is None:
                    _raise(failure)
                failures.append(failure)
            if first is not None:
                yield first
                yield from cases
            return
    build = root / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(build, ignore_errors=True)
    names: list[str] = []
    rows: dict[str, dict[str, int]] = {}
    seen: list[LoadFailure] = []
    try:
        build.mkdir(parents=True)
        # The entry and its pack are built side by side as they will lie in the cache root, so
        # the manifests' relative paths to the pack hold once both are renamed into place.
        with TablePack(build / f"{key}{_PACK}") as pack:
            for item in iter_load(path, format):
                if isinstance(item, LoadFailure):
                    if failures is None:
                        _raise(item)
                    failures.append(item)
                    seen.append(item)
                    continue
                name = folder_name(item.id)
                if name in names:  # two cases with one id: keep both, the later one numbered
                    name = f"{name}__{len(names)}"
                save_case(item, build / key / name, pack=pack)
                names.append(name)
                rows[name] = {t: len(getattr(item, t)) for t in _TABLES} | {"alerts": len(item.alerts), "changes": len(item.changes)}
                yield item
        doc = {
            "schema": INDEX_SCHEMA,
            "path": str(Path(path).resolve()),
            "format": units(path, format)[0].name,
            "cases": names,
            "rows": rows,
            "failures": [f.to_dict() for f in seen],
            "pack": pack.folder.name if pack.folder.is_dir() else None,
        }
        (build / key).mkdir(exist_ok=True)
        (build / key / "index.json").write_text(json.dumps(doc, indent=1) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        shutil.rmtree(root / f"{key}{_PACK}", ignore_errors=True)
        try:
            if pack.folder.is_dir():
                pack.folder.rename(root / pack.folder.name)
            (build / key).rename(entry)
        except OSError:
            if _index(entry) is None:  # nobody else committed it either
                raise
    except OSError as exc:
        raise StoreError(f"cannot write the dataset cache {root}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(build, ignore_errors=True)


_TABLES = ("metrics", "logs", "spans", "events")


def clear_cache(cache_root: str | Path | None = None) -> int:
    """Remove every entry (with its pack, and any leftover temporary folder) from the cache;
    return how many entries and temporary folders were removed.

    Raises:
        StoreError: when an entry cannot be removed.
    """
    root = _root(cache_root)
    n = 0
    for child in sorted(root.iterdir()):
        entry = _index(child) is not None or child.name.endswith(".tmp") or (child / "index.json").exists()
        if child.is_dir() and (entry or _PACK_NAME.fullmatch(child.name)):
            try:
                shutil.rmtree(child)
            except OSError as exc:
                raise StoreError(f"cannot remove {child}: {exc.strerror}") from exc
            n += bool(entry)
    return n


_PACK_NAME = re.compile(r"[0-9a-f]{32}" + re.escape(_PACK))
