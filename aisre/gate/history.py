"""Incident history of past changes, kept in the embedded store (table ``gate_history``).

One row per (change, service): when it deployed, whether it caused an incident, and the files it
touched. :func:`record_outcome` writes rows; :func:`history_features` reads what the gate needs:

* each service's **change-failure rate** with a Beta(:data:`PRIOR_FAILURES`,
  :data:`PRIOR_SUCCESSES`) prior, so a service with no history sits at the prior mean (10 %) rather
  than 0 or 1: ``(failures + a) / (changes + a + b)``;
* **recent incidents**: incident-causing changes to the services in the last
  :data:`RECENT_DAYS` days before *now*;
* **hot files**: changed files that an earlier incident-causing change touched too.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Boolean, Column, Float, Integer, MetaData, String, Table, Text, select
from sqlalchemy.exc import SQLAlchemyError

from aisre.errors import DataError, StoreError
from aisre.store import engine

__all__ = [
    "HistoryFeatures",
    "PRIOR_FAILURES",
    "PRIOR_SUCCESSES",
    "RECENT_DAYS",
    "history_features",
    "record_outcome",
]

PRIOR_FAILURES = 1.0
"""Beta prior pseudo-count of incident-causing changes (the prior mean is 1 / (1 + 9) = 10 %)."""
PRIOR_SUCCESSES = 9.0
"""Beta prior pseudo-count of harmless changes."""
RECENT_DAYS = 7.0
"""How far back an incident counts as recent, in days."""

_META = MetaData()
HISTORY = Table(
    "gate_history",
    _META,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("change_id", String(200), nullable=False, index=True),
    Column("service", String(200), nullable=False, index=True),
    Column("time", Float, nullable=False),
    Column("caused_incident", Boolean, nullable=False),
    Column("files", Text, nullable=False),
)
_READY: set[str] = set()


def _engine(url: str | None):  # type: ignore[no-untyped-def]
    eng = engine(url)
    key = str(eng.url)
    if key not in _READY:
        try:
            _META.create_all(eng, checkfirst=True)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot create the gate_history table: {str(exc).splitlines()[0]}") from exc
        _READY.add(key)
    return eng


def record_outcome(
    change_id: str,
    services: Iterable[str],
    files: Iterable[str],
    caused_incident: bool,
    time: float,
    *,
    url: str | None = None,
) -> int:
    """Record that change *change_id* deployed to *services* at *time* (unix s) and whether it
    caused an incident; return the number of rows written (one per service).

    Raises:
        DataError: for an empty change id, no services or a non-finite time.
        StoreError: when the store cannot be written.
    """
    if not isinstance(change_id, str) or not change_id:
        raise DataError("a change outcome needs a change id", field="change_id", value=change_id)
    svcs = sorted(dict.fromkeys(str(s) for s in services if s))
    if not svcs:
        raise DataError("a change outcome needs at least one service", field="services")
    try:
        t = float(time)
    except (TypeError, ValueError):
        raise DataError("time must be unix seconds", field="time", value=time) from None
    if t != t or t in (float("inf"), float("-inf")):
        raise DataError("time must be finite unix seconds", field="time", value=time)
    blob = json.dumps(sorted(dict.fromkeys(str(f) for f in files)))
    rows = [{"change_id": change_id, "service": s, "time": t, "caused_incident": bool(caused_incident), "files": blob}
            for s in svcs]  # fmt: skip
    try:
        with _engine(url).begin() as conn:
            conn.execute(HISTORY.insert(), rows)
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot record the change outcome: {str(exc).splitlines()[0]}") from exc
    return len(rows)


@dataclass
class HistoryFeatures:
    """What the store knows about the changed services and files.

    ``failure_rate``: per service, the posterior mean change-failure rate; ``changes`` and
    ``failures``: the counts behind it; ``recent_incidents``: incident-causing changes to these
    services in the last :data:`RECENT_DAYS` days; ``hot_files``: changed files touched by an
    earlier incident-causing change.
    """

    failure_rate: dict[str, float] = field(default_factory=dict)
    changes: dict[str, int] = field(default_factory=dict)
    failures: dict[str, int] = field(default_factory=dict)
    recent_incidents: int = 0
    hot_files: list[str] = field(default_factory=list)

    @property
    def max_failure_rate(self) -> float:
        """The highest change-failure rate among the services (the prior mean when none)."""
        prior = PRIOR_FAILURES / (PRIOR_FAILURES + PRIOR_SUCCESSES)
        return max(self.failure_rate.values(), default=prior)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "failure_rate": {k: round(v, 4) for k, v in self.failure_rate.items()},
            "changes": dict(self.changes),
            "failures": dict(self.failures),
            "recent_incidents": self.recent_incidents,
            "hot_files": list(self.hot_files),
        }


def history_features(
    services: Iterable[str], files: Iterable[str], *, now: float, url: str | None = None
) -> HistoryFeatures:
    """Return the :class:`HistoryFeatures` of a change to *services* touching *files*, using only
    outcomes recorded before *now* (unix s).

    Raises:
        StoreError: when the store cannot be read or a stored file list is corrupt.
    """
    svcs = sorted(dict.fromkeys(s for s in services if s))
    changed = set(files)
    prior = PRIOR_FAILURES + PRIOR_SUCCESSES
    out = HistoryFeatures()
    try:
        with _engine(url).connect() as conn:
            # the services' own rows, and every incident-causing row (for the hot files)
            query = select(HISTORY.c.change_id, HISTORY.c.service, HISTORY.c.time, HISTORY.c.caused_incident,
                           HISTORY.c.files).where(HISTORY.c.time < now,
                                                  HISTORY.c.service.in_(svcs) | HISTORY.c.caused_incident)  # fmt: skip
            rows = conn.execute(query).all()
    except SQLAlchemyError as exc:
        raise StoreError(f"cannot read the gate history: {str(exc).splitlines()[0]}") from exc
    frame = pd.DataFrame(rows, columns=["change_id", "service", "time", "caused_incident", "files"])
    frame["caused_incident"] = frame["caused_incident"].astype(bool)
    mine = frame[frame["service"].isin(svcs)]
    counts = mine.groupby("service")["caused_incident"].agg(["size", "sum"])
    for s in svcs:
        n, k = (int(counts.at[s, "size"]), int(counts.at[s, "sum"])) if s in counts.index else (0, 0)
        out.changes[s], out.failures[s] = n, k
        out.failure_rate[s] = (k + PRIOR_FAILURES) / (n + prior)
    recent = mine[mine["caused_incident"] & (mine["time"] >= now - RECENT_DAYS * 86400.0)]
    out.recent_incidents = int(recent["change_id"].nunique())
    bad = frame[frame["caused_incident"]].drop_duplicates("change_id")
    hot: set[str] = set()
    for blob in bad["files"]:
        try:
            hot.update(json.loads(blob))
        except (TypeError, json.JSONDecodeError) as exc:
            raise StoreError("a gate_history row has a corrupt file list") from exc
    out.hot_files = sorted(changed & hot)
    return out
