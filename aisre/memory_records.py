"""The incident memory's tables and records: SQLAlchemy Core tables (created by
:class:`aisre.memory.Memory` when absent), the forms actions and causes may take, and one
incident as a line of the JSON-lines export."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from sqlalchemy import Column, Float, Index, Integer, LargeBinary, MetaData, String, Table, Text

from aisre.case import Action, Outcome, Step, Truth
from aisre.errors import DataError
from aisre.memory_fingerprint import DIM, FINGERPRINT_VERSION

__all__ = [
    "COUNTER",
    "EXPORT_SCHEMA",
    "FEEDBACK",
    "INCIDENTS",
    "METADATA",
    "action_records",
    "cause_of",
    "export_line",
    "feedback_dict",
    "import_line",
    "load_json_list",
    "outcome_of",
    "unit",
    "vec_bytes",
]

EXPORT_SCHEMA = "aisre.memory/1"
"""Schema written on every exported line."""

METADATA = MetaData()
"""The memory's tables."""
INCIDENTS = Table(
    "memory_incidents", METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(40), nullable=False),
    Column("case_id", String(512), nullable=False, default=""),
    Column("system", String(200), nullable=False, default=""),
    Column("created", Float, nullable=False),
    Column("version", Integer, nullable=False, default=FINGERPRINT_VERSION),
    Column("dim", Integer, nullable=False),
    Column("vector", LargeBinary, nullable=False),
    Column("fingerprint", Text, nullable=False),
    Column("suspect", String(300)),
    Column("suspect_fault", String(40)),
    Column("cause", String(300)),
    Column("cause_fault", String(40)),
    Column("status", String(20), nullable=False, default="unconfirmed"),
    Column("confirmed_by", String(200)),
    Column("confirmed_at", Float),
    Column("actions", Text, nullable=False, default="[]"),
    Column("outcome", Text),
    Column("postmortem", Text),
    Index("ix_memory_incidents_id", "id", unique=True),
)  # fmt: skip
FEEDBACK = Table(
    "memory_feedback", METADATA,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("incident_id", String(40), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("service", String(300)),
    Column("fault", String(40)),
    Column("by_name", String(200), nullable=False),
    Column("at_time", Float, nullable=False),
    Index("ix_memory_feedback_incident", "incident_id"),
)  # fmt: skip
COUNTER = Table(
    "memory_meta", METADATA,
    Column("key", String(40), primary_key=True),
    Column("value", Integer, nullable=False),
)  # fmt: skip


def unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32).reshape(-1)
    if v.shape[0] != DIM:
        raise DataError(f"fingerprint vector has {v.shape[0]} values; expected {DIM}", field="vector")
    n = float(np.linalg.norm(v))
    return v / n if n > 0 and math.isfinite(n) else np.zeros(DIM, dtype=np.float32)


def vec_bytes(v: np.ndarray) -> bytes:
    return np.ascontiguousarray(unit(v), dtype="<f4").tobytes()


def cause_of(confirmed: Any) -> tuple[str, str | None] | None:
    if confirmed is None:
        return None
    if isinstance(confirmed, Truth):
        return (confirmed.service, confirmed.fault)
    if isinstance(confirmed, str) and confirmed:
        return (confirmed, None)
    if isinstance(confirmed, (tuple, list)) and len(confirmed) == 2 and isinstance(confirmed[0], str) and confirmed[0]:
        return (confirmed[0], None if confirmed[1] is None else str(confirmed[1]))
    raise DataError("confirmed must be a Truth, (service, fault) or a service name", field="confirmed", value=confirmed)


def action_records(items: Iterable[Any]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        ok: bool | None = None
        if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], (Action, Step)):
            item, ok = item[0], (item[1].ok if isinstance(item[1], Outcome) else item[1])
        if isinstance(item, Step):
            item = item.action
        if isinstance(item, Action):
            out.append({"name": item.name, "target": item.target, "ok": None if ok is None else bool(ok)})
        elif isinstance(item, (tuple, list)) and len(item) == 3 and all(isinstance(x, str) for x in item[:2]):
            out.append({"name": item[0], "target": item[1], "ok": None if item[2] is None else bool(item[2])})
        elif isinstance(item, dict) and isinstance(item.get("name"), str) and isinstance(item.get("target"), str):
            out.append({"name": item["name"], "target": item["target"], "ok": None if item.get("ok") is None else bool(item["ok"])})
        else:
            raise DataError("an action must be an Action, Step, (action, ok), (name, target, ok) or a dict", field="actions",
                            value=item)
    return out


def outcome_of(outcome: Any) -> str | None:
    if outcome is None:
        return None
    if isinstance(outcome, Outcome):
        return "mitigated" if outcome.ok else "failed"
    if isinstance(outcome, bool):
        return "mitigated" if outcome else "failed"
    return str(outcome)


def load_json_list(text: Any) -> list[dict[str, Any]]:
    try:
        doc = json.loads(text or "[]")
    except (json.JSONDecodeError, TypeError) as exc:
        raise DataError(f"actions are not valid JSON: {exc}", field="actions") from exc
    if not isinstance(doc, list) or not all(isinstance(a, dict) for a in doc):
        raise DataError("actions must be a JSON list of objects", field="actions")
    return doc


def export_line(row: dict[str, Any], feedback: list[dict[str, Any]]) -> dict[str, Any]:
    vec = np.frombuffer(bytes(row.pop("vector") or b""), dtype="<f4")
    row.pop("seq", None)
    try:
        parts: Any = json.loads(row["fingerprint"])
    except (json.JSONDecodeError, TypeError):
        parts = row["fingerprint"]  # exported as found; the importer reports it
    try:
        actions: Any = json.loads(row["actions"] or "[]")
    except (json.JSONDecodeError, TypeError):
        actions = row["actions"]
    return {"schema": EXPORT_SCHEMA, **row, "fingerprint": parts, "actions": actions,
            "vector": [round(float(x), 7) if math.isfinite(x) else None for x in vec], "feedback": feedback}


_REQUIRED = ("id", "vector", "fingerprint")


def import_line(text: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"not valid JSON ({exc.msg})") from exc
    if not isinstance(doc, dict):
        raise DataError("not a JSON object")
    if doc.get("schema") != EXPORT_SCHEMA:
        raise DataError(f"schema {doc.get('schema')!r} is not {EXPORT_SCHEMA}", field="schema")
    for key in _REQUIRED:
        if key not in doc:
            raise DataError(f"missing {key!r}", field=key)
    iid = doc["id"]
    if not isinstance(iid, str) or not iid or len(iid) > 40:
        raise DataError("bad incident id", field="id", value=iid)
    vec = doc["vector"]
    if not isinstance(vec, list) or len(vec) != DIM or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in vec):
        raise DataError(f"vector must be {DIM} numbers", field="vector")
    arr = np.asarray(vec, dtype=np.float32)
    if not np.isfinite(arr).all():
        raise DataError("vector holds NaN or infinity", field="vector")
    if not isinstance(doc["fingerprint"], dict):
        raise DataError("fingerprint must be an object", field="fingerprint")
    actions = doc.get("actions") or []
    actions = action_records(actions) if isinstance(actions, list) else action_records([actions])
    status = doc.get("status") or "unconfirmed"
    if status not in ("unconfirmed", "confirmed", "corrected"):
        raise DataError("unknown status", field="status", value=status)

    def opt(key: str) -> str | None:
        v = doc.get(key)
        return None if v is None else str(v)

    created = doc.get("created")
    row = {
        "id": iid, "case_id": str(doc.get("case_id") or ""), "system": str(doc.get("system") or ""),
        "created": float(created) if isinstance(created, (int, float)) and math.isfinite(created) else time.time(),
        "version": int(doc.get("version") or FINGERPRINT_VERSION), "dim": DIM, "vector": vec_bytes(arr),
        "fingerprint": json.dumps(doc["fingerprint"], sort_keys=True), "suspect": opt("suspect"),
        "suspect_fault": opt("suspect_fault"), "cause": opt("cause"), "cause_fault": opt("cause_fault"),
        "status": status, "confirmed_by": opt("confirmed_by"),
        "confirmed_at": float(doc["confirmed_at"]) if isinstance(doc.get("confirmed_at"), (int, float)) else None,
        "actions": json.dumps(actions), "outcome": opt("outcome"), "postmortem": opt("postmortem"),
    }  # fmt: skip
    fb = []
    for f in doc.get("feedback") or []:
        if isinstance(f, dict) and isinstance(f.get("kind"), str) and isinstance(f.get("by"), str):
            at = f.get("at")
            fb.append({"incident_id": iid, "kind": f["kind"], "service": f.get("service"), "fault": f.get("fault"),
                       "by_name": f["by"], "at_time": float(at) if isinstance(at, (int, float)) else 0.0})
    return row, fb


def feedback_dict(mapping: Any) -> dict[str, Any]:
    """Return one ``memory_feedback`` row as the export and :meth:`Memory.get` show it:
    ``{"kind", "service", "fault", "by", "at"}``."""
    return {"kind": mapping["kind"], "service": mapping["service"], "fault": mapping["fault"],
            "by": mapping["by_name"], "at": mapping["at_time"]}
