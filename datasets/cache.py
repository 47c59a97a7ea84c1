"""The dataset cache: parse a dataset once, save its cases as Case folders, reload them fast.

An entry lives in ``<cache root>/<key>/``: one Case folder per case (named by
:func:`aisre.datasets.batch.folder_name`) plus ``index.json``, written last, listing the cases
and the failures in load order. An entry without ``index.json`` is incomplete and is rebuilt.

The key hashes the resolved path, the format, the loader's output version
(:func:`aisre.datasets.batch.version`), the Case schema, and the relative path, size and
modification time of every file at or below the path. Editing, adding or removing a file there
gives a new key. Files *above* the path that a loader also reads (PetShop's scenario-level
``graph.csv`` and ``noissue/`` when the path is one case folder) are not part of the key: cache
a whole dataset or scenario, or :func:`clear_cache` after editing them.

Entries are built in a private temporary folder and renamed into place, so two processes
caching the same dataset at once never see each other's half-written folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


from aisre.case import CASE_SCHEMA, Case, load_case, save_case
from aisre.datasets.batch import LoadFailure, folder_name, iter_load, units, version
from aisre.errors import DataError, StoreError
from aisre.store import cache_dir

__all__ = ["INDEX_SCHEMA", "cache_key", "cached_load", "clear_cache", "is_cached"]

INDEX_SCHEMA = "aisre.cache/1"
"""Schema of a cache entry's ``index.json``."""


def _fingerprint(path: Path) -> list[tuple[str, int, int]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out = []
    for f in files:
        try:
            st = f.stat()
        except OSError:
            continue
        out.append((str(f.relative_to(path)) if f != path else f.name, st.st_size, st.st_mtime_ns))
    return out


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
        "schema": CASE_SCHEMA,
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
    """Return the entry's index when it is complete and every case folder is present."""
    try:
        doc = json.loads((entry / "index.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("schema") != INDEX_SCHEMA or not isinstance(doc.get("cases"), list):
        return None
    if not all(isinstance(n, str) and (entry / n / "manifest.json").is_file() for n in doc["cases"]):
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
        for item in index.get("failures", []):
            failure = LoadFailure(**item)
            if failures is None:
                _raise(failure)
            failures.append(failure)
        rows = index.get("rows") if isinstance(index.get("rows"), dict) else {}
        for name in index["cases"]:
            yield _reload(entry / name, rows.get(name))
        return
    build = root / f".{key}.{os.getpid()}.tmp"
    shutil.rmtree(build, ignore_errors=True)
    names: list[str] = []
    rows: dict[str, dict[str, int]] = {}
    seen: list[LoadFailure] = []
    try:
        build.mkdir(parents=True)
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
            save_case(item, build / name)
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
        }
        (build / "index.json").write_text(json.dumps(doc, indent=1) + "\n")
        shutil.rmtree(entry, ignore_errors=True)
        try:
            build.rename(entry)
        except OSError:
            if _index(entry) is None:  # nobody else committed it either
                raise
    except OSError as exc:
        raise StoreError(f"cannot write the dataset cache {root}: {exc.strerror or exc}") from exc
    finally:
        shutil.rmtree(build, ignore_errors=True)


_TABLES = ("metrics", "logs", "spans", "events")


def _reload(folder: Path, rows: dict[str, int] | None) -> Case:
    """Return the Case in *folder* (:func:`aisre.case.load_case` skips the tables its manifest
    records as empty, which is most of what makes a reload fast)."""
    return load_case(folder)


def clear_cache(cache_root: str | Path | None = None) -> int:
    """Remove every entry (and leftover temporary folder) from the cache; return how many.

    Raises:
        StoreError: when an entry cannot be removed.
    """
    root = _root(cache_root)
    n = 0
    for child in root.iterdir():
        if child.is_dir() and (_index(child) is not None or child.name.endswith(".tmp") or (child / "index.json").exists()):
            try:
                shutil.rmtree(child)
            except OSError as exc:
                raise StoreError(f"cannot remove {child}: {exc.strerror}") from exc
            n += 1
    return n
