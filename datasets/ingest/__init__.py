"""Ingestion of live formats into the shared model.

One module per format, each a function from a JSON document (parsed, text or a path) to
model objects: Alertmanager webhooks -> :class:`~aisre.case.Alert`, Prometheus query
responses and OTLP metrics -> long metrics, OTLP and Jaeger traces -> spans, OTLP logs ->
logs, ``kubectl get events -o json`` and GitHub deployment webhooks -> events (and
:class:`~aisre.case.Change`). :func:`detect_format` tells the formats apart and
:func:`ingest_files` merges any mix of files into one :class:`~aisre.case.Case`.

Every parser raises :class:`aisre.errors.DataError` naming the file and the field on bad
input, and nothing else.
"""

from __future__ import annotations

import hashlib
import numpy as np
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from aisre.case import Alert, Case, Change, empty_table, topology_from_spans
from aisre.datasets.ingest._common import read_json, workload_from_pod
from aisre.datasets.ingest.alertmanager import alert_fingerprint, alert_to_webhook, dedupe_alerts, parse_alertmanager
from aisre.datasets.ingest.github import parse_github
from aisre.datasets.ingest.jaeger import parse_jaeger
from aisre.datasets.ingest.k8s_events import parse_k8s_events
from aisre.datasets.ingest.otlp import dedupe_spans, parse_otlp_logs, parse_otlp_metrics, parse_otlp_traces
from aisre.datasets.ingest.prometheus import parse_query_range
from aisre.errors import DataError

__all__ = [
    "FORMATS",
    "alert_fingerprint",
    "alert_to_webhook",
    "dedupe_alerts",
    "dedupe_spans",
    "detect_format",
    "ingest_files",
    "parse_alertmanager",
    "parse_github",
    "parse_jaeger",
    "parse_k8s_events",
    "parse_otlp_logs",
    "parse_otlp_metrics",
    "parse_otlp_traces",
    "parse_query_range",
    "read_json",
    "workload_from_pod",
]

FORMATS = (
    "alertmanager", "prometheus", "otlp-traces", "otlp-logs", "otlp-metrics", "jaeger",
    "k8s-events", "github-deployment", "github-deployment-status",
)  # fmt: skip
"""The formats :func:`detect_format` recognises, in the order it tries them."""


def _detect_one(doc: Any) -> str | None:
    if not isinstance(doc, Mapping):
        return None
    if isinstance(doc.get("alerts"), list):
        return "alertmanager"
    data = doc.get("data")
    if isinstance(data, Mapping) and "resultType" in data:
        return "prometheus"
    if doc.get("status") == "error" and "errorType" in doc:
        return "prometheus"
    body = doc["result"] if isinstance(doc.get("result"), Mapping) else doc
    for key, name in (("resourceSpans", "otlp-traces"), ("resourceLogs", "otlp-logs"), ("resourceMetrics", "otlp-metrics")):
        if key in body:
            return name
    if isinstance(data, list) and all(isinstance(t, Mapping) and "spans" in t for t in data):
        return "jaeger"
    if isinstance(doc.get("spans"), list) and ("traceID" in doc or "processes" in doc):
        return "jaeger"
    if doc.get("kind") in ("List", "EventList") and isinstance(doc.get("items"), list):
        items = doc["items"]
        if all(isinstance(e, Mapping) and (e.get("kind") == "Event" or "involvedObject" in e or "regarding" in e) for e in items):
            return "k8s-events"
    if doc.get("kind") == "Event" and ("involvedObject" in doc or "regarding" in doc):
        return "k8s-events"
    if isinstance(doc.get("deployment"), Mapping):
        return "github-deployment-status" if "deployment_status" in doc else "github-deployment"
    return None


def detect_format(doc: Any, *, path: str | os.PathLike[str] | None = None) -> str:
    """Return which of :data:`FORMATS` a parsed JSON document is.

    A JSON array (several payloads, or JSON Lines) is the format of its items, which must
    all agree; an array of Events is ``k8s-events`` and an array of Jaeger traces ``jaeger``.

    Raises:
        DataError: for a document of none of these formats (the message lists those tried),
            or an empty or mixed array.
    """
    tried = ", ".join(FORMATS)
    if isinstance(doc, list):
        if not doc:
            raise DataError(f"an empty array is none of the known formats ({tried})", path=path)
        kinds = {_detect_one(d) for d in doc}
        if len(kinds) == 1 and None not in kinds:
            return kinds.pop()  # type: ignore[return-value]
        if all(isinstance(d, Mapping) and ("involvedObject" in d or "regarding" in d) for d in doc):
            return "k8s-events"
        if all(isinstance(d, Mapping) and isinstance(d.get("spans"), list) for d in doc):
            return "jaeger"
        raise DataError(f"an array whose items are not all of one known format (tried {tried})", path=path)
    found = _detect_one(doc)
    if found is None:
        raise DataError(f"not a recognised format (tried {tried})", path=path)
    return found


def ingest_files(
    paths: Iterable[str | os.PathLike[str]],
    *,
    case_id: str | None = None,
    received_at: float | None = None,
) -> Case:
    """Return one :class:`Case` merging any mix of ingestible files.

    Each file's format is detected; alerts are deduplicated (:func:`dedupe_alerts`), spans
    too (:func:`dedupe_spans`), changes are kept once per id, tables are sorted by time. The
    window spans every time in the data; ``detected_at`` is the first alert's start; the
    topology is recovered from the spans (``None`` when they show no call). ``meta`` records
    each file's format and any Prometheus warnings. *case_id* defaults to ``ingest-`` plus a
    hash of the file paths.

    Raises:
        DataError: for a missing, unreadable or unrecognised file, or bad data in one (the
            error names the file and the field).
    """
    files = [Path(p) for p in paths]
    if not files:
        raise DataError("no files to ingest")
    tables: dict[str, list[pd.DataFrame]] = {"metrics": [], "logs": [], "spans": [], "events": []}
    alerts: list[Alert] = []
    changes: dict[str, Change] = {}
    meta: dict[str, Any] = {"files": {}, "warnings": []}
    for file in files:
        doc = read_json(file)
        fmt = detect_format(doc, path=file)
        meta["files"][str(file)] = fmt
        if fmt == "alertmanager":
            alerts.extend(parse_alertmanager(doc, received_at=received_at, path=file))
        elif fmt == "prometheus":
            frame = parse_query_range(doc, path=file)
            meta["warnings"].extend(f"{file}: {w}" for w in frame.attrs.get("warnings", []))
            tables["metrics"].append(frame)
        elif fmt == "otlp-traces":
            tables["spans"].append(parse_otlp_traces(doc, path=file))
        elif fmt == "otlp-logs":
            tables["logs"].append(parse_otlp_logs(doc, path=file))
        elif fmt == "otlp-metrics":
            tables["metrics"].append(parse_otlp_metrics(doc, path=file))
        elif fmt == "jaeger":
            tables["spans"].append(parse_jaeger(doc, path=file))
        elif fmt == "k8s-events":
            tables["events"].append(parse_k8s_events(doc, path=file))
        else:
            events, found = parse_github(doc, path=file)
            tables["events"].append(events)
            for change in found:
                changes.setdefault(change.id, change)
    merged = {name: _concat(name, frames) for name, frames in tables.items()}
    merged["spans"] = dedupe_spans(merged["spans"])
    alerts = dedupe_alerts(alerts)
    times = _times(merged, alerts, list(changes.values()))
    window = (float(times.min()), float(times.max())) if len(times) else (0.0, 0.0)
    if case_id is None:
        digest = hashlib.sha1("\n".join(sorted(str(f.resolve()) for f in files)).encode()).hexdigest()[:10]
        case_id = f"ingest-{digest}"
    return Case(
        id=case_id,
        window=window,
        detected_at=min((a.starts_at for a in alerts), default=None),
        topology=topology_from_spans(merged["spans"]),
        alerts=alerts,
        changes=sorted(changes.values(), key=lambda ch: ch.time),
        meta=meta,
        source="ingest",
        **merged,
    )


def _concat(name: str, frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return empty_table(name)
    out = pd.concat(frames, ignore_index=True)
    out.attrs = {}
    key = "start" if name == "spans" else "time"
    return out.sort_values(key, kind="stable", ignore_index=True)


def _times(tables: Mapping[str, pd.DataFrame], alerts: list[Alert], changes: list[Change]) -> pd.Series:
    parts = [
        tables["metrics"]["time"],
        tables["logs"]["time"],
        tables["events"]["time"],
        tables["spans"]["start"],
        tables["spans"]["start"] + tables["spans"]["duration"].fillna(0.0),
        pd.Series([a.starts_at for a in alerts] + [a.ends_at for a in alerts if a.ends_at is not None], dtype="float64"),
        pd.Series([ch.time for ch in changes], dtype="float64"),
    ]
    times = pd.concat([p.astype("float64") for p in parts], ignore_index=True)
    return times[np.isfinite(times.to_numpy())]
