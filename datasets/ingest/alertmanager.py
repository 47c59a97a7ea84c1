"""Alertmanager webhook payloads (``webhook_config``, version 4) to :class:`aisre.case.Alert`.

Tolerated variants: Grafana unified alerting (``"version": "1"`` plus extra fields), legacy
version 3 (integer ``groupKey``), old payloads without per-alert ``status`` or
``fingerprint``, and a JSON array of payloads (several notifications in one file).

Rules (see ``shared/formats/README.md``, section 1):

* Times are RFC 3339 with 0-9 fractional digits and ``Z`` or an offset; Go's zero time
  (``0001-01-01T00:00:00Z``) as ``endsAt`` means "no end" and becomes ``None``.
* The per-alert ``status`` wins over the group's. Without one, an alert is resolved when
  the whole group is, or when its ``endsAt`` is set and not after ``received_at``.
* Identity: ``fingerprint`` when present, else Alertmanager's own label fingerprint
  (FNV-1a 64 over the sorted label names and values), so a computed fingerprint matches the
  one Alertmanager would have sent.
* Service: the first label found in :data:`SERVICE_ORDER`, falling back to ``commonLabels``.
* Severity: ``labels.severity`` lower-cased, default ``"warning"``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from aisre.case import Alert
from aisre.datasets.ingest import _common as c
from aisre.errors import DataError

__all__ = ["SERVICE_ORDER", "alert_fingerprint", "alert_to_webhook", "dedupe_alerts", "parse_alertmanager"]

SERVICE_ORDER = ("service", "app", "app_kubernetes_io_name", "job", "k8s", "instance", "host")
"""Where an alert's service comes from, first match wins; ``k8s`` is the workload from
``deployment``, else the pod name with its Kubernetes suffixes stripped, else ``container``;
``host`` (node-exporter style alerts) comes last."""

ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero time: what Alertmanager sends as ``endsAt`` for an alert with no end."""

_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_MASK = 0xFFFFFFFFFFFFFFFF


def alert_fingerprint(labels: Mapping[str, str]) -> str:
    """Return Alertmanager's fingerprint of a label set: 16 hex digits of FNV-1a 64 over the
    sorted label names and values, each followed by the byte 0xff."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode("utf-8") + b"\xff":
                h = ((h ^ byte) * _FNV_PRIME) & _MASK
    return f"{h:016x}"


def parse_alertmanager(
    doc: c.Doc,
    *,
    received_at: float | None = None,
    path: str | os.PathLike[str] | None = None,
) -> list[Alert]:
    """Return the alerts of one webhook payload (or a JSON array of payloads), in order.

    *doc* is a parsed payload, JSON text or a path. *received_at* (unix seconds, default now,
    as Alertmanager itself judges) decides the status of alerts that carry none. *path* names
    the file in errors when *doc* was already read. Duplicates are kept: see
    :func:`dedupe_alerts`.

    Raises:
        DataError: for an unreadable file, invalid JSON, a payload without an ``alerts``
            array, or a bad field, naming it (``alerts[3].startsAt``).
    """
    data, name = c.load_doc(doc, path)
    now = time.time() if received_at is None else float(received_at)
    if isinstance(data, list):
        out: list[Alert] = []
        for i, payload in enumerate(data):
            out.extend(_payload(payload, f"[{i}].", name, now))
        return out
    return _payload(data, "", name, now)


def _payload(data: Any, prefix: str, path: str | None, now: float) -> list[Alert]:
    payload = c.obj(data, prefix.rstrip(".") or "payload", path)
    if "alerts" not in payload:
        raise DataError("not an Alertmanager webhook payload: no 'alerts' array", path=path, field=f"{prefix}alerts")
    alerts = c.arr(payload["alerts"], f"{prefix}alerts", path)
    common = c.str_map(payload.get("commonLabels"), f"{prefix}commonLabels", path)
    group_status = payload.get("status")
    if group_status is not None and group_status not in ("firing", "resolved"):
        raise DataError("status must be firing or resolved", path=path, field=f"{prefix}status", value=group_status)
    return [_alert(a, f"{prefix}alerts[{i}]", path, common, group_status, now) for i, a in enumerate(alerts)]


def _alert(data: Any, where: str, path: str | None, common: dict[str, str], group_status: Any, now: float) -> Alert:
    a = c.obj(data, where, path)
    labels = c.str_map(a.get("labels"), f"{where}.labels", path)
    annotations = c.str_map(a.get("annotations"), f"{where}.annotations", path)
    starts = c.rfc3339(a.get("startsAt"), f"{where}.startsAt", path)
    if starts is None:
        raise DataError("startsAt is the zero time", path=path, field=f"{where}.startsAt", value=a.get("startsAt"))
    ends = c.rfc3339(a.get("endsAt"), f"{where}.endsAt", path, optional=True)
    status = a.get("status")
    if status is None:
        if group_status == "resolved" or (ends is not None and ends <= now):
            status = "resolved"
        else:
            status = "firing"
    elif status not in ("firing", "resolved"):
        raise DataError("status must be firing or resolved", path=path, field=f"{where}.status", value=status)
    fingerprint = c.text(a.get("fingerprint"), f"{where}.fingerprint", path, optional=True) or alert_fingerprint(labels)
    service, _ = c.entity_from_labels(labels, SERVICE_ORDER)
    if service is None:
        service, _ = c.entity_from_labels(common, SERVICE_ORDER)
    severity = (labels.get("severity") or common.get("severity") or "warning").strip().lower() or "warning"
    return Alert(
        fingerprint=fingerprint,
        labels=labels,
        annotations=annotations,
        status=status,
        starts_at=float(starts),
        ends_at=ends,
        service=service,
        severity=severity,
    )


def dedupe_alerts(alerts: Iterable[Alert]) -> list[Alert]:
    """Return *alerts* without re-sends: the first of each (fingerprint, starts_at, status),
    in order.

    Alertmanager re-sends every ``repeat_interval`` and HA replicas deliver twice, so one
    alert arrives many times. Two alerts that share a fingerprint but not their labels
    (hand-made payloads do this) are different alerts and are both kept.
    """
    seen: dict[tuple[str, float, str], list[dict[str, str]]] = {}
    out: list[Alert] = []
    for alert in alerts:
        key = (alert.fingerprint, alert.starts_at, alert.status)
        kept = seen.setdefault(key, [])
        if alert.labels in kept:
            continue
        kept.append(alert.labels)
        out.append(alert)
    return out


def format_time(t: float | None) -> str:
    """Return unix seconds as RFC 3339 UTC with microseconds; ``None`` gives the zero time."""
    if t is None:
        return ZERO_TIME
    return datetime.fromtimestamp(float(t), tz=UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def alert_to_webhook(
    alerts: Sequence[Alert],
    *,
    receiver: str = "aisre",
    group_labels: Mapping[str, str] | None = None,
    external_url: str = "",
    group_key: str | None = None,
    truncated_alerts: int = 0,
) -> dict[str, Any]:
    """Return a version 4 webhook payload carrying *alerts*, as Alertmanager would send it.

    The group is ``firing`` while any alert fires; ``commonLabels`` and ``commonAnnotations``
    are what all alerts share. An alert's ``service`` and ``severity`` are written as labels
    where its labels would not give them back, so :func:`parse_alertmanager` round-trips
    (times to the microsecond).
    """
    rendered = [_render(a) for a in alerts]
    label_sets = [r["labels"] for r in rendered]
    group = dict(group_labels or {})
    return {
        "version": "4",
        "groupKey": group_key if group_key is not None else f"{{}}:{c.render_labels(group)}",
        "truncatedAlerts": int(truncated_alerts),
        "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
        "receiver": receiver,
        "groupLabels": group,
        "commonLabels": _common_items(label_sets),
        "commonAnnotations": _common_items([r["annotations"] for r in rendered]),
        "externalURL": external_url,
        "alerts": rendered,
    }


def _render(alert: Alert) -> dict[str, Any]:
    labels = dict(alert.labels)
    if alert.service is not None and c.entity_from_labels(labels, SERVICE_ORDER)[0] != alert.service:
        labels["service"] = alert.service
    if (labels.get("severity") or "warning").strip().lower() != alert.severity:
        labels["severity"] = alert.severity
    return {
        "status": alert.status,
        "labels": labels,
        "annotations": dict(alert.annotations),
        "startsAt": format_time(alert.starts_at),
        "endsAt": format_time(alert.ends_at),
        "generatorURL": "",
        "fingerprint": alert.fingerprint,
    }


def _common_items(maps: list[dict[str, str]]) -> dict[str, str]:
    if not maps:
        return {}
    first = maps[0]
    return {k: v for k, v in first.items() if all(m.get(k) == v for m in maps[1:])}
