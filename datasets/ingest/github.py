"""GitHub ``deployment`` and ``deployment_status`` webhook payloads to deploy events and
:class:`aisre.case.Change` records.

Rules (see ``shared/formats/README.md``, section 6):

* Which event: the ``X-GitHub-Event`` header when given (``event=``), else sniffed: a body
  with ``deployment_status`` is a status, one with only ``deployment`` a deployment.
* Service (GitHub has no such field): a ``service`` (or ``app``) key in
  ``deployment.payload`` (an object, or a JSON string of one), else ``repository.name``.
  The environment is not a service (``production``); it goes to the attributes.
* Time: ``deployment_status.created_at`` for a status, ``deployment.created_at`` for a
  deployment (never the delivery time).
* One :class:`Change` per deployment, id ``github-deployment-<deployment.id>``, time of the
  deployment, author ``deployment.creator.login`` else ``sender.login``, revision ``sha``
  (else ``ref``). One events row (kind ``deploy``) per payload: reason ``created`` for a
  deployment, the status ``state`` (success, failure, in_progress...) for a status.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pandas as pd

from aisre.case import EVENT_COLUMNS, Change
from aisre.datasets.ingest import _common as c
from aisre.errors import DataError

__all__ = ["parse_github"]

_EVENTS = ("deployment", "deployment_status")


def parse_github(
    doc: c.Doc,
    *,
    event: str | None = None,
    path: str | os.PathLike[str] | None = None,
) -> tuple[pd.DataFrame, list[Change]]:
    """Return ``(events, changes)`` for one webhook payload or a JSON array of payloads.

    *event* is the ``X-GitHub-Event`` header (``deployment`` or ``deployment_status``) where
    it was kept. Changes are returned once per deployment id, in first-seen order.

    Raises:
        DataError: for a payload without a ``deployment`` object, an unknown *event*, or a
            missing or malformed field (``deployment.created_at``).
    """
    if event is not None and event not in _EVENTS:
        raise DataError(f"event must be one of {', '.join(_EVENTS)}", field="event", value=event)
    data, name = c.load_doc(doc, path)
    payloads = [(f"[{i}].", p) for i, p in enumerate(data)] if isinstance(data, list) else [("", data)]
    rows: list[dict[str, Any]] = []
    changes: dict[str, Change] = {}
    for prefix, payload in payloads:
        row, change = _payload(payload, prefix, name, event)
        rows.append(row)
        changes.setdefault(change.id, change)
    events = c.frame(rows, EVENT_COLUMNS).sort_values("time", kind="stable", ignore_index=True)
    return events, list(changes.values())


def _payload(data: Any, prefix: str, path: str | None, event: str | None) -> tuple[dict[str, Any], Change]:
    body = c.obj(data, prefix.rstrip(".") or "payload", path)
    if "deployment" not in body:
        raise DataError("not a GitHub deployment webhook: no 'deployment'", path=path, field=f"{prefix}deployment")
    dep = c.obj(body["deployment"], f"{prefix}deployment", path)
    kind = event or ("deployment_status" if "deployment_status" in body else "deployment")
    repo = c.obj(body.get("repository"), f"{prefix}repository", path, optional=True)
    sender = c.obj(body.get("sender"), f"{prefix}sender", path, optional=True)
    creator = c.obj(dep.get("creator"), f"{prefix}deployment.creator", path, optional=True)
    dep_id = c.text(dep.get("id"), f"{prefix}deployment.id", path)
    dep_time = c.rfc3339(dep.get("created_at"), f"{prefix}deployment.created_at", path)
    if dep_time is None:
        raise DataError("created_at is the zero time", path=path, field=f"{prefix}deployment.created_at")
    sha = c.text(dep.get("sha"), f"{prefix}deployment.sha", path, optional=True)
    ref = c.text(dep.get("ref"), f"{prefix}deployment.ref", path, optional=True)
    environment = c.text(dep.get("environment"), f"{prefix}deployment.environment", path, optional=True)
    task = c.text(dep.get("task"), f"{prefix}deployment.task", path, optional=True) or "deploy"
    author = c.text(creator.get("login") or sender.get("login"), f"{prefix}sender.login", path, optional=True)
    service = _service(dep.get("payload"), repo)
    described = c.text(dep.get("description"), f"{prefix}deployment.description", path, optional=True)
    summary = f"{task} {ref or '?'}@{(sha or '?')[:7]} to {environment or '?'}"
    change = Change(
        id=f"github-deployment-{dep_id}",
        service=service,
        time=float(dep_time),
        author=author,
        revision=sha or ref,
        files=[],
        description=described or summary,
    )
    attrs: dict[str, Any] = {
        "source": "github",
        "event": kind,
        "deployment_id": dep_id,
        "repository": repo.get("full_name"),
        "environment": environment,
        "sha": sha,
        "ref": ref,
        "author": author,
    }
    if kind == "deployment_status":
        st = c.obj(body.get("deployment_status"), f"{prefix}deployment_status", path)
        time = c.rfc3339(st.get("created_at"), f"{prefix}deployment_status.created_at", path)
        reason = c.text(st.get("state"), f"{prefix}deployment_status.state", path) or ""
        attrs["status_id"] = st.get("id")
        for key in ("target_url", "log_url", "environment_url"):
            if st.get(key):
                attrs[key] = st[key]
        note = c.text(st.get("description"), f"{prefix}deployment_status.description", path, optional=True)
        message = f"{summary}: {reason}" + (f" ({note})" if note else "")
    else:
        time, reason, message = dep_time, "created", summary + (f": {described}" if described else "")
    row = {
        "time": time if time is not None else dep_time,
        "entity": service,
        "kind": "deploy",
        "reason": reason,
        "message": message,
        "attributes": c.json_text({k: v for k, v in attrs.items() if v is not None and not isinstance(v, (Mapping, list))}),
    }
    return row, change


def _service(payload: Any, repo: Mapping[str, Any]) -> str | None:
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):
            payload = None
    if isinstance(payload, Mapping):
        for key in ("service", "app"):
            if isinstance(payload.get(key), str) and payload[key]:
                return payload[key]
    name = repo.get("name")
    if isinstance(name, (str, int)) and name != "":
        return str(name)
    full = repo.get("full_name")
    return str(full).rsplit("/", 1)[-1] if isinstance(full, str) and full else None
