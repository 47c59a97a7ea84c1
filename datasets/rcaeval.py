"""The ``rcaeval`` layout: the RCAEval benchmark (Pham et al.), suites RE1, RE2 and RE3.

Three layouts are recognised:

* **nested** (the Zenodo release, what RCAEval's own code reads)::

      RE2/RE2-OB/<service>_<fault>/<rep>/{simple_metrics.csv | data.csv | metrics.csv,
                                          logs.csv, traces.csv, inject_time.txt}

  RE1 cases hold ``data.csv``; RE2/RE3 ``simple_metrics.csv`` (service level, what the
  published numbers use) and ``metrics.csv`` (container level). Only numeric ``<rep>`` folders
  are cases (the archive also holds copies such as ``multi-source-data/``).
* **flat** (the Figshare release): ``re2ob_checkoutservice_cpu_1/`` holding ``metrics.json``
  or ``metrics.parquet`` (or one of the CSVs above), ``inject_time.txt``, ``logs.csv``,
  ``traces.csv``.
* **single file**: a lone ``simple_metrics.csv`` or ``data.csv`` (e.g. ``legacy/`` in the
  RCAEval repository). The layout holds no label, so ``truth`` is ``None`` and
  ``detected_at`` is ``None``; nothing is guessed from the file or its path.

Metrics file preference: ``data.csv``, ``simple_metrics.csv``, ``metrics.json``,
``metrics.parquet``, ``metrics.csv``. Derived series (``logts.csv``, ``tracets_*.csv``) are not
read: they are recomputable from the logs and traces.

Conventions of this loader:

* **Times** are converted to unix seconds by magnitude (s, ms, µs or ns): metrics ``time`` is
  seconds, logs ``timestamp`` nanoseconds, traces ``startTime`` microseconds (the ``time``
  columns of logs and traces are "HH:MM" text and are ignored). Span ``duration`` is in the
  unit of ``startTime`` (µs in RCAEval), or µs when only ``startTimeMillis`` is present.
* Metric columns ``<entity>_<metric>`` split on the **first** ``_``: ``checkoutservice_latency-90``
  is entity ``checkoutservice``, metric ``latency-90``. Values keep their units (memory in
  bytes). ``redis`` and ``frontend-external`` stay entities of their own. Empty cells are missing
  samples (no row); text or ``inf`` is an error. A duplicated ``time`` column (``time.1``) and a
  leading pandas index column (``Unnamed: 0``) are dropped; trailing rows with an empty ``time``
  (seen at the end of some RE2 files) are dropped and counted in ``meta["dropped_rows"]``.
* **Ground truth** from the folder name, split on the **last** ``_`` (service names hold ``-``),
  and ``inject_time.txt`` (first line). Faults map onto aisre's kinds: ``cpu mem disk delay
  loss socket`` as they are; RE3's code-level faults ``f1``-``f5`` -> ``error``; an unknown name
  gives ``truth.fault = None``. The original name is ``truth.meta["fault"]``.
* ``case.meta["normal_window"]`` is ``[first, last row before inject_time]`` and
  ``meta["anomalous_window"]`` ``[first row at or after inject_time, last]`` (both ``None``
  without an inject time); ``detected_at`` = inject time; ``case.window`` spans the metrics.
* **System** (``OB``, ``SS``, ``TT``) and **suite** (``RE1``..``RE3``) come from the path
  (``RE2-OB``, ``re2ob_...``, ``online-boutique``, ``sock-shop-*``, ``train-ticket``); when the
  path does not say, the system is recognised from the metric entities (Online Boutique's
  ``checkoutservice``, Sock Shop's ``carts``/``front-end``, Train Ticket's ``ts-*``) and
  ``meta["system_from"]`` says ``"entities"``.
* **Spans**: trace service names are aligned with metric entities where they differ only by a
  ``service`` suffix (``frontendservice`` -> ``frontend``). Status ``statusCode`` 2 or >= 500 is
  ``error``, 1 or 200-399 ``ok``, anything else ``unset``. The topology is recovered from the
  spans (``source="spans"``) and is ``None`` without traces.
* Case ids: ``rcaeval/<RE2-OB>/<service>_<fault>/<rep>``, ``rcaeval/<flat folder>``,
  ``rcaeval/<parent folder>/<file stem>``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Case, Truth, empty_table, topology_from_spans
from aisre.datasets._common import (
    check_time,
    melt,
    numeric_block,
    read_json,
    read_numeric_csv,
    read_text,
    to_seconds,
    unit_of,
)
from aisre.datasets.batch import register_units
from aisre.datasets.registry import Loader, register
from aisre.errors import DataError

__all__ = [
    "FAULTS",
    "METRIC_FILES",
    "VERSION",
    "case_paths",
    "detect",
    "load",
    "load_case",
    "read_logs",
    "read_metrics",
    "read_traces",
]

VERSION = "1"
"""Output version of this loader (part of the cache key)."""

FAULTS = {
    "cpu": "cpu", "mem": "mem", "disk": "disk", "delay": "delay", "loss": "loss", "socket": "socket",
    "f1": "error", "f2": "error", "f3": "error", "f4": "error", "f5": "error",
}  # fmt: skip
"""RCAEval fault names -> aisre fault kinds (RE3's code-level faults f1-f5 are errors)."""

METRIC_FILES = ("data.csv", "simple_metrics.csv", "metrics.json", "metrics.parquet", "metrics.csv")
"""Metrics files of a case folder, most preferred first."""

_SINGLE_FILES = ("simple_metrics.csv", "data.csv")
_FLAT = re.compile(r"^(?P<suite>re[123])(?P<system>ob|ss|tt)_(?P<service>.+)_(?P<fault>[^_]+)_(?P<rep>\d+)$", re.IGNORECASE)
_NESTED = re.compile(r"^(?P<service>.+)_(?P<fault>[^_]+)$")
_SUITE_SYSTEM = re.compile(r"^(?P<suite>RE[123])-(?P<system>OB|SS|TT)$", re.IGNORECASE)
_SYSTEM_DIRS = {"online-boutique": "OB", "sock-shop": "SS", "sock-shop-1": "SS", "sock-shop-2": "SS", "train-ticket": "TT"}


def _metrics_file(folder: Path) -> Path | None:
    for name in METRIC_FILES:
        if (folder / name).is_file():
            return folder / name
    return None


def _kind(folder: Path) -> str | None:
    """Return ``nested`` or ``flat`` for a case folder, else None."""
    if not folder.is_dir() or _metrics_file(folder) is None:
        return None
    if folder.name.isdigit() and _NESTED.match(folder.parent.name):
        # a bare metrics.csv folder without inject_time.txt is not claimed (PetShop has those)
        if _metrics_file(folder).name != "metrics.csv" or (folder / "inject_time.txt").is_file():
            return "nested"
    if _FLAT.match(folder.name):
        return "flat"
    return None


def _sort_key(unit: Path) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in _case_id(unit).split("/"))


def case_paths(path: Path) -> list[Path]:
    """Return the RCAEval units at or below *path* (case folders, or single metrics files), sorted.

    Stray single files inside a tree that has case folders (such as the archive's
    ``multi-source-data/`` copies) are not units.
    """
    path = Path(path)
    if path.is_file():
        if _kind(path.parent) and path.name in METRIC_FILES:
            return [path.parent]
        return [path] if path.name in _SINGLE_FILES else []
    if not path.is_dir():
        return []
    if _kind(path):
        return [path]
    folders: set[Path] = set()
    singles: set[Path] = set()
    for depth in range(0, 5):
        for name in METRIC_FILES:
            for hit in path.glob("/".join(["*"] * depth + [name])):
                if _kind(hit.parent):
                    folders.add(hit.parent)
                elif name in _SINGLE_FILES:
                    singles.add(hit)
    found = folders or singles
    return sorted(found, key=_sort_key)


def detect(path: Path) -> bool:
    """Return True when *path* is, or holds, an RCAEval case folder or metrics file."""
    return bool(case_paths(path))


# --------------------------------------------------------------------------- metrics


def _drop_extra(frame: pd.DataFrame) -> pd.DataFrame:
    extra = [c for c in frame.columns if re.fullmatch(r"time\.\d+", str(c)) or str(c) == "Unnamed: 0"]
    return frame.drop(columns=extra) if extra else frame


def _from_wide(frame: pd.DataFrame, path: Path, *, first_line: int = 2) -> tuple[pd.DataFrame, int]:
    """Return (long metrics, rows dropped) from a wide frame with a ``time`` column."""
    frame = _drop_extra(frame)
    if "time" not in frame.columns:
        if "timestamp" in frame.columns:
            frame = frame.rename(columns={"timestamp": "time"})
        else:
            raise DataError("no 'time' column", path=path, field="time")
    raw = frame["time"]
    dropped = 0
    if len(raw) and raw.isna().iloc[-1]:
        # trailing rows with an empty time (seen at the end of some RE2 files) carry no sample time
        present = np.flatnonzero(raw.notna().to_numpy())
        keep = int(present[-1]) + 1 if present.size else 0
        dropped = len(frame) - keep
        frame = frame.iloc[:keep]
        raw = frame["time"]
    times = check_time(raw, path, first_line=first_line)
    columns = [c for c in frame.columns if c != "time"]
    if not columns:
        raise DataError("no metric columns", path=path, field="time")
    parts = [str(c).split("_", 1) for c in columns]
    for c, p in zip(columns, parts):
        if len(p) != 2 or not p[0] or not p[1]:
            raise DataError("column is not <entity>_<metric>", path=path, field=str(c))
    values = numeric_block(frame[columns], path, first_line=first_line)
    return melt(to_seconds(times), values, [p[0] for p in parts], [p[1] for p in parts]), dropped


def _frame_from_json(doc: Any, path: Path) -> pd.DataFrame:
    """Return a frame from the JSON shapes pandas writes (columns, list, records, split)."""
    shape_error = DataError(
        "wrong JSON shape: expected an object of columns ({'time': [...], 'svc_cpu': [...]}), "
        "a list of row objects, or {'columns': [...], 'data': [[...]]}",
        path=path,
        field="metrics",
    )
    if isinstance(doc, dict) and isinstance(doc.get("metrics"), (dict, list)) and "time" not in doc:
        doc = doc["metrics"]
    try:
        if isinstance(doc, dict) and isinstance(doc.get("columns"), list) and isinstance(doc.get("data"), list):
            if not all(isinstance(r, list) and len(r) == len(doc["columns"]) for r in doc["data"]):
                raise shape_error
            return pd.DataFrame(doc["data"], columns=[str(c) for c in doc["columns"]])
        if isinstance(doc, dict) and doc and all(isinstance(v, list) for v in doc.values()):
            lengths = {len(v) for v in doc.values()}
            if len(lengths) != 1:
                raise DataError("columns of different lengths", path=path, field="metrics", value=sorted(lengths)[:4])
            return pd.DataFrame({str(k): pd.Series(v, dtype=object) for k, v in doc.items()})
        if isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
            return pd.DataFrame({str(k): pd.Series(v, dtype=object) for k, v in doc.items()})
        if isinstance(doc, list) and doc and all(isinstance(r, dict) for r in doc):
            return pd.DataFrame.from_records(doc)
    except DataError:
        raise
    except (TypeError, ValueError) as exc:
        raise DataError(f"wrong JSON shape: {exc}", path=path, field="metrics") from exc
    raise shape_error


def _long(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Return an already-long metrics frame after checking its cells."""
    out = frame[["time", "entity", "metric", "value"]].copy()
    for col in ("entity", "metric"):
        bad = out[col].isna() | (out[col].astype(str) == "")
        if bad.any():
            raise DataError("empty name", path=path, field=col, row=int(np.flatnonzero(bad.to_numpy())[0]))
    block = numeric_block(out[["time", "value"]], path, first_line=0)
    if np.isnan(block[:, 0]).any():
        raise DataError("missing timestamp", path=path, field="time", row=int(np.flatnonzero(np.isnan(block[:, 0]))[0]))
    out["time"] = to_seconds(block[:, 0])
    out["value"] = block[:, 1]
    out = out[~np.isnan(block[:, 1])]
    return out.sort_values(["time", "entity", "metric"], kind="stable", ignore_index=True)


def read_metrics(path: Path) -> tuple[pd.DataFrame, int]:
    """Return the long metrics table of one RCAEval metrics file and the trailing rows dropped.

    Raises:
        DataError: for an unreadable or malformed file, naming the file, the field and the row.
    """
    path = Path(path)
    if path.suffix == ".csv":
        return _from_wide(read_numeric_csv(path), path)
    if path.suffix == ".json":
        frame = _frame_from_json(read_json(path), path)
    elif path.suffix == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types on a bad file
            raise DataError(f"unreadable Parquet: {' '.join(str(exc).split())[:120]}", path=path) from exc
        if frame.index.name == "time" and "time" not in frame.columns:
            frame = frame.reset_index()
    else:
        raise DataError("unknown metrics file type", path=path, field="metrics")
    frame.columns = [str(c) for c in frame.columns]
    if {"time", "entity", "metric", "value"} <= set(frame.columns):
        return _long(frame, path), 0
    return _from_wide(frame, path, first_line=0)


# --------------------------------------------------------------------------- logs and traces


def _read_table(path: Path, wanted: set[str]) -> pd.DataFrame:
    if path.stat().st_size == 0:
        raise DataError("empty file", path=path)
    try:
        return pd.read_csv(path, usecols=lambda c: c in wanted, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8")
    except pd.errors.EmptyDataError as exc:
        raise DataError("empty file (no columns)", path=path) from exc
    except UnicodeDecodeError as exc:
        raise DataError("not UTF-8 text", path=path) from exc
    except Exception as exc:  # the C parser raises ParserError, ValueError, OverflowError, ...
        raise DataError(f"unreadable CSV: {' '.join(str(exc).split())[:160]}", path=path) from exc


def _numbers(frame: pd.DataFrame, col: str, path: Path, *, required: bool = True) -> np.ndarray:
    values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    bad = ~np.isfinite(values) & (frame[col].notna().to_numpy() if not required else True)
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise DataError("not a finite number", path=path, field=col, row=i + 2, value=frame[col].iloc[i])
    return values


def read_logs(path: Path) -> pd.DataFrame:
    """Return the logs table of an RCAEval ``logs.csv`` (times from ``timestamp``, any unit).

    Raises:
        DataError: for an unreadable file, a missing ``timestamp`` column or a bad timestamp.
    """
    path = Path(path)
    frame = _read_table(path, {"timestamp", "container_name", "service", "level", "message", "log_template", "trace_id"})
    if "timestamp" not in frame.columns:
        raise DataError("no 'timestamp' column (the 'time' column is HH:MM text)", path=path, field="timestamp")
    times = _numbers(frame, "timestamp", path)
    entity = frame["container_name"] if "container_name" in frame.columns else frame.get("service")
    if entity is None:
        raise DataError("no 'container_name' column", path=path, field="container_name")
    out = pd.DataFrame(
        {
            "time": to_seconds(times),
            "entity": entity.to_numpy(dtype=object),
            "level": frame["level"].str.lower().to_numpy(dtype=object) if "level" in frame.columns else None,
            "template": frame["log_template"].to_numpy(dtype=object) if "log_template" in frame.columns else None,
            "message": frame["message"].to_numpy(dtype=object) if "message" in frame.columns else None,
            "trace_id": frame["trace_id"].to_numpy(dtype=object) if "trace_id" in frame.columns else None,
        }
    )
    return out.sort_values("time", kind="stable", ignore_index=True)


_SPAN_COLS = {"traceID", "spanID", "parentSpanID", "serviceName", "operationName", "methodName",
              "startTime", "startTimeMillis", "duration", "statusCode"}  # fmt: skip


def read_traces(path: Path) -> pd.DataFrame:
    """Return the spans table of an RCAEval ``traces.csv`` (start and duration in seconds).

    Raises:
        DataError: for an unreadable file, a missing id, service or start column, or a bad number.
    """
    path = Path(path)
    frame = _read_table(path, _SPAN_COLS)
    for col in ("traceID", "spanID", "serviceName", "duration"):
        if col not in frame.columns:
            raise DataError(f"no '{col}' column", path=path, field=col)
    if "startTime" in frame.columns:
        raw = _numbers(frame, "startTime", path)
        unit = unit_of(raw)
        dur_unit = unit
    elif "startTimeMillis" in frame.columns:
        raw = _numbers(frame, "startTimeMillis", path)
        unit, dur_unit = "ms", "us"
    else:
        raise DataError("no 'startTime' column", path=path, field="startTime")
    duration = _numbers(frame, "duration", path)
    if (duration < 0).any():
        i = int(np.flatnonzero(duration < 0)[0])
        raise DataError("negative duration", path=path, field="duration", row=i + 2, value=float(duration[i]))
    for col in ("traceID", "spanID", "serviceName"):
        missing = frame[col].isna().to_numpy()
        if missing.any():
            raise DataError("empty cell", path=path, field=col, row=int(np.flatnonzero(missing)[0]) + 2)
    code = pd.to_numeric(frame["statusCode"], errors="coerce").to_numpy(dtype="float64", na_value=np.nan) if "statusCode" in frame.columns else np.full(len(frame), np.nan)
    status = np.where((code == 2) | (code >= 500), "error", np.where((code == 1) | ((code >= 200) & (code < 400)), "ok", "unset"))
    operation = frame["operationName"] if "operationName" in frame.columns else pd.Series(None, index=frame.index, dtype=object)
    if "methodName" in frame.columns:
        operation = operation.fillna(frame["methodName"])
    out = pd.DataFrame(
        {
            "trace_id": frame["traceID"].to_numpy(dtype=object),
            "span_id": frame["spanID"].to_numpy(dtype=object),
            "parent_id": frame["parentSpanID"].to_numpy(dtype=object) if "parentSpanID" in frame.columns else None,
            "service": frame["serviceName"].to_numpy(dtype=object),
            "operation": operation.to_numpy(dtype=object),
            "start": to_seconds(raw, unit),
            "duration": to_seconds(duration, dur_unit),
            "status": status.astype(object),
            "attributes": None,
        }
    )
    return out.sort_values("start", kind="stable", ignore_index=True)


def _align_services(spans: pd.DataFrame, entities: set[str]) -> pd.DataFrame:
    """Rename trace services to the metric entity they name (``frontendservice`` -> ``frontend``)."""
    names = spans["service"].dropna().unique()
    rename = {
        n: n[: -len("service")]
        for n in names
        if n not in entities and n.endswith("service") and n[: -len("service")] in entities
    }
    if rename:
        spans = spans.assign(service=spans["service"].replace(rename))
    return spans


# --------------------------------------------------------------------------- cases


def _case_id(unit: Path) -> str:
    if unit.is_file():
        return f"rcaeval/{unit.parent.name}/{unit.stem}"
    if _FLAT.match(unit.name) and not (unit.name.isdigit()):
        return f"rcaeval/{unit.name}"
    return f"rcaeval/{unit.parent.parent.name}/{unit.parent.name}/{unit.name}"


def _suite_system(unit: Path) -> tuple[str | None, str | None]:
    flat = _FLAT.match(unit.name)
    if flat:
        return flat["suite"].upper(), flat["system"].upper()
    suite = system = None
    for part in reversed(unit.resolve().parts):
        m = _SUITE_SYSTEM.match(part)
        if m:
            return m["suite"].upper(), m["system"].upper()
        if system is None and part.lower() in _SYSTEM_DIRS:
            system = _SYSTEM_DIRS[part.lower()]
            suite = suite or "RE1"  # the ASE'24 sets RCAEval's main.py reads as RE1
        if suite is None and re.fullmatch(r"RE[123]", part, re.IGNORECASE):
            suite = part.upper()
    return suite, system


def _system_from_entities(entities: set[str]) -> str | None:
    if any(e.startswith("ts-") for e in entities):
        return "TT"
    if {"checkoutservice", "productcatalogservice", "cartservice"} & entities:
        return "OB"
    if {"carts", "front-end", "orders", "catalogue"} & entities:
        return "SS"
    return None


def _inject_time(path: Path) -> float:
    text = read_text(path).strip()
    first = text.splitlines()[0].strip() if text else ""
    try:
        value = float(first)
    except ValueError:
        raise DataError("inject time is not a number", path=path, field="inject_time", value=first[:40] or None) from None
    if not np.isfinite(value) or value <= 0:
        raise DataError("inject time is not a positive finite number", path=path, field="inject_time", value=first[:40])
    return float(to_seconds(np.array([value]))[0])


def load_case(unit: Path) -> Case:
    """Return the Case of one RCAEval unit: a nested or flat case folder, or a single metrics file.

    Raises:
        DataError: for a malformed metrics, logs, traces or inject-time file (naming the file and
            the field), or a path that is not an RCAEval unit.
    """
    unit = Path(unit)
    kind = "single" if unit.is_file() else _kind(unit)
    if kind is None:
        raise DataError("not an RCAEval case folder or metrics file", path=unit)
    metrics_file = unit if kind == "single" else _metrics_file(unit)
    assert metrics_file is not None
    metrics, dropped = read_metrics(metrics_file)
    if metrics.empty:
        raise DataError("no values in the file", path=metrics_file)
    folder = unit.parent if kind == "single" else unit
    inject = None
    truth = None
    if kind != "single":
        if (folder / "inject_time.txt").is_file():
            inject = _inject_time(folder / "inject_time.txt")
        m = _FLAT.match(folder.name) if kind == "flat" else _NESTED.match(folder.parent.name)
        assert m is not None
        service, fault = m["service"], m["fault"]
        truth = Truth(
            service=service,
            fault=FAULTS.get(fault.lower()),
            inject_time=inject,
            entity=service,
            meta={"service": service, "fault": fault, "folder": folder.name if kind == "flat" else folder.parent.name},
        )
    spans = empty_table("spans")
    logs = empty_table("logs")
    if kind != "single" and (folder / "traces.csv").is_file():
        spans = read_traces(folder / "traces.csv")
    if kind != "single" and (folder / "logs.csv").is_file():
        logs = read_logs(folder / "logs.csv")
    entities = set(np.unique(metrics["entity"].to_numpy(dtype=object)).tolist())
    if not spans.empty:
        spans = _align_services(spans, entities)
    suite, system = _suite_system(unit)
    system_from = "path"
    if system is None:
        system, system_from = _system_from_entities(entities), "entities"
    times = np.unique(metrics["time"].to_numpy())
    normal_window = anomalous_window = None
    if inject is not None:
        before, after = times[times < inject], times[times >= inject]
        normal_window = [float(before[0]), float(before[-1])] if before.size else None
        anomalous_window = [float(after[0]), float(after[-1])] if after.size else None
    return Case(
        id=_case_id(unit),
        system=system or "",
        window=(float(times[0]), float(times[-1])),
        detected_at=inject,
        topology=topology_from_spans(spans),
        metrics=metrics,
        logs=logs,
        spans=spans,
        truth=truth,
        meta={
            "dataset": "rcaeval",
            "suite": suite,
            "layout": kind,
            "metrics_file": metrics_file.name,
            "system_from": system_from if system else None,
            "normal_window": normal_window,
            "anomalous_window": anomalous_window,
            "dropped_rows": dropped,
        },
        source=str(unit),
    )


def load(path: Path) -> Iterator[Case]:
    """Yield the Case of every RCAEval unit at or below *path*, sorted by id.

    Raises:
        DataError: when *path* holds no RCAEval case, or a case is malformed (the first bad
            case stops this generator; :func:`aisre.datasets.batch.load_all` goes on past it).
    """
    found = case_paths(Path(path))
    if not found:
        raise DataError("no RCAEval case (<service>_<fault>/<rep>/, re2ob_<service>_<fault>_<rep>/ or simple_metrics.csv) here", path=path)
    for unit in found:
        yield load_case(unit)


register(Loader("rcaeval", detect, load, "RCAEval RE1/RE2/RE3: <service>_<fault>/<rep>/, flat re2ob_*_<rep>/, or simple_metrics.csv"))
register_units("rcaeval", case_paths, VERSION)
