"""The ``nezha`` layout: the Nezha RCA dataset (Yu et al., ESEC/FSE 2023), OnlineBoutique (OB)
and TrainTicket (TT) with per-pod metrics, traces and logs.

Layout (``path`` may be the dataset root, its ``rca_data`` folder, or one date folder)::

    rca_data/<date>/<date>-fault_list.json            ground truth: one case per entry
    rca_data/<date>/metric/<pod>_metric.csv           1 row/minute per pod
    rca_data/<date>/metric/front_service.csv          entry SLIs
    rca_data/<date>/metric/{source,destination}_50.csv, dependency.csv   (OB)
    rca_data/<date>/{trace,log}/<HH_MM>_{trace,log}.csv
    construct_data/<date>/trace/...                   fault-free reference minute
    construct_data/root_cause_{hipster,ts}.json       inner-service labels

One :class:`~aisre.case.Case` per fault-list entry, id ``nezha/<date>/<system>/<nn>`` where
``nn`` is the entry's position in its fault list (document order, two digits):

- ``truth``: service = ``inject_pod`` without its last two ``-`` parts, fault mapped by
  :data:`FAULT_MAP` (the original in ``truth.meta["fault"]``), inject time = ``inject_time`` read
  as UTC (never ``inject_timestamp``, which is hours off on one day); ``entity`` = the pod.
- ``metrics``: long rows with ``entity`` = the **service** (Nezha runs one pod per service per
  day; ``case.meta["pods"]`` maps pod -> service, so nothing is lost; were a service to have
  several pods, its rows would keep the pod name as entity). ``front_service.csv`` rows have
  entity ``front_service``; OB's per-edge latencies become ``source_50->callee`` on the caller and
  ``destination_50<-caller`` on the callee. Empty/``NaN`` cells are missing samples and have no
  row; ``PodSuccessRate(%)`` is kept although it is always 0 upstream. Rows keep their own
  times: the once-a-minute collector reaches each pod at its own offset (up to ~2 s apart), so
  bin by ``case.meta["metric_step_s"]`` (60) before pivoting services side by side.
- Metric rows are those within the case's bounds: ``inject_time`` ± 600 s, cut at the midpoint to
  the day's neighbouring faults so no two cases share a row (``case.meta["bounds"]``);
  ``case.window`` is the extent of the rows actually loaded (metrics, spans, logs).
- ``spans``/``logs``: the three minute files named after the inject minute and the next two,
  de-duplicated on ``(trace_id, span_id)``; absent files (most OB logs, some OB trace minutes) are
  listed in ``case.meta["files"]["missing"]``, never treated as a signal.
- ``topology``: the call graph recovered from the case's spans plus the day's fault-free
  reference spans (``construct_data``), source ``spans``; else ``dependency.csv`` (source
  ``file``, with ``runs_on`` host placement); else ``None``.

Malformed files raise :class:`~aisre.errors.DataError` naming file, field and row. Use
:func:`iter_cases` to load case by case and record failures; :func:`load` yields every case that
loads and raises one DataError at the end if any failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Case, Topology, Truth, empty_table, topology_from_spans
from aisre.datasets.batch import register_units
from aisre.datasets.nezha_logs import read_logs
from aisre.datasets.nezha_parse import (
    FAULT_MAP,
    FaultEntry,
    read_dependency,
    read_fault_list,
    read_metric_csv,
    read_span_links,
    read_spans,
    service_of,
)
from aisre.datasets.registry import Loader, register
from aisre.errors import DataError

__all__ = [
    "FAULT_MAP", "FRONT_ENTITY", "HALF_WINDOW", "VERSION",
    "case_paths", "detect", "iter_cases", "load", "service_of",
]  # fmt: skip

VERSION = "1"
"""Version of this loader's output (the cache key uses it); bump when the Cases change."""

HALF_WINDOW = 600.0
"""Most seconds a case reaches either side of its inject time."""

FRONT_ENTITY = "front_service"
"""Entity of the entry-service SLIs in ``front_service.csv``."""

_SYSTEM_NAMES = {"OB": "OnlineBoutique", "TT": "TrainTicket"}
_ROOT_CAUSE_FILES = {"OB": "root_cause_hipster.json", "TT": "root_cause_ts.json"}


# --------------------------------------------------------------------------- layout


def _fault_list_of(folder: Path) -> Path | None:
    named = folder / f"{folder.name}-fault_list.json"
    if named.is_file():
        return named
    return next(iter(sorted(folder.glob("*-fault_list.json"))), None)


def _date_folders(path: Path) -> list[Path]:
    """Return the date folders at *path*: itself, its children, or ``rca_data``'s children."""
    if not path.is_dir():
        return []
    if _fault_list_of(path) is not None:
        return [path]
    base = path / "rca_data" if (path / "rca_data").is_dir() else path
    return [p for p in sorted(base.iterdir()) if p.is_dir() and _fault_list_of(p) is not None]


def case_paths(path: Path) -> list[Path]:
    """Return the date folders at *path*, the units a batch loads one at a time."""
    return _date_folders(Path(path))


def detect(path: Path) -> bool:
    """Return True when *path* is a Nezha root, its ``rca_data`` folder, or one date folder."""
    return bool(_date_folders(Path(path)))


# --------------------------------------------------------------------------- one day


class _Day:
    """One date folder: its fault list, and its metrics and reference spans parsed once,
    on first use, for all its cases (a failure is kept and re-raised for each case)."""

    def __init__(self, folder: Path, entries: list[FaultEntry]) -> None:
        self.folder = folder
        self.date = folder.name
        self.entries = entries
        self.construct = folder.parent.parent / "construct_data" / folder.name
        self.system = _system_of(folder, entries)
        self._cache: dict[str, Any] = {}

    def _once(self, key: str, fn: Callable[[], Any]) -> Any:
        if key not in self._cache:
            try:
                self._cache[key] = (True, fn())
            except DataError as exc:
                self._cache[key] = (False, exc)
        ok, value = self._cache[key]
        if not ok:
            raise value
        return value

    def metrics(self) -> tuple[pd.DataFrame, dict[str, str]]:
        """Return the day's long metrics sorted by time, and the pod -> service map."""
        return self._once("metrics", partial(_day_metrics, self.folder / "metric"))

    def topology(self) -> Topology | None:
        """Return the day's service call graph: spans of every trace file of the day and of its
        fault-free reference minute (sampling hides rare edges in one case's three minutes, and
        the graph is a property of the system, not of the fault); else ``dependency.csv``."""
        return self._once("topology", self._topology)

    def _topology(self) -> Topology | None:
        files = sorted((self.folder / "trace").glob("*_trace.csv"))
        files += sorted((self.construct / "trace").glob("*_trace.csv"))
        parts = []
        for f in files:
            try:
                parts.append(read_span_links(f))
            except DataError:
                continue  # reported by the case that owns the file
        if parts:
            spans = pd.concat(parts, ignore_index=True).drop_duplicates(["trace_id", "span_id"])
            topo = topology_from_spans(spans)
            if topo is not None:
                return topo
        return self.dependency()

    def dependency(self) -> Topology | None:
        """Return the shipped ``dependency.csv`` graph, or None."""
        dep = self.folder / "metric" / "dependency.csv"
        return self._once("dependency", lambda: read_dependency(dep) if dep.is_file() else None)

    def inner_labels(self) -> dict[str, Any]:
        """Return ``root_cause_*.json`` (service -> fault type -> inner label), or {}."""
        return self._once("inner", partial(_read_inner_labels, self.construct.parent / _ROOT_CAUSE_FILES[self.system]))

    def bounds(self, entry: FaultEntry) -> tuple[float, float]:
        """Return ``[inject - 600 s, inject + 600 s)`` cut at the midpoints to the neighbouring faults."""
        t = entry.inject_time
        lo, hi = t - HALF_WINDOW, t + HALF_WINDOW
        others = np.array([e.inject_time for e in self.entries], dtype="float64")
        before, after = others[others < t], others[others > t]
        if before.size:
            lo = max(lo, (before.max() + t) / 2)
        if after.size:
            hi = min(hi, (t + after.min()) / 2)
        return lo, hi


def _system_of(folder: Path, entries: list[FaultEntry]) -> str:
    """TrainTicket pods are all named ``ts-...``; OnlineBoutique's never are."""
    pods = [e.pod for e in entries] or [p.name for p in (folder / "metric").glob("*_metric.csv")]
    return "TT" if pods and all(p.startswith("ts-") for p in pods) else "OB"


def _read_inner_labels(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"not valid JSON ({exc})", path=path) from exc
    if not isinstance(doc, dict) or not all(isinstance(v, dict) for v in doc.values()):
        raise DataError("expected {service: {fault_type: label}}", path=path, field="<root>")
    return doc


def _day_metrics(metric_dir: Path) -> tuple[pd.DataFrame, dict[str, str]]:
    """Parse every metric file of a day into one long table sorted by time."""
    pod_files = sorted(metric_dir.glob("*_metric.csv"))
    pods = {f.name[: -len("_metric.csv")]: service_of(f.name[: -len("_metric.csv")]) for f in pod_files}
    per_service: dict[str, int] = {}
    for svc in pods.values():
        per_service[svc] = per_service.get(svc, 0) + 1
    parts: list[pd.DataFrame] = []
    for f, (pod, svc) in zip(pod_files, pods.items(), strict=True):
        times, values = read_metric_csv(f, skip=("PodName",))
        parts.append(_long(times, values, svc if per_service[svc] == 1 else pod))
    front = metric_dir / "front_service.csv"
    if front.is_file():
        times, values = read_metric_csv(front, skip=("ServiceName",))
        parts.append(_long(times, values, FRONT_ENTITY))
    known = set(pods.values())
    for name, arrow in (("source_50", "->"), ("destination_50", "<-")):
        f = metric_dir / f"{name}.csv"
        if f.is_file():
            times, values = read_metric_csv(f)
            for col in values.columns:  # one column per call edge: tens
                caller, callee = _split_edge(col, known)
                owner, other = (caller, callee) if arrow == "->" else (callee, caller)
                parts.append(_long(times, values[[col]].set_axis([f"{name}{arrow}{other}"], axis=1), owner))
    if not parts:
        return empty_table("metrics"), pods
    frame = pd.concat(parts, ignore_index=True)
    frame = frame.sort_values("time", kind="stable", ignore_index=True)
    return frame, pods


def _long(times: np.ndarray, values: pd.DataFrame, entity: str) -> pd.DataFrame:
    """Melt a wide block (rows x metrics) to long rows, dropping missing samples."""
    n, m = values.shape
    v = values.to_numpy(dtype="float64").ravel()
    frame = pd.DataFrame({
        "time": np.repeat(times, m),
        "entity": np.full(n * m, entity, dtype=object),
        "metric": np.tile(np.asarray(values.columns, dtype=object), n),
        "value": v,
    })  # fmt: skip
    return frame[~np.isnan(v)]


def _split_edge(column: str, known: set[str]) -> tuple[str, str]:
    """Split ``caller_callee`` at the ``_`` that leaves two known services (else the first)."""
    pieces = column.split("_")
    for i in range(1, len(pieces)):
        a, b = "_".join(pieces[:i]), "_".join(pieces[i:])
        if a in known and b in known:
            return a, b
    a, _, b = column.partition("_")
    return a, b or a


# --------------------------------------------------------------------------- one case


def _minutes(t: float) -> list[str]:
    """The ``HH_MM`` names of a case's minute files: the inject minute and the next two."""
    base = int(t // 60) * 60
    return [datetime.fromtimestamp(base + 60 * k, UTC).strftime("%H_%M") for k in range(3)]


def _build_case(day: _Day, entry: FaultEntry, case_id: str) -> Case:
    """Load the case of one fault-list entry.

    Raises:
        DataError: for any malformed file the case needs.
    """
    lo, hi = day.bounds(entry)
    day_metrics, day_pods = day.metrics()
    pods = dict(day_pods)
    times = day_metrics["time"].to_numpy()
    a, b = np.searchsorted(times, lo, "left"), np.searchsorted(times, hi, "left")
    metrics = day_metrics.iloc[a:b].reset_index(drop=True)

    root = day.folder.parent.parent
    present: dict[str, list[str]] = {"trace": [], "log": []}
    missing: list[str] = []
    span_parts, log_parts = [], []
    for minute in _minutes(entry.inject_time):
        for kind, reader, parts in (("trace", read_spans, span_parts), ("log", read_logs, log_parts)):
            f = day.folder / kind / f"{minute}_{kind}.csv"
            rel = _rel(f, root)
            if f.is_file():
                parts.append(reader(f))
                present[kind].append(rel)
            else:
                missing.append(rel)
    spans = empty_table("spans")
    if span_parts:
        spans = pd.concat(span_parts, ignore_index=True).drop_duplicates(["trace_id", "span_id"])
        spans = spans.sort_values(["start", "trace_id", "span_id"], kind="stable", ignore_index=True)
    logs = empty_table("logs")
    if log_parts:
        logs = pd.concat(log_parts, ignore_index=True)
        logs = logs.sort_values("time", kind="stable", ignore_index=True)
        for pod in logs["pod"].unique():
            pods.setdefault(str(pod), service_of(str(pod)))
        logs = logs.drop(columns="pod")
    if not spans.empty:
        for attr in spans["attributes"].unique():  # one per pod
            pod = json.loads(attr)["pod"]
            pods.setdefault(pod, service_of(pod))

    topology = day.topology()
    window = _extent(metrics, spans, logs) or (lo, hi)
    inner = day.inner_labels().get(entry.service, {}).get(entry.fault_original)
    truth = Truth(
        service=entry.service,
        fault=entry.fault,
        inject_time=entry.inject_time,
        entity=entry.pod,
        meta={
            "fault": entry.fault_original,
            "inject_pod": entry.pod,
            "inject_time_raw": entry.inject_time_raw,
            "inject_timestamp_raw": entry.inject_timestamp_raw,
            "inner_root_cause": inner,
            "fault_duration_s": 180,
        },
    )
    meta = {
        "dataset": "nezha",
        "date": day.date,
        "system_name": _SYSTEM_NAMES[day.system],
        "fault_list": _rel(day.folder / f"{day.date}-fault_list.json", root),
        "fault_list_hour": entry.hour,
        "fault_list_index": entry.index,
        "bounds": [float(lo), float(hi)],
        "pods": dict(sorted(pods.items())),
        "files": {"trace": present["trace"], "log": present["log"], "missing": missing},
        "front_entity": FRONT_ENTITY,
        "metric_step_s": 60,
    }
    return Case(
        id=case_id, system=day.system, window=window, detected_at=entry.inject_time, topology=topology,
        metrics=metrics, logs=logs, spans=spans, truth=truth, meta=meta, source=str(day.folder),
    )  # fmt: skip


def _extent(metrics: pd.DataFrame, spans: pd.DataFrame, logs: pd.DataFrame) -> tuple[float, float] | None:
    lows, highs = [], []
    if not metrics.empty:
        lows.append(metrics["time"].iloc[0])
        highs.append(metrics["time"].iloc[-1])
    if not spans.empty:
        lows.append(spans["start"].min())
        highs.append((spans["start"] + spans["duration"]).max())
    if not logs.empty:
        lows.append(logs["time"].iloc[0])
        highs.append(logs["time"].iloc[-1])
    return (float(min(lows)), float(max(highs))) if lows else None


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


# --------------------------------------------------------------------------- public API


def _raise(exc: DataError) -> Case:
    raise exc


def iter_cases(path: str | Path) -> Iterator[tuple[str, Callable[[], Case]]]:
    """Yield ``(case_id, thunk)`` pairs in id order; calling a thunk loads that case.

    A thunk raises :class:`DataError` for its own case's malformed input, so a batch can record
    the failure and go on. A day whose fault list is malformed yields one pair
    ``("nezha/<date>", thunk)`` whose thunk raises.

    Raises:
        DataError: when *path* holds no Nezha date folder.
    """
    p = Path(path)
    folders = _date_folders(p)
    if not folders:
        raise DataError("not a Nezha layout: no <date>/<date>-fault_list.json found", path=p)
    for folder in folders:
        fault_list = _fault_list_of(folder)
        assert fault_list is not None
        try:
            entries = read_fault_list(fault_list)
        except DataError as exc:
            yield f"nezha/{folder.name}", partial(_raise, exc)
            continue
        day = _Day(folder, entries)
        for entry in entries:
            case_id = f"nezha/{day.date}/{day.system}/{entry.index:02d}"
            yield case_id, partial(_build_case, day, entry, case_id)


def load(path: str | Path) -> Iterator[Case]:
    """Yield every Nezha case at *path* (root, ``rca_data`` or one date folder) in id order.

    Cases that fail are skipped while the rest load; at the end one DataError names how many
    failed and the first failure (use :func:`iter_cases` to handle failures one by one).

    Raises:
        DataError: when *path* is not a Nezha layout, or after the good cases when any failed.
    """
    failures: list[tuple[str, DataError]] = []
    for case_id, thunk in iter_cases(path):
        try:
            case = thunk()
        except DataError as exc:
            failures.append((case_id, exc))
            continue
        yield case
    if failures:
        first_id, first = failures[0]
        raise DataError(
            f"{len(failures)} Nezha case(s) failed to load ({', '.join(c for c, _ in failures[:5])}"
            f"{', ...' if len(failures) > 5 else ''}); first: {first_id}: {first}",
            path=first.path or path,
            field=first.field,
            row=first.row,
        )


register(Loader("nezha", detect, load, "Nezha (FSE 2023): rca_data/<date>/ fault list, per-pod metrics, traces, logs"))
register_units("nezha", case_paths, VERSION)
