"""``kubectl get events -o json`` to the model's events frame.

Accepted shapes: a ``List`` or ``EventList`` of core/v1 Events, a single Event, a JSON
array of Events, and events.k8s.io/v1 Events (``regarding``, ``note``,
``deprecated*`` fields, ``series``).

Rules (see ``shared/formats/README.md``, section 5):

* Time: the last occurrence: ``lastTimestamp`` (``deprecatedLastTimestamp``), else
  ``series.lastObservedTime``, else ``eventTime``, else ``firstTimestamp``, else
  ``metadata.creationTimestamp``. Rows are sorted by time (the API lists by name).
* Entity: the involved object's name mapped to its workload: a Deployment, StatefulSet,
  DaemonSet, HPA or Node by its name; a ReplicaSet with its pod-template hash stripped; a
  Pod with its Kubernetes suffixes stripped (``checkout-6d8f7c9b54-x7k2p`` -> ``checkout``;
  see :func:`workload_from_pod`).
* Kind: ``scale`` for ``ScalingReplicaSet`` and ``SuccessfulRescale``, else ``k8s``.
* Attributes (JSON text): namespace, object kind and name, uid, field path, count, type
  (Normal/Warning), first time, source component and host.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from aisre.case import EVENT_COLUMNS
from aisre.datasets.ingest import _common as c
from aisre.errors import DataError

__all__ = ["SCALE_REASONS", "object_entity", "parse_k8s_events"]

SCALE_REASONS = frozenset({"ScalingReplicaSet", "SuccessfulRescale"})
"""Event reasons that record a change of replica count: kind ``scale``."""


def object_entity(kind: str | None, name: str) -> str:
    """Return the service an involved object belongs to (see the module's rules)."""
    if kind == "Pod":
        return c.workload_from_pod(name)
    if kind == "ReplicaSet":
        return c.workload_from_replicaset(name)
    return name


def parse_k8s_events(doc: c.Doc, *, path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Return the Events of a ``kubectl get events -o json`` document as the events frame,
    sorted by time.

    Raises:
        DataError: for a document that is not a list of Events, or an Event without a
            subject, a reason or any timestamp, or with a malformed one, naming the field
            (``items[3].lastTimestamp``).
    """
    data, name = c.load_doc(doc, path)
    if isinstance(data, list):
        items = [(f"[{i}]", e) for i, e in enumerate(data)]
    else:
        body = c.obj(data, "document", name)
        if "items" in body:
            items = [(f"items[{i}]", e) for i, e in enumerate(c.arr(body["items"], "items", name, optional=True))]
        elif body.get("kind") == "Event" or "involvedObject" in body or "regarding" in body:
            items = [("", body)]
        else:
            raise DataError("not Kubernetes events: no 'items' list and not an Event", path=name, field="items")
    rows = [_event(e, where, name) for where, e in items]
    out = c.frame(rows, EVENT_COLUMNS)
    return out.sort_values("time", kind="stable", ignore_index=True)


def _event(data: Any, where: str, path: str | None) -> dict[str, Any]:
    prefix = f"{where}." if where else ""
    e = c.obj(data, where or "event", path)
    meta = c.obj(e.get("metadata"), f"{prefix}metadata", path, optional=True)
    subject_key = "involvedObject" if "involvedObject" in e else "regarding"
    subject = c.obj(e.get(subject_key), f"{prefix}{subject_key}", path)
    obj_name = c.text(subject.get("name"), f"{prefix}{subject_key}.name", path)
    obj_kind = c.text(subject.get("kind"), f"{prefix}{subject_key}.kind", path, optional=True)
    reason = c.text(e.get("reason"), f"{prefix}reason", path, optional=True) or ""
    message = c.text(e.get("message", e.get("note")), f"{prefix}message", path, optional=True) or ""
    series = c.obj(e.get("series"), f"{prefix}series", path, optional=True)
    time = None
    for key, value in (
        ("lastTimestamp", e.get("lastTimestamp")),
        ("deprecatedLastTimestamp", e.get("deprecatedLastTimestamp")),
        ("series.lastObservedTime", series.get("lastObservedTime")),
        ("eventTime", e.get("eventTime")),
        ("firstTimestamp", e.get("firstTimestamp")),
        ("deprecatedFirstTimestamp", e.get("deprecatedFirstTimestamp")),
        ("metadata.creationTimestamp", meta.get("creationTimestamp")),
    ):
        time = c.rfc3339(value, f"{prefix}{key}", path, optional=True)
        if time is not None:
            break
    if time is None:
        raise DataError("an Event needs lastTimestamp, eventTime, firstTimestamp or metadata.creationTimestamp", path=path, field=f"{prefix}lastTimestamp")
    first = c.rfc3339(e.get("firstTimestamp", e.get("deprecatedFirstTimestamp")), f"{prefix}firstTimestamp", path, optional=True)
    count = c.nanos(e.get("count", e.get("deprecatedCount", series.get("count"))), f"{prefix}count", path)
    source = c.obj(e.get("source", e.get("deprecatedSource")), f"{prefix}source", path, optional=True)
    attrs = {
        "namespace": subject.get("namespace") or meta.get("namespace"),
        "object_kind": obj_kind,
        "object_name": obj_name,
        "uid": meta.get("uid"),
        "field_path": subject.get("fieldPath"),
        "count": count if count is not None else 1,
        "type": e.get("type"),
        "first_time": first,
        "component": source.get("component") or e.get("reportingComponent") or e.get("reportingController") or None,
        "host": source.get("host") or None,
    }
    return {
        "time": time,
        "entity": object_entity(obj_kind, obj_name or ""),
        "kind": "scale" if reason in SCALE_REASONS else "k8s",
        "reason": reason,
        "message": message,
        "attributes": c.json_text({k: v for k, v in attrs.items() if v is not None and not isinstance(v, (Mapping, list))}),
    }
