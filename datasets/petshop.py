"""The ``petshop`` layout: PetShop (Hardt et al., CLeaR 2024), an AWS pet-adoption application.

Layout::

    dataset/<scenario>/graph.csv                            call graph, adjacency matrix
    dataset/<scenario>/noissue/metrics.csv                  normal operation (absent for some)
    dataset/<scenario>/<train|test>/issue_<n>/metrics.csv   5 rows at 300 s around one issue
    dataset/<scenario>/<train|test>/issue_<n>/target.json   the SLO symptom and the ground truth

``metrics.csv`` has three header rows (``microservice``, ``metric``, ``statistic``) plus an
index-name row (``unix_timestamp,,,``), then float unix seconds (UTC) and values.

Conventions of this loader:

* **Entities are full node strings**, never split: ``PetSearch_AWS::ECS::Fargate``,
  ``PGSQL Query_remote``, ``lambda_step_readDDB`` and ``lambda_step_readDDB_AWS::Lambda`` are
  distinct entities. Columns are aligned by their (node, metric, statistic) names, never by
  position.
* **Metric names are** ``<metric>.<statistic>``: ``latency.Average``, ``latency.p90`` ...
  ``latency.p99``, ``requests.Sum``, ``availability.Average`` (latency in seconds, requests per
  5-minute period, availability in percent). A metric name never holds ``:`` so that the
  ``entity:metric`` keys of :meth:`Case.wide` split on their **last** ``:`` (node names hold
  ``::``). Empty cells (no requests in the period) are missing samples and have no row.
* **The normal baseline.** Where ``noissue/metrics.csv`` exists, its rows are included in
  ``case.metrics`` at their real times (recorded 4-5 months *after* the issues, so never
  "the history just before") and ``meta["normal_window"]`` gives their span with
  ``meta["baseline"] = "noissue"``. The temporal scenarios ship no baseline: there
  ``meta["baseline"] = "pre-trigger"`` and ``normal_window`` spans the case's own rows before the
  trigger row (one row), or is ``None`` when there is none. ``meta["anomalous_window"]`` spans
  the trigger row (the 300-s period holding ``target.timestamp``) to the last row;
  ``meta["case_window"]`` spans the case's 5 rows. ``case.window`` spans every metric row.
  Rankers select rows by these windows, not by "time before ``detected_at``".
* ``detected_at`` = ``target.timestamp`` (when the issue was triggered); ``meta["target"]`` keeps
  the SLO symptom a ranker may read (``node``, ``metric``, ``agg``).
* **Labels only in** ``truth``: ``root_cause.node`` is ``truth.service`` and ``truth.entity``;
  ``metadata.reproducibility.command`` (which names the faulty component) is kept only in
  ``truth.meta``. The upstream train/test split is part of the case id (issue numbers repeat
  across splits) and nowhere else; it is not a feature.
* **Fault kinds**: availability issues -> ``error``; latency issues -> ``delay``, except the
  DynamoDB request flood (``request-load``, an outside client saturating a shared table) ->
  ``neighbour``. The dataset's own name is ``truth.meta["fault"]``, the issue type
  ``truth.meta["issue_type"]``.
* **Topology** from ``graph.csv`` (``source="file"``): ``M[row][col] == 1`` means *row calls
  col* (caller -> callee, the X-Ray service map); a 1 on the diagonal is ignored. DynamoDB
  tables and SQL databases are ``database`` nodes, SQS/SNS ``queue`` nodes, the rest
  ``service``.
* Case id ``petshop/<scenario>/<split>/issue_<n>``; system ``PetShop``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aisre.case import Case, Topology, Truth
from aisre.datasets._common import check_time, find_case_folders, melt, numeric_block, read_json, read_numeric_csv
from aisre.datasets.batch import register_units
from aisre.datasets.registry import Loader, register
from aisre.errors import DataError

__all__ = ["FAULTS", "SYSTEM", "VERSION", "case_paths", "detect", "load", "load_case", "read_graph", "read_metrics"]

VERSION = "1"
"""Output version of this loader (part of the cache key)."""

SYSTEM = "PetShop"
"""The system every PetShop case runs on."""

FAULTS = {"delay": "delay", "error": "error", "request-load": "neighbour"}
"""PetShop fault names -> aisre fault kinds."""

_HEADER = ["microservice", "metric", "statistic"]
_ISSUE = re.compile(r"^issue_(\d+)$")


def _is_case(folder: Path) -> bool:
    return _ISSUE.match(folder.name) is not None and (folder / "metrics.csv").is_file() and (folder / "target.json").is_file()


def _sort_key(folder: Path) -> tuple[str, str, int]:
    m = _ISSUE.match(folder.name)
    return folder.parent.parent.name, folder.parent.name, int(m[1]) if m else -1


def case_paths(path: Path) -> list[Path]:
    """Return the PetShop case folders at or below *path* (root, scenario, split, case or case file), sorted."""
    return find_case_folders(path, "target.json", _is_case, _sort_key, depth=4)


def detect(path: Path) -> bool:
    """Return True when *path* is, or holds, a PetShop case folder."""
    return bool(case_paths(path))


# --------------------------------------------------------------------------- files


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return str(path.resolve()), st.st_mtime_ns, st.st_size


def read_metrics(path: Path) -> pd.DataFrame:
    """Return the long metrics table of one PetShop ``metrics.csv``.

    Raises:
        DataError: for a missing header row, an empty column name, duplicate columns, text or
            infinite values, or bad timestamps, naming the file and the column.
    """
    return _read_metrics(*_stamp(Path(path))).copy()


@lru_cache(maxsize=8)
def _read_metrics(resolved: str, _mtime: int, _size: int) -> pd.DataFrame:
    # Cached by path, mtime and size: every case of a scenario shares one noissue baseline.
    path = Path(resolved)
    frame = read_numeric_csv(path, header=[0, 1, 2], index_col=0, check_truncation=False)
    if not isinstance(frame.columns, pd.MultiIndex) or list(frame.columns.names) != _HEADER:
        raise DataError(
            "expected three header rows named microservice, metric, statistic", path=path, field="header",
            value=list(frame.columns.names) if isinstance(frame.columns, pd.MultiIndex) else None,
        )  # fmt: skip
    if frame.index.name not in (None, "unix_timestamp"):
        raise DataError("expected the index-name row 'unix_timestamp'", path=path, field="unix_timestamp", value=frame.index.name)
    first_line = 5 if frame.index.name else 4
    for col in frame.columns:
        if any(not str(part).strip() or str(part).startswith("Unnamed:") for part in col):
            raise DataError("empty column header", path=path, field="/".join(map(str, col)))
    dup = frame.columns.duplicated()
    if dup.any():
        raise DataError("duplicate column", path=path, field="/".join(map(str, frame.columns[dup][0])))
    times = check_time(frame.index.to_series(), path, field="unix_timestamp", first_line=first_line)
    values = numeric_block(frame, path, first_line=first_line)
    nodes = [str(c[0]) for c in frame.columns]
    names = [f"{c[1]}.{c[2]}" for c in frame.columns]
    return melt(times, values, nodes, names)


def read_graph(path: Path) -> Topology:
    """Return the call graph in a PetShop ``graph.csv`` (row calls column), source ``file``.

    Raises:
        DataError: for a matrix that is not square, whose row and column names differ, or that
            holds values other than 0 and 1.
    """
    nodes, edges = _read_graph(*_stamp(Path(path)))
    topo = Topology(source="file")
    for n in nodes:
        topo.add_node(n, _kind(n))
    for u, v in edges:
        topo.add_edge(u, v, "calls")
    return topo


@lru_cache(maxsize=8)
def _read_graph(resolved: str, _mtime: int, _size: int) -> tuple[list[str], list[tuple[str, str]]]:
    path = Path(resolved)
    frame = read_numeric_csv(path, index_col=0)
    rows = [str(r) for r in frame.index]
    cols = [str(c) for c in frame.columns]
    if len(set(rows)) != len(rows) or len(set(cols)) != len(cols):
        raise DataError("duplicate node name", path=path, field="node")
    if set(rows) != set(cols):
        extra = sorted(set(rows) ^ set(cols))[:3]
        raise DataError("row and column node names differ", path=path, field="node", value=extra)
    if any(not n.strip() or n.startswith("Unnamed:") or n == "nan" for n in rows):
        raise DataError("empty node name", path=path, field="node")
    values = numeric_block(frame[rows], path)  # columns aligned to the row order, by name
    if not np.isin(values, (0.0, 1.0)).all():
        r, c = np.argwhere(~np.isin(values, (0.0, 1.0)))[0]
        raise DataError("adjacency values must be 0 or 1", path=path, field=rows[c], row=int(r) + 2, value=float(values[r, c]))
    np.fill_diagonal(values, 0.0)
    src, dst = np.nonzero(values)
    return rows, [(rows[i], rows[j]) for i, j in zip(src, dst)]


def _kind(node: str) -> str:
    # X-Ray names a node `<resource>_<kind>`: `_remote` is a call to something X-Ray cannot see
    # into (an external URL, a load balancer) and `_client` the caller's side of a call; both
    # are endpoints of a call, not services that can be a root cause.
    if node.endswith("_remote") or node.endswith("_client"):
        return "endpoint"
    if "DynamoDB::Table" in node or node.endswith("Database::SQL") or "AWS::RDS" in node:
        return "database"
    if "SQS::Queue" in node or "SimpleNotificationService" in node:
        return "queue"
    return "service"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _target(path: Path) -> dict[str, Any]:
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise DataError("target.json must be a JSON object", path=path, field="target")
    target = doc.get("target")
    if not isinstance(target, dict):
        raise DataError("missing object 'target'", path=path, field="target")
    ts = _number(target.get("timestamp"))
    if ts is None:
        raise DataError("'target.timestamp' must be a finite number", path=path, field="target.timestamp", value=target.get("timestamp"))
    root = doc.get("root_cause")
    if root is not None and not isinstance(root, dict):
        raise DataError("'root_cause' must be an object", path=path, field="root_cause")
    node = (root or {}).get("node")
    if node is not None and (not isinstance(node, str) or not node):
        raise DataError("'root_cause.node' must be a non-empty string", path=path, field="root_cause.node", value=node)
    for key in ("node", "metric", "agg"):
        if target.get(key) is not None and not isinstance(target[key], str):
            raise DataError(f"'target.{key}' must be a string", path=path, field=f"target.{key}", value=target[key])
    meta = doc.get("metadata")
    command = None
    if isinstance(meta, dict) and isinstance(meta.get("reproducibility"), dict):
        cmd = meta["reproducibility"].get("command")
        command = cmd if isinstance(cmd, str) else None
    return {"timestamp": ts, "target": {k: target.get(k) for k in ("node", "metric", "agg")}, "node": node, "command": command}


def _fault(issue_type: str | None, command: str | None) -> str | None:
    """Return PetShop's own fault name from the issue type and the injection command."""
    if issue_type == "availability":
        return "error"
    if issue_type == "latency":
        return "request-load" if command and "dynamo_db_requests" in command else "delay"
    return None


# --------------------------------------------------------------------------- cases


def _window(times: pd.Series) -> list[float]:
    return [float(times.min()), float(times.max())]


def load_case(folder: Path) -> Case:
    """Return the Case of one PetShop issue folder, with its scenario's graph and baseline.

    Raises:
        DataError: for a malformed ``metrics.csv``, ``target.json``, ``graph.csv`` or baseline,
            naming the file and the field, or a folder that is not a PetShop case.
    """
    folder = Path(folder)
    if not _is_case(folder):
        raise DataError("not a PetShop case folder (issue_<n>/{metrics.csv,target.json})", path=folder)
    scenario_dir = folder.parent.parent
    scenario, split = scenario_dir.name, folder.parent.name
    target = _target(folder / "target.json")
    case_metrics = read_metrics(folder / "metrics.csv")
    if case_metrics.empty:
        raise DataError("no values in the file", path=folder / "metrics.csv")
    times = np.unique(case_metrics["time"].to_numpy())
    inject = target["timestamp"]
    k = int(np.searchsorted(times, inject, side="right")) - 1  # the row whose period holds the trigger
    case_window = [float(times[0]), float(times[-1])]
    anomalous_window = [float(times[max(k, 0)]), float(times[-1])]
    baseline_file = scenario_dir / "noissue" / "metrics.csv"
    parts = [case_metrics]
    if baseline_file.is_file():
        normal = read_metrics(baseline_file)
        if normal.empty:
            raise DataError("no values in the file", path=baseline_file)
        normal_window = _window(normal["time"])
        if normal_window[0] <= case_window[1] and case_window[0] <= normal_window[1]:
            raise DataError(f"baseline {normal_window} overlaps the case window {case_window}", path=baseline_file, field="unix_timestamp")
        parts.append(normal)
        baseline = "noissue"
    else:
        normal_window = [float(times[0]), float(times[k - 1])] if k >= 1 else None
        baseline = "pre-trigger"
    metrics = pd.concat(parts, ignore_index=True)
    if not metrics["time"].is_monotonic_increasing:
        metrics = metrics.sort_values("time", kind="stable", ignore_index=True)
    graph_file = scenario_dir / "graph.csv"
    topology = read_graph(graph_file) if graph_file.is_file() else None
    truth = None
    if target["node"] is not None:
        own = _fault(target["target"]["metric"], target["command"])
        truth = Truth(
            service=target["node"],
            fault=FAULTS.get(own) if own else None,
            inject_time=inject,
            entity=target["node"],
            meta={"node": target["node"], "fault": own, "issue_type": target["target"]["metric"], "command": target["command"]},
        )
    return Case(
        id=f"petshop/{scenario}/{split}/{folder.name}",
        system=SYSTEM,
        window=(float(metrics["time"].iloc[0]), float(metrics["time"].iloc[-1])),
        detected_at=inject,
        topology=topology,
        metrics=metrics,
        truth=truth,
        meta={
            "dataset": "petshop",
            "scenario": scenario,
            "baseline": baseline,
            "normal_window": normal_window,
            "anomalous_window": anomalous_window,
            "case_window": case_window,
            "step_seconds": 300.0,
            "target": target["target"],
        },
        source=str(folder),
    )


def load(path: Path) -> Iterator[Case]:
    """Yield the Case of every PetShop issue at or below *path*, sorted by scenario, split, issue.

    Raises:
        DataError: when *path* holds no PetShop case, or a case is malformed (the first bad
            case stops this generator; :func:`aisre.datasets.batch.load_all` goes on past it).
    """
    found = case_paths(Path(path))
    if not found:
        raise DataError("no PetShop case folder (issue_<n>/{metrics.csv,target.json}) here", path=path)
    for folder in found:
        yield load_case(folder)


register(Loader("petshop", detect, load, "PetShop: <scenario>/{graph.csv,noissue/}, <split>/issue_<n>/{metrics.csv,target.json}"))
register_units("petshop", case_paths, VERSION)
