"""The ``rcd`` layout: RCD Sock Shop (Ikram et al., NeurIPS 2022).

Layout::

    sock-shop-data/<service>-<fault>/<rep>/normal.csv      baseline window (~5 min)
    sock-shop-data/<service>-<fault>/<rep>/anomalous.csv   window while the fault is active

Each file: ``time`` (integer unix seconds, UTC, 1-s step), then ``<container>_<metric>`` columns
(``cpu`` % of a core, ``mem`` bytes, ``lod`` req/s, ``lat_50``/``lat_90``/``lat_99`` seconds).

Conventions of this loader:

* **One Case per repetition** whose metrics hold *both* windows at their real times. The two
  windows are days apart (and once the normal one comes *after* the anomalous one), so they are
  never joined into one series: ``case.meta["normal_window"]`` and
  ``case.meta["anomalous_window"]`` (``[start, end]``, inclusive, unix seconds) say which rows are
  which, and ``meta["gap_seconds"]`` (anomalous start minus normal end, may be negative) and
  ``meta["normal_after_anomalous"]`` record the gap. A ranker takes its baseline from
  ``normal_window``, never from "rows before ``detected_at``". ``case.window`` spans all rows.
* Column names split on the **first** ``_``: ``carts_lat_90`` is entity ``carts``, metric
  ``lat_90``. Values keep their units (bytes, %, s).
* **The ``-db`` containers are entities of their own** (``carts-db`` is not folded into
  ``carts``): they are separate containers with their own metrics, and RCD never injects into
  them. The truth is the service container (``truth.service == truth.entity == "carts"``); a
  scorer that wants RCAEval's service-level convention folds ``-db`` itself.
* Ground truth from the folder name ``<service>-<fault>`` split on the **last** ``-``
  (``cpu`` hog, ``mem`` leak), kept as given in ``truth.meta``. RCD records no inject time: the
  fault is active from the first anomalous row, so ``truth.inject_time`` and
  ``case.detected_at`` are the first anomalous timestamp.
* No topology ships with RCD, so ``case.topology`` is ``None`` (no graph is invented).
* Case id ``rcd/<service>-<fault>/<rep>``; system ``SS``; only numeric ``<rep>`` folders count.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from aisre.case import Case, Truth
from aisre.datasets._common import check_time, find_case_folders, melt, numeric_block, read_numeric_csv
from aisre.datasets.batch import register_units
from aisre.datasets.registry import Loader, register
from aisre.errors import DataError

__all__ = ["FAULTS", "SYSTEM", "VERSION", "case_paths", "detect", "load", "load_case"]

VERSION = "1"
"""Output version of this loader (part of the cache key)."""

SYSTEM = "SS"
"""The system every RCD case runs on: Sock Shop."""

FAULTS = {"cpu": "cpu", "mem": "mem"}
"""RCD fault names -> aisre fault kinds."""

_FILES = ("normal.csv", "anomalous.csv")
_FOLDER = re.compile(r"^(?P<service>.+)-(?P<fault>[^-]+)$")


def _is_case(folder: Path) -> bool:
    return (
        folder.name.isdigit()
        and _FOLDER.match(folder.parent.name) is not None
        and all((folder / f).is_file() for f in _FILES)
    )


def _sort_key(folder: Path) -> tuple[str, int]:
    return folder.parent.name, int(folder.name)


def case_paths(path: Path) -> list[Path]:
    """Return the RCD case folders at or below *path* (a root, sub-folder, case folder or case file), sorted."""
    return find_case_folders(path, "anomalous.csv", _is_case, _sort_key, depth=3)


def detect(path: Path) -> bool:
    """Return True when *path* is, or holds, an RCD case folder."""
    return bool(case_paths(path))


def _read(path: Path) -> pd.DataFrame:
    """Return the long metrics of one RCD file; raise DataError on anything malformed."""
    frame = read_numeric_csv(path)
    if "time" not in frame.columns:
        raise DataError("no 'time' column", path=path, field="time")
    times = check_time(frame["time"], path)
    columns = [c for c in frame.columns if c != "time"]
    if not columns:
        raise DataError("no metric columns", path=path, field="time")
    parts = [str(c).split("_", 1) for c in columns]
    for c, p in zip(columns, parts):
        if len(p) != 2 or not p[0] or not p[1]:
            raise DataError("column is not <container>_<metric>", path=path, field=str(c))
    values = numeric_block(frame[columns], path)
    return melt(times, values, [p[0] for p in parts], [p[1] for p in parts])


def _span(frame: pd.DataFrame) -> list[float]:
    return [float(frame["time"].min()), float(frame["time"].max())]


def load_case(folder: Path) -> Case:
    """Return the Case of one RCD repetition folder (``<service>-<fault>/<rep>``).

    Raises:
        DataError: for a malformed file (naming file, field and line), a folder that is not an
            RCD case, or normal and anomalous windows that overlap.
    """
    folder = Path(folder)
    if not _is_case(folder):
        raise DataError("not an RCD case folder (<service>-<fault>/<rep>/{normal,anomalous}.csv)", path=folder)
    match = _FOLDER.match(folder.parent.name)
    assert match is not None  # _is_case checked it
    service, fault = match["service"], match["fault"]
    normal = _read(folder / "normal.csv")
    anomalous = _read(folder / "anomalous.csv")
    if normal.empty or anomalous.empty:
        empty = folder / ("normal.csv" if normal.empty else "anomalous.csv")
        raise DataError("no values in the file", path=empty)
    nw, aw = _span(normal), _span(anomalous)
    if nw[0] <= aw[1] and aw[0] <= nw[1]:
        raise DataError(
            f"normal window {nw} overlaps anomalous window {aw}", path=folder / "anomalous.csv", field="time"
        )
    metrics = pd.concat([normal, anomalous], ignore_index=True)
    if nw[0] > aw[0]:
        metrics = metrics.sort_values("time", kind="stable", ignore_index=True)
    inject = aw[0]
    truth = Truth(
        service=service,
        fault=FAULTS.get(fault),
        inject_time=inject,
        entity=service,
        meta={
            "service": service,
            "fault": fault,
            "folder": folder.parent.name,
            "inject_time": "first anomalous row (RCD records no inject time)",
        },
    )
    return Case(
        id=f"rcd/{folder.parent.name}/{folder.name}",
        system=SYSTEM,
        window=(min(nw[0], aw[0]), max(nw[1], aw[1])),
        detected_at=inject,
        metrics=metrics,
        truth=truth,
        meta={
            "dataset": "rcd",
            "rep": folder.name,
            "normal_window": nw,
            "anomalous_window": aw,
            "gap_seconds": float(aw[0] - nw[1]),
            "normal_after_anomalous": bool(nw[0] > aw[1]),
        },
        source=str(folder),
    )


def load(path: Path) -> Iterator[Case]:
    """Yield the Case of every RCD repetition at or below *path*, sorted by folder and rep.

    Raises:
        DataError: when *path* holds no RCD case, or a case is malformed (the first bad case
            stops this generator; :func:`aisre.datasets.batch.load_all` goes on past it).
    """
    found = case_paths(Path(path))
    if not found:
        raise DataError("no RCD case folder (<service>-<fault>/<rep>/{normal,anomalous}.csv) here", path=path)
    for folder in found:
        yield load_case(folder)


register(Loader("rcd", detect, load, "RCD Sock Shop: <service>-<fault>/<rep>/{normal,anomalous}.csv"))
register_units("rcd", case_paths, VERSION)
