"""Parsers for the files of the Nezha dataset: fault lists, per-pod metric CSVs, trace and log
minute files and ``dependency.csv``. Each reads one file into a model-shaped frame and raises
:class:`aisre.errors.DataError` naming the file, field and row (a file line number, header = 1)
for malformed input; nothing else escapes.

The traps these parsers handle are listed in the dataset's NOTES.md: the metric ``Time`` column is
always the one parsed (``TimeStamp`` is corrupt in one file). Log files: :mod:`nezha_logs`.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import FAULT_KINDS, SPAN_COLUMNS, Topology
from aisre.errors import DataError, SpecError

__all__ = [
    "FAULT_MAP",
    "FaultEntry",
    "read_dependency",
    "read_fault_list",
    "read_metric_csv",
    "read_span_links",
    "read_spans",
    "service_of",
]

FAULT_MAP: dict[str, str] = {
    "cpu_contention": "cpu",
    "cpu_consumed": "cpu",
    "network_delay": "delay",
    "return": "error",
    "exception": "error",
}
"""Nezha's ``inject_type`` names mapped onto :data:`aisre.case.FAULT_KINDS`."""

assert set(FAULT_MAP.values()) <= set(FAULT_KINDS)

_NS_MIN, _NS_MAX = 946_684_800 * 10**9, 4_102_444_800 * 10**9
"""Sane unix-nanosecond range (2000-01-01 to 2100-01-01); Go's zero time falls outside."""

_READ_ERRORS = (
    pd.errors.ParserError,
    pd.errors.EmptyDataError,
    UnicodeDecodeError,
    ValueError,
    OverflowError,
    csv.Error,
    MemoryError,
)


def service_of(pod: str) -> str:
    """Return the service of a Kubernetes Deployment pod: its name without the last two ``-``
    parts (ReplicaSet hash and pod suffix); a name with fewer parts is returned unchanged."""
    parts = pod.rsplit("-", 2)
    return parts[0] if len(parts) == 3 and parts[0] else pod


# --------------------------------------------------------------------------- fault lists


@dataclass(frozen=True)
class FaultEntry:
    """One entry of a ``<date>-fault_list.json``: a fault injection, in document order."""

    index: int
    hour: str
    inject_time: float
    inject_time_raw: str
    inject_timestamp_raw: str | None
    pod: str
    service: str
    fault_original: str
    fault: str | None


def read_fault_list(path: Path) -> list[FaultEntry]:
    """Read a fault list: ``{"HH": [{inject_time, inject_timestamp, inject_pod, inject_type}]}``.

    Entries come in document order (hour keys as they appear, then list order); ``inject_time``
    is read as UTC (``inject_timestamp`` is kept raw only, it is unreliable).

    Raises:
        DataError: for unreadable JSON or a wrong shape, naming the field (e.g. ``04[2].inject_pod``).
    """
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"not valid JSON ({exc})", path=path) from exc
    except RecursionError as exc:
        raise DataError("JSON nested too deeply", path=path) from exc
    if not isinstance(doc, Mapping):
        raise DataError("a fault list must be a JSON object of hour -> list", path=path, field="<root>",
                        value=type(doc).__name__)
    entries: list[FaultEntry] = []
    for hour, items in doc.items():  # a handful of entries per day: not a hot path
        if not isinstance(items, list):
            raise DataError("expected a list of entries", path=path, field=str(hour), value=type(items).__name__)
        for i, item in enumerate(items):
            where = f"{hour}[{i}]"
            if not isinstance(item, Mapping):
                raise DataError("an entry must be an object", path=path, field=where, value=type(item).__name__)
            raw_time = _required_str(item, "inject_time", path, where)
            try:
                when = datetime.strptime(raw_time.strip(), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            except ValueError:
                raise DataError("inject_time is not 'YYYY-MM-DD HH:MM:SS'", path=path,
                                field=f"{where}.inject_time", value=raw_time) from None
            pod = _required_str(item, "inject_pod", path, where)
            service = service_of(pod)
            if service == pod:
                raise DataError("inject_pod is not a Deployment pod name (<service>-<hash>-<suffix>)",
                                path=path, field=f"{where}.inject_pod", value=pod)
            kind = _required_str(item, "inject_type", path, where)
            stamp = item.get("inject_timestamp")
            entries.append(FaultEntry(
                index=len(entries), hour=str(hour), inject_time=when.timestamp(), inject_time_raw=raw_time,
                inject_timestamp_raw=None if stamp is None else str(stamp), pod=pod, service=service,
                fault_original=kind, fault=FAULT_MAP.get(kind),
            ))  # fmt: skip
    return entries


def _required_str(item: Mapping[str, Any], key: str, path: Path, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise DataError(f"missing or non-text {key}", path=path, field=f"{where}.{key}", value=value)
    return value


# --------------------------------------------------------------------------- CSV helpers


def _read_csv(path: Path, **kwargs: Any) -> pd.DataFrame:
    """Read a CSV with pandas' C parser, turning its errors into DataError."""
    try:
        frame = pd.read_csv(path, engine="c", **kwargs)
    except pd.errors.EmptyDataError:
        raise DataError("empty file", path=path) from None
    except _READ_ERRORS as exc:
        raise DataError(f"unreadable CSV ({' '.join(str(exc).split())[:200]})", path=path) from exc
    if frame.empty and len(frame.columns) == 0:
        raise DataError("empty file", path=path)
    _check_last_line(path, len(frame.columns), len(frame) + 1)
    return frame


def _check_last_line(path: Path, n_fields: int, line_no: int) -> None:
    """Raise when a file ends mid-row: pandas pads a short last row with NaN silently."""
    with path.open("rb") as fh:
        fh.seek(0, io.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 65536))
        tail = fh.read()
    if not tail or tail.endswith(b"\n"):
        return
    last = tail.rsplit(b"\n", 1)[-1].decode("utf-8", "replace")
    try:
        fields = next(csv.reader([last]), [])
    except csv.Error:
        fields = []
    if len(fields) < n_fields:
        raise DataError(f"truncated: the last row has {len(fields)} of {n_fields} fields", path=path, row=line_no)


def _numeric(frame: pd.DataFrame, column: str, path: Path, *, allow_nan: bool) -> pd.Series:
    """Return *column* as float64, raising for text, infinities and (unless allowed) missing cells."""
    raw = frame[column]
    if pd.api.types.is_bool_dtype(raw):
        raise DataError("expected numbers, found booleans", path=path, field=column, row=2, value=raw.iloc[0])
    if pd.api.types.is_numeric_dtype(raw):
        values = raw.astype("float64")
        bad = np.zeros(len(raw), dtype=bool)
    else:
        values = pd.to_numeric(raw, errors="coerce").astype("float64")
        bad = (values.isna() & raw.notna()).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("not a number", path=path, field=column, row=i + 2, value=raw.iloc[i])
    arr = values.to_numpy()
    inf = np.isinf(arr)
    if inf.any():
        i = int(np.flatnonzero(inf)[0])
        raise DataError("infinite value", path=path, field=column, row=i + 2, value=str(arr[i]))
    if not allow_nan:
        nan = np.isnan(arr)
        if nan.any():
            i = int(np.flatnonzero(nan)[0])
            raise DataError("missing value", path=path, field=column, row=i + 2)
    return values


def _unix_seconds(text: pd.Series, path: Path, field: str) -> np.ndarray:
    """Parse ISO-like UTC time strings (Go's ``2022-08-22 03:51:19.6071 +0000 UTC m=+0.11``
    form included) to float unix seconds; raise for a missing or unparseable cell."""
    raw = text.astype("object")
    missing = raw.isna().to_numpy()
    if missing.any():
        i = int(np.flatnonzero(missing)[0])
        raise DataError("missing time", path=path, field=field, row=i + 2)
    s = raw.astype("str").str.strip()
    # Go's time.String(), "2022-08-22 03:51:19.6 +0000 UTC m=+0.11": keep date, time and offset,
    # drop the zone name and the monotonic-clock reading.
    s = s.str.replace(r"^(\S+ \S+) ([+-]\d\d)(\d\d) \S+.*$", r"\1\2:\3", regex=True)
    try:
        dt = pd.to_datetime(s, format="ISO8601", utc=True, errors="coerce")
    except (ValueError, OverflowError, TypeError):
        dt = pd.Series(pd.NaT, index=s.index, dtype="datetime64[ns, UTC]")
    bad = dt.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("unparseable time", path=path, field=field, row=i + 2, value=raw.iloc[i])
    return dt.dt.as_unit("ns").astype("int64").to_numpy() / 1e9


# --------------------------------------------------------------------------- metrics


def read_metric_csv(path: Path, *, skip: tuple[str, ...] = ()) -> tuple[np.ndarray, pd.DataFrame]:
    """Read a Nezha metric file (``<pod>_metric.csv``, ``front_service.csv``, ``source_50.csv``,
    ``destination_50.csv``): return the times (unix seconds, from ``Time``/``time``) and the
    numeric value columns as float64 (``NaN`` cells are missing samples).

    The ``TimeStamp`` column and the text columns named in *skip* are dropped.

    Raises:
        DataError: for an empty or truncated file, a missing, unparseable, duplicate or decreasing
            time, text or infinities in a value column.
    """
    frame = _read_csv(path)
    time_col = next((c for c in ("Time", "time") if c in frame.columns), None)
    if time_col is None:
        raise DataError("no time column (expected 'Time' or 'time')", path=path, field="Time")
    times = _unix_seconds(frame[time_col], path, time_col)
    if len(times) > 1:
        step = np.diff(times)
        if (step <= 0).any():
            i = int(np.flatnonzero(step <= 0)[0]) + 1
            what = "duplicate" if step[i - 1] == 0 else "decreasing"
            raise DataError(f"{what} time", path=path, field=time_col, row=i + 2, value=frame[time_col].iloc[i])
    drop = {time_col, "TimeStamp", "timestamp", *skip}
    cols = [c for c in frame.columns if c not in drop]
    block = frame[cols]
    if not all(pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_bool_dtype(t) for t in block.dtypes):
        block = pd.DataFrame({c: _numeric(frame, c, path, allow_nan=True) for c in cols}, index=frame.index)
    values = block.to_numpy(dtype="float64")
    inf = np.isinf(values)
    if inf.any():
        r, c = (int(x[0]) for x in np.nonzero(inf))
        raise DataError("infinite value", path=path, field=cols[c], row=r + 2, value=str(values[r, c]))
    return times, pd.DataFrame(values, columns=cols, index=frame.index)


# --------------------------------------------------------------------------- traces

_TRACE_COLUMNS = ("TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano", "EndTimeUnixNano")


def read_spans(path: Path) -> pd.DataFrame:
    """Read a ``<HH_MM>_trace.csv`` into the spans table (start and duration in seconds,
    service = pod without its last two ``-`` parts, ``parent_id`` None for ``root``, status
    ``unset`` as Nezha records none, ``attributes`` = ``{"pod": ...}``).

    Raises:
        DataError: for an unreadable file, a missing column or a bad time cell.
    """
    text_cols = {c: str for c in ("TraceID", "SpanID", "ParentID", "PodName", "OperationName")}
    frame = _read_csv(path, dtype=text_cols, keep_default_na=False)
    missing = [c for c in _TRACE_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"missing trace columns {missing}", path=path, field=missing[0])
    start_ns = _int_ns(frame, "StartTimeUnixNano", path)
    end_ns = _int_ns(frame, "EndTimeUnixNano", path)
    for col in ("TraceID", "SpanID", "PodName"):
        empty = (frame[col].astype(str).str.len() == 0).to_numpy()
        if empty.any():
            raise DataError("empty cell", path=path, field=col, row=int(np.flatnonzero(empty)[0]) + 2)
    pods = frame["PodName"].astype(str)
    parent = frame["ParentID"].astype(str)
    out = pd.DataFrame({
        "trace_id": frame["TraceID"].astype(str).astype(object),
        "span_id": frame["SpanID"].astype(str).astype(object),
        "parent_id": parent.where((parent != "root") & (parent != ""), None).astype(object),
        "service": _map_unique(pods, service_of),
        "operation": frame["OperationName"].astype(str).astype(object),
        "start": start_ns / 1e9,
        "duration": (end_ns - start_ns) / 1e9,
        "status": "unset",
        "attributes": _map_unique(pods, lambda p: json.dumps({"pod": p})),
    })  # fmt: skip
    return out[list(SPAN_COLUMNS)]


def read_span_links(path: Path) -> pd.DataFrame:
    """Read only what a call graph needs from a ``<HH_MM>_trace.csv``: ``trace_id, span_id,
    parent_id, service`` (a cheaper pass than :func:`read_spans`).

    Raises:
        DataError: for an unreadable file or a missing column.
    """
    cols = ["TraceID", "SpanID", "ParentID", "PodName"]
    try:
        frame = _read_csv(path, usecols=cols, dtype=object, keep_default_na=False)
    except DataError as exc:
        if "usecols" in str(exc) or "Usecols" in str(exc):
            raise DataError(f"missing trace columns (need {cols})", path=path, field="TraceID") from exc
        raise
    parent = frame["ParentID"]
    return pd.DataFrame({
        "trace_id": frame["TraceID"],
        "span_id": frame["SpanID"],
        "parent_id": parent.where((parent != "root") & (parent != ""), None),
        "service": _map_unique(frame["PodName"], service_of),
    })  # fmt: skip


def _int_ns(frame: pd.DataFrame, column: str, path: Path) -> np.ndarray:
    """Return a nanosecond column as int64 (float64 would lose the last digits)."""
    raw = frame[column]
    if pd.api.types.is_integer_dtype(raw):
        return raw.to_numpy(dtype="int64")
    values = _numeric(frame, column, path, allow_nan=False)
    return values.to_numpy().astype("int64")


def _map_unique(values: pd.Series, fn: Any) -> pd.Series:
    """Apply *fn* once per distinct value (pods are few, rows are many)."""
    codes, uniques = pd.factorize(values)
    mapped = np.array([fn(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index, dtype=object)


# --------------------------------------------------------------------------- dependency.csv

_IP = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def read_dependency(path: Path) -> Topology | None:
    """Read ``dependency.csv`` (``Source,Target,Weight``): service -> service rows are ``calls``
    edges, service -> IP rows place the service on a host (``runs_on``). Returns ``None`` when
    the file holds no edge (no graph is ever invented).

    Raises:
        DataError: for an unreadable file, missing columns or a self-loop.
    """
    frame = _read_csv(path, dtype=str, keep_default_na=False)
    for col in ("Source", "Target"):
        if col not in frame.columns:
            raise DataError("missing column", path=path, field=col)
    if frame.empty:
        return None
    topo = Topology(source="file")
    src = frame["Source"].str.strip()
    dst = frame["Target"].str.strip()
    host = dst.str.match(_IP)
    try:
        for s, d in zip(src[~host], dst[~host], strict=True):  # tens of rows
            if not s or not d:
                raise DataError("empty service name", path=path, field="Source")
            topo.add_edge(s, d, "calls")
        for s, d in zip(src[host], dst[host], strict=True):
            if s not in topo:
                topo.add_node(s, "service")
            if d not in topo:
                topo.add_node(d, "host")
            topo.add_edge(s, d, "runs_on")
    except SpecError as exc:
        raise DataError(f"bad edge: {exc}", path=path, field="Target") from exc
    return topo if topo.edges() else None
