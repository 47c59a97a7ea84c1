"""The audit log: append-only, hash-chained records of every remediation decision and action.

Each record (actor, action, target, hypothesis, policy decision and reasons, approval, state
before and after, result, inverse, ...) is stored as one canonical JSON text (sorted keys, no
spaces) in the embedded store (:func:`aisre.store.engine`: SQLite by default, ``AISRE_DB`` for
PostgreSQL). Its hash is ``sha256(previous hash + "\\n" + canonical JSON)``, so each record
commits to everything before it; a one-row table ``audit_head`` keeps the sequence number and
hash of the last record, so a deleted or added tail shows too.

Appends are serialised by a database lock (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: a
transaction-scoped advisory lock plus ``SELECT ... FOR UPDATE`` on the head row), so concurrent
writers from several processes keep one linear chain and lose nothing.

:meth:`AuditLog.verify` returns one line per problem, naming the record that was edited,
deleted, inserted or moved. What a hash chain cannot catch: someone with write access who
rewrites a record *and* re-hashes every record after it *and* the head. Ship the head hash
elsewhere (:meth:`AuditLog.head`) to catch that too.

Record kinds: ``decision`` (what policy said when a step was about to run), ``approval`` (who
approved a step), ``dry_run`` (the executor's dry run), ``start`` (an action is about to change
something: result ``pending``), ``finish`` (how it ended; ``ref`` is the start's seq) and
``reconcile`` (a start a crashed run never finished, closed by the next run).
"""

from __future__ import annotations

import hashlib
import json
import math
import time as _time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError

from aisre.errors import StoreError
from aisre.store import engine as store_engine

__all__ = [
    "GENESIS",
    "RECORD_KINDS",
    "AuditLog",
    "AuditRecord",
    "canonical_json",
    "format_records",
]

GENESIS = "0" * 64
"""The previous hash of the first record."""

RECORD_KINDS = ("decision", "approval", "dry_run", "start", "finish", "reconcile")
"""The kinds of audit record."""

_LOCK_KEY = 0x41_49_53_52_45  # "AISRE": the PostgreSQL advisory lock guarding appends

_metadata = MetaData()
_records = Table(
    "audit_records",
    _metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", Float, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("case_id", String(255)),
    Column("step_id", String(64)),
    Column("target", String(255)),
    Column("body", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_records_target_time", "target", "time"),
    Index("ix_audit_records_case", "case_id"),
)
_head = Table(
    "audit_head",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)
_INDEXED = ("time", "kind", "case_id", "step_id", "target")


@dataclass
class AuditRecord:
    """One audit record; ``seq``, ``prev_hash`` and ``hash`` are set when it is appended."""

    kind: str
    time: float
    actor: str = "aisre"
    case_id: str | None = None
    step_id: str | None = None
    action: str | None = None
    target: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    hypothesis: str | None = None
    decision: str | None = None
    policies: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    approval: dict[str, Any] | None = None
    dry_run: bool | None = None
    before: dict[str, Any] = field(default_factory=dict)
    after: dict[str, Any] = field(default_factory=dict)
    result: str | None = None
    message: str = ""
    inverse: str | None = None
    ref: int | None = None
    seq: int | None = None
    prev_hash: str | None = None
    hash: str | None = None

    def body(self) -> dict[str, Any]:
        """Return the hashed content: every field but ``seq``, ``prev_hash`` and ``hash``."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("seq", "prev_hash", "hash")}

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of every field."""
        return {**json.loads(canonical_json(self.body())), "seq": self.seq, "prev_hash": self.prev_hash, "hash": self.hash}


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):  # numpy scalars arrive in executor states
        try:
            return obj.item()
        except (TypeError, ValueError):
            pass
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=str)
    return str(obj)


def _finite(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, Mapping):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def canonical_json(doc: Any) -> str:
    """Return the canonical JSON text of *doc*: sorted keys, no spaces, UTF-8, NaN as null."""
    return json.dumps(_finite(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def _chain_hash(prev_hash: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def _from_row(row: Any) -> AuditRecord:
    doc = json.loads(row.body)
    names = {f.name for f in fields(AuditRecord)}
    rec = AuditRecord(**{k: v for k, v in doc.items() if k in names and k not in ("seq", "prev_hash", "hash")})
    rec.seq, rec.prev_hash, rec.hash = int(row.seq), row.prev_hash, row.hash
    return rec


class AuditLog:
    """The hash-chained audit log in the store at *url* (default: the aisre store).

    Raises (from every method):
        StoreError: when the store cannot be reached or written.
    """

    def __init__(self, url: str | None = None, *, engine: Engine | None = None) -> None:
        self.engine = engine if engine is not None else store_engine(url)
        self._ready = False

    def __repr__(self) -> str:
        return f"AuditLog({self.engine.url.render_as_string(hide_password=True)!r})"

    # ------------------------------------------------------------------ writing

    @contextmanager
    def _locked(self) -> Iterator[Connection]:
        """Yield a connection inside a transaction that holds the append lock."""
        try:
            if self.engine.dialect.name == "sqlite":
                with self.engine.connect() as conn:
                    # Take the write lock up front: a deferred transaction that reads the head
                    # and then writes could interleave with another writer's read.
                    conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                    try:
                        self._ensure(conn)
                        yield conn
                    except BaseException:
                        conn.exec_driver_sql("ROLLBACK")
                        raise
                    conn.exec_driver_sql("COMMIT")
            else:
                with self.engine.begin() as conn:
                    if self.engine.dialect.name == "postgresql":
                        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
                    self._ensure(conn)
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreError(f"the audit log cannot be written: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc

    def _ensure(self, conn: Connection) -> None:
        if self._ready:
            return
        _metadata.create_all(conn, checkfirst=True)
        if conn.execute(select(_head.c.id).where(_head.c.id == 1)).first() is None:
            conn.execute(_head.insert().values(id=1, seq=0, hash=GENESIS))
        self._ready = True

    def append(self, record: AuditRecord) -> AuditRecord:
        """Append *record* to the chain and return it with ``seq``, ``prev_hash`` and ``hash`` set.

        Raises:
            StoreError: when the store cannot be written.
        """
        body = canonical_json(record.body())
        with self._locked() as conn:
            q = select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)
            if self.engine.dialect.name != "sqlite":
                q = q.with_for_update()
            head = conn.execute(q).one()
            seq, prev = int(head.seq) + 1, str(head.hash)
            digest = _chain_hash(prev, body)
            conn.execute(
                _records.insert().values(
                    seq=seq, time=float(record.time), kind=record.kind, case_id=record.case_id,
                    step_id=record.step_id, target=record.target, body=body, prev_hash=prev, hash=digest,
                )  # fmt: skip
            )
            conn.execute(update(_head).where(_head.c.id == 1).values(seq=seq, hash=digest))
        record.seq, record.prev_hash, record.hash = seq, prev, digest
        return record

    def log(self, kind: str, *, time: float | None = None, **values: Any) -> AuditRecord:
        """Append a record of *kind* built from *values* (see :class:`AuditRecord`) and return it."""
        return self.append(AuditRecord(kind=kind, time=_time.time() if time is None else float(time), **values))

    # ------------------------------------------------------------------ reading

    def _rows(self, where: Any = None) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                if not self.engine.dialect.has_table(conn, "audit_records"):
                    return []
                q = select(_records).order_by(_records.c.seq)
                if where is not None:
                    q = q.where(where)
                return list(conn.execute(q))
        except SQLAlchemyError as exc:
            raise StoreError(f"the audit log cannot be read: {exc.__class__.__name__}: {str(exc).splitlines()[0]}") from exc

    def records(
        self,
        *,
        case_id: str | None = None,
        kind: str | Sequence[str] | None = None,
        target: str | None = None,
        since: float | None = None,
    ) -> list[AuditRecord]:
        """Return the records matching every given filter, oldest first.

        Raises:
            StoreError: when the store cannot be read, or a record's body is not valid JSON.
        """
        conds = []
        if case_id is not None:
            conds.append(_records.c.case_id == case_id)
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            conds.append(_records.c.kind.in_(kinds))
        if target is not None:
            conds.append(_records.c.target == target)
        if since is not None:
            conds.append(_records.c.time >= float(since))
        where = None
        for c in conds:
            where = c if where is None else where & c
        out = []
        for row in self._rows(where):
            try:
                out.append(_from_row(row))
            except (json.JSONDecodeError, TypeError) as exc:
                raise StoreError(f"audit record {row.seq} is corrupt: {exc}; run `aisre audit verify`") from exc
        return out

    def head(self) -> tuple[int, str]:
        """Return ``(seq, hash)`` of the chain head (``(0, GENESIS)`` for an empty log)."""
        try:
            with self.engine.connect() as conn:
                if not self.engine.dialect.has_table(conn, "audit_head"):
                    return 0, GENESIS
                row = conn.execute(select(_head.c.seq, _head.c.hash).where(_head.c.id == 1)).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"the audit log cannot be read: {exc}") from exc
        return (int(row.seq), str(row.hash)) if row is not None else (0, GENESIS)

    def pending(self) -> list[AuditRecord]:
        """Return the ``start`` records that no ``finish`` or ``reconcile`` record closes."""
        closed = {r.ref for r in self.records(kind=("finish", "reconcile"))}
        return [r for r in self.records(kind="start") if r.seq not in closed]

    def executed_count(self, service: str, *, since: float, until: float | None = None) -> int:
        """Return how many real (not dry-run) actions on *service* started in ``[since, until]``.

        An action counts from its ``start`` record, so one that crashed or failed still counts;
        a start whose ``finish`` says the executor changed nothing does not, nor does the undo of
        aisre's own change (step ``<id>-revert`` with params ``reverts``): it ends a change and starts
        none, as the default policy's rate limits say.
        """
        recs = self.records(kind=("start", "finish"), since=since)
        unchanged = {r.ref for r in recs if r.kind == "finish" and r.result == "nothing changed"}
        return sum(
            1
            for r in recs
            if r.kind == "start"
            and r.seq not in unchanged
            and not ((r.params or {}).get("reverts") and str(r.step_id or "").endswith("-revert"))
            and (r.params or {}).get("service", r.target) == service
            and not r.dry_run
            and (until is None or r.time <= until)
        )

    # ------------------------------------------------------------------ verifying

    def verify(self) -> list[str]:
        """Return one line per problem in the chain (empty when it is intact).

        Each line names the record: ``record 7 edited``, ``record 4 deleted``,
        ``record 9 inserted``, ``record 5 out of order``.

        Raises:
            StoreError: when the store cannot be read.
        """
        rows = self._rows()
        head_seq, head_hash = self.head()
        problems: list[str] = []
        referenced = {r.prev_hash for r in rows}
        position = {r.hash: i for i, r in enumerate(rows)}
        for i, row in enumerate(rows):
            seq = int(row.seq)
            if _chain_hash(row.prev_hash, row.body) != row.hash:
                problems.append(f"record {seq} edited: its content no longer matches its hash")
            else:
                bad = _column_mismatch(row)
                if bad:
                    problems.append(f"record {seq} edited: column {bad} differs from its hashed content")
            expected = rows[i - 1].hash if i > 0 else GENESIS
            if row.prev_hash == expected:
                continue
            before = rows[i - 2].hash if i > 1 else GENESIS
            if i > 0 and row.prev_hash == before and rows[i - 1].hash not in referenced:
                problems.append(f"record {int(rows[i - 1].seq)} inserted: nothing chains to it")
            elif row.prev_hash in position or row.prev_hash == GENESIS:
                where = position.get(row.prev_hash)
                after = f"record {int(rows[where].seq)}" if where is not None else "the start of the chain"
                problems.append(f"record {seq} out of order: it chains to {after}")
            else:
                last = int(rows[i - 1].seq) if i > 0 else 0
                if seq - last > 1:
                    gap = f"record {last + 1}" if seq - last == 2 else f"records {last + 1}-{seq - 1}"
                    problems.append(f"{gap} deleted: record {seq} chains to a record that is gone")
                else:
                    problems.append(
                        f"record {last} edited and re-hashed, or a record after it deleted: "
                        f"record {seq} chains to a hash no record has"
                    )
        last_seq = int(rows[-1].seq) if rows else 0
        last_hash = rows[-1].hash if rows else GENESIS
        if head_seq > last_seq:
            gap = f"record {head_seq}" if head_seq == last_seq + 1 else f"records {last_seq + 1}-{head_seq}"
            problems.append(f"{gap} deleted: the chain head names record {head_seq} but the log ends at {last_seq}")
        elif last_seq > head_seq:
            extra = f"record {last_seq}" if last_seq == head_seq + 1 else f"records {head_seq + 1}-{last_seq}"
            problems.append(f"{extra} inserted after the chain head (record {head_seq})")
        elif head_hash != last_hash:
            problems.append(f"record {last_seq} edited: its hash differs from the chain head's")
        return problems


def _column_mismatch(row: Any) -> str | None:
    try:
        doc = json.loads(row.body)
    except json.JSONDecodeError:
        return "body"
    for name in _INDEXED:
        stored, hashed = getattr(row, name), doc.get(name)
        if name == "time":
            if hashed is None or stored is None or not math.isclose(float(stored), float(hashed), rel_tol=0, abs_tol=1e-6):
                return name
        elif stored != hashed:
            return name
    return None


def format_records(records: Sequence[AuditRecord]) -> str:
    """Return *records* as a fixed-width table for a terminal, one line each."""
    lines = [f"{'seq':>5}  {'time':<20} {'kind':<9} {'actor':<10} {'case':<14} {'step':<5} {'action':<13} {'target':<20} result"]
    for r in records:
        when = _time.strftime("%Y-%m-%d %H:%M:%S", _time.gmtime(r.time)) if math.isfinite(r.time) else "?"
        result = r.result or r.decision or ""
        if r.kind == "approval" and r.approval:
            result = f"approved by {r.approval.get('by')}"
        lines.append(
            f"{r.seq or 0:>5}  {when:<20} {r.kind:<9} {(r.actor or '')[:10]:<10} {(r.case_id or '')[:14]:<14} "
            f"{(r.step_id or '')[:5]:<5} {(r.action or '')[:13]:<13} {(r.target or '')[:20]:<20} {result}"
        )
    return "\n".join(lines)
