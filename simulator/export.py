"""Writing a simulated Case: as a project Case folder, or in the RCAEval layout.

RCAEval layout (what RCAEval's ``main.py`` and the RE2 datasets use)::

    <out>/<system>/<service>_<fault>/<rep>/
        data.csv          time,<service>_<metric>... (1 s rows; cpu mem diskio socket workload
                          error latency-50 latency-90; services, databases, caches, queues)
        logs.csv          time (HH:MM), timestamp (ns), container_name, message, level,
                          req_path, error, cluster_id, log_template
        traces.csv        time (HH:MM), traceID, spanID, serviceName, methodName,
                          operationName, startTimeMillis, startTime (us), duration (us),
                          statusCode (0 ok, 2 error), parentSpanID
        inject_time.txt   the first fault's start, integer unix seconds

A run without faults goes to ``<out>/<system>/normal/<rep>/`` without ``inject_time.txt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aisre.case import Case, save_case
from aisre.errors import UsageError

__all__ = ["RCAEVAL_METRICS", "export_case", "export_rcaeval", "write"]

RCAEVAL_METRICS = ("cpu", "mem", "diskio", "socket", "workload", "error", "latency-50", "latency-90")
"""Metrics written to ``data.csv``, in RCAEval's names and order."""


def export_case(case: Case, out_dir: str | Path) -> Path:
    """Save *case* as a Case folder ``<out_dir>/<case.id>`` and return its path."""
    return save_case(case, Path(out_dir) / case.id)


def _hhmm(t: np.ndarray) -> list[str]:
    sec = np.floor(t).astype(np.int64) % 86400
    return [f"{h:02d}:{m:02d}" for h, m in zip((sec // 3600).tolist(), ((sec % 3600) // 60).tolist())]


def export_rcaeval(case: Case, out_dir: str | Path, rep: int = 1) -> Path:
    """Write *case* in the RCAEval layout under *out_dir* and return the ``<rep>`` folder.

    Raises:
        UsageError: for a repetition number below 1.
    """
    if isinstance(rep, bool) or not isinstance(rep, int) or rep < 1:
        raise UsageError(f"rep must be a positive integer, got {rep!r}")
    system = case.system or "system"
    name = f"{case.truth.service}_{case.truth.fault}" if case.truth else "normal"
    folder = Path(out_dir) / system / name / str(rep)
    folder.mkdir(parents=True, exist_ok=True)
    services = set(case.topology.services()) if case.topology is not None else None

    m = case.metrics
    ent = m["entity"].astype(str)
    met = m["metric"].astype(str)
    keep = met.isin(RCAEVAL_METRICS)
    if services is not None:
        keep &= ent.isin(services)
    sel = pd.DataFrame({"time": m["time"][keep].round().astype(np.int64), "key": (ent[keep] + "_" + met[keep]),
                        "value": m["value"][keep]})
    wide = sel.pivot_table(index="time", columns="key", values="value", aggfunc="mean", sort=True)
    order = [f"{e}_{k}" for k in RCAEVAL_METRICS for e in sorted(set(ent[keep]))]
    wide = wide[[c for c in order if c in wide.columns]]
    wide.index.name = "time"
    wide.reset_index().to_csv(folder / "data.csv", index=False)

    lg = case.logs
    t = lg["time"].to_numpy(dtype=np.float64)
    templates = lg["template"].fillna("").astype(str)
    cluster = pd.factorize(templates, sort=True)[0]
    pd.DataFrame({
        "time": _hhmm(t),
        "timestamp": np.round(t * 1e9).astype(np.int64),
        "container_name": lg["entity"].astype(str),
        "message": lg["message"].astype(str),
        "level": lg["level"].astype(str).str.lower(),
        "req_path": "",
        "error": lg["level"].astype(str).str.upper().eq("ERROR"),
        "cluster_id": cluster,
        "log_template": templates,
    }).to_csv(folder / "logs.csv", index=False)  # fmt: skip

    sp = case.spans
    st = sp["start"].to_numpy(dtype=np.float64)
    pd.DataFrame({
        "time": _hhmm(st),
        "traceID": sp["trace_id"].astype(str),
        "spanID": sp["span_id"].astype(str),
        "serviceName": sp["service"].astype(str),
        "methodName": sp["operation"].astype(str),
        "operationName": sp["operation"].astype(str),
        "startTimeMillis": np.round(st * 1e3).astype(np.int64),
        "startTime": np.round(st * 1e6).astype(np.int64),
        "duration": np.round(sp["duration"].to_numpy(dtype=np.float64) * 1e6).astype(np.int64),
        "statusCode": np.where(sp["status"].astype(str).eq("error"), 2.0, 0.0),
        "parentSpanID": sp["parent_id"],
    }).to_csv(folder / "traces.csv", index=False)  # fmt: skip

    inject = folder / "inject_time.txt"
    if case.truth is not None and case.truth.inject_time is not None:
        inject.write_text(f"{int(case.truth.inject_time)}\n")
    elif inject.exists():
        inject.unlink()
    return folder


def write(case: Case, out_dir: str | Path, *, format: str = "case", rep: int = 1) -> Path:
    """Write *case* under *out_dir* as ``case`` (a Case folder) or ``rcaeval``; return the path.

    Raises:
        UsageError: for an unknown format.
    """
    if format == "case":
        return export_case(case, out_dir)
    if format == "rcaeval":
        return export_rcaeval(case, out_dir, rep=rep)
    raise UsageError(f"unknown format {format!r}; known: case, rcaeval")
