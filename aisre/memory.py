"""Incident memory: every investigation remembered, similar ones found, feedback learned.

::

    mem = Memory()                                   # the store (AISRE_DB or the home's SQLite)
    iid = mem.remember(case, ranking, actions=[("scale", "cartservice", True)], outcome="mitigated")
    mem.confirm(iid, by="alice")                     # or mem.correct(iid, "redis-cart", "mem", by="bob")
    matches = mem.similar(next_case, ranking)        # best first, each with why in words
    ranking = with_memory(ranking, matches)          # past causes as a bounded prior
    mem.successful_actions(next_case, ranking)       # [("scale", "cartservice", 3), ...]

Each incident is a row of ``memory_incidents``: its fingerprint (a :data:`DIM` float32 vector and
the structured parts as JSON, see :mod:`aisre.memory_fingerprint`), the top suspect, the cause
(the top suspect until a person confirms or corrects it), the actions taken with their outcome
and the postmortem path; ``memory_feedback`` keeps every confirmation and correction, and
``memory_meta`` a counter of incidents written, so a reader notices new rows with one lookup.

Retrieval keeps every vector in one in-memory numpy matrix, loaded once and topped up when the
counter moves (another process may write); a query is one matrix-vector product and an
``argpartition``, then the best :data:`CANDIDATES` are compared exactly on their parts
(:func:`~aisre.memory_fingerprint.structured_similarity`) and the similarity is the mean of the
cosine and that structured score. A corrupt row (a vector of the wrong length, parts that are
not JSON) is logged, listed in :attr:`Memory.problems` and skipped.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.schema import CreateIndex, CreateTable

from aisre.case import FAULT_KINDS, Case, Outcome, Ranking, Truth
from aisre.errors import DataError, StoreError, UsageError
from aisre.memory_fingerprint import DIM, FINGERPRINT_VERSION, Fingerprint, fingerprint, parts_from_json, structured_similarity
from aisre.memory_prior import MIN_SIMILARITY, Match, prioritise_steps, with_memory
from aisre.memory_records import (
    COUNTER,
    EXPORT_SCHEMA,
    FEEDBACK,
    INCIDENTS,
    METADATA,
    action_records,
    cause_of,
    export_line,
    feedback_dict,
    import_line,
    load_json_list,
    outcome_of,
    unit,
    vec_bytes,
)
from aisre.store import engine

__all__ = [
    "CANDIDATES",
    "COUNTER",
    "DIM",
    "EXPORT_SCHEMA",
    "FEEDBACK",
    "INCIDENTS",
    "Fingerprint",
    "Match",
    "Memory",
    "fingerprint",
    "prioritise_steps",
    "successful_actions",
    "with_memory",
]

log = logging.getLogger("aisre.memory")

CANDIDATES = 24
"""Nearest vectors (at least; 4 k for larger k) re-ranked exactly on their structured parts."""

_ROW_COLUMNS = [c for c in INCIDENTS.c if c.name != "vector"]


def _retry(fn: Any, *args: Any, attempts: int = 8) -> Any:
    """Run a write, retrying when SQLite reports the database busy or locked (the busy timeout
    does not cover every case, e.g. a lock upgrade in WAL mode)."""
    for i in range(attempts):
        try:
            return fn(*args)
        except OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or i == attempts - 1:
                raise
            time.sleep(0.05 * (2**i))
    raise AssertionError("unreachable")  # pragma: no cover


class Memory:
    """The incident memory in the store at *url* (default: :func:`aisre.store.database_url`).

    Tables are created when absent. Raises :class:`~aisre.errors.StoreError` when the store
    cannot be opened.
    """

    def __init__(self, url: str | None = None) -> None:
        self.engine: Engine = engine(url)
        self.problems: dict[str, str] = {}
        """Corrupt records met so far: incident id -> what is wrong."""
        self._ids = np.empty(0, dtype=object)
        self._matrix = np.empty((0, DIM), dtype=np.float32)
        self._last_seq = 0
        self._synced = -1
        self._create()

    # ------------------------------------------------------------------ schema

    def _create(self) -> None:
        try:
            with self.engine.begin() as conn:
                for table in METADATA.sorted_tables:
                    conn.execute(CreateTable(table, if_not_exists=True))
                    for ix in table.indexes:
                        conn.execute(CreateIndex(ix, if_not_exists=True))
            try:
                with self.engine.begin() as conn:
                    if conn.execute(select(COUNTER.c.value).where(COUNTER.c.key == "incidents")).first() is None:
                        conn.execute(insert(COUNTER).values(key="incidents", value=0))
            except IntegrityError:
                pass  # another process created it first
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot create the memory tables: {_short(exc)}") from exc

    # ------------------------------------------------------------------ writing

    def remember(
        self,
        case: Case | Fingerprint,
        ranking: Ranking | None = None,
        *,
        confirmed: Truth | tuple[str, str | None] | str | None = None,
        actions: Iterable[Any] = (),
        outcome: Outcome | str | bool | None = None,
        postmortem: str | Path | None = None,
        by: str = "aisre",
        case_id: str | None = None,
    ) -> str:
        """Store the investigation of *case* (ranked by *ranking*; default the ``aisre`` ranker),
        or an already built fingerprint (then *case_id* names the case), and return its incident
        id (``INC-`` and 12 hex digits).

        *confirmed* is the root cause a person confirmed (a Truth, ``(service, fault)`` or a
        service); without it the cause stays unconfirmed and does not act as a prior. *actions*
        are Actions, Steps, ``(action_or_step, ok)`` pairs, ``(name, target, ok)`` triples or
        ``{"name", "target", "ok"}`` dicts; *outcome* what happened overall.

        Raises:
            DataError: for a malformed action or cause.
            StoreError: when the store cannot be written.
        """
        if isinstance(case, Fingerprint):
            fp, cid, system = case, case_id or "", str(case.parts.get("system") or "")
        else:
            fp, cid, system = fingerprint(case, ranking), case_id or str(case.id), str(case.system or "")
        suspects = fp.parts.get("suspects") or []
        iid = f"INC-{uuid.uuid4().hex[:12]}"
        cause = cause_of(confirmed)
        now = time.time()
        row = {
            "id": iid, "case_id": cid, "system": system, "created": now,
            "version": FINGERPRINT_VERSION, "dim": DIM, "vector": vec_bytes(fp.vector),
            "fingerprint": json.dumps(fp.parts, sort_keys=True, default=str),
            "suspect": suspects[0]["service"] if suspects else None,
            "suspect_fault": suspects[0].get("fault") if suspects else None,
            "cause": cause[0] if cause else None, "cause_fault": cause[1] if cause else None,
            "status": "confirmed" if cause else "unconfirmed",
            "confirmed_by": by if cause else None, "confirmed_at": now if cause else None,
            "actions": json.dumps(action_records(actions)), "outcome": outcome_of(outcome),
            "postmortem": str(postmortem) if postmortem is not None else None,
        }  # fmt: skip
        feedback = [{"incident_id": iid, "kind": "confirm", "service": cause[0], "fault": cause[1], "by_name": by, "at_time": now}] if cause else []
        self._write([row], feedback)
        return iid

    def _write(self, rows: list[dict[str, Any]], feedback: list[dict[str, Any]]) -> None:
        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(insert(INCIDENTS), rows)
                if feedback:
                    conn.execute(insert(FEEDBACK), feedback)
                conn.execute(update(COUNTER).where(COUNTER.c.key == "incidents").values(value=COUNTER.c.value + len(rows)))

        try:
            _retry(go)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write to the incident memory: {_short(exc)}") from exc

    # ------------------------------------------------------------------ feedback

    def confirm(self, incident_id: str, by: str) -> None:
        """Confirm the incident's current cause (its top suspect unless corrected before).

        Raises:
            UsageError: for an unknown incident id or an empty *by*.
            StoreError: when the store cannot be written.
        """
        row = self._row(incident_id)
        service = row["cause"] or row["suspect"]
        fault = row["cause_fault"] if row["cause"] else row["suspect_fault"]
        if not service:
            raise UsageError(f"{incident_id} has no suspect to confirm; use correct to name the cause")
        status = "corrected" if row["status"] == "corrected" else "confirmed"
        self._feedback(incident_id, "confirm", service, fault, by, status)

    def correct(self, incident_id: str, service: str, fault: str | None = None, *, by: str) -> None:
        """Record that the incident's root cause was *service* (with *fault*, one of
        :data:`~aisre.case.FAULT_KINDS`); later retrievals use it as the confirmed cause.

        Raises:
            UsageError: for an unknown incident id, an empty service or *by*, or an unknown fault.
            StoreError: when the store cannot be written.
        """
        if not isinstance(service, str) or not service.strip():
            raise UsageError("a correction needs the service that was the root cause")
        if fault is not None and fault not in FAULT_KINDS:
            raise UsageError(f"unknown fault {fault!r}; known: {', '.join(FAULT_KINDS)}")
        self._row(incident_id)
        self._feedback(incident_id, "correct", service.strip(), fault, by, "corrected")

    def _feedback(self, incident_id: str, kind: str, service: str, fault: str | None, by: str, status: str) -> None:
        if not isinstance(by, str) or not by.strip():
            raise UsageError("say who gives the feedback (--by NAME)")
        now = time.time()

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(INCIDENTS).where(INCIDENTS.c.id == incident_id).values(
                    cause=service, cause_fault=fault, status=status, confirmed_by=by.strip(), confirmed_at=now))
                conn.execute(insert(FEEDBACK).values(incident_id=incident_id, kind=kind, service=service, fault=fault,
                                                     by_name=by.strip(), at_time=now))

        try:
            _retry(go)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record feedback: {_short(exc)}") from exc

    def record_actions(self, incident_id: str, actions: Iterable[Any], outcome: Outcome | str | bool | None = None) -> None:
        """Append *actions* (same forms as :meth:`remember`) to the incident, and set *outcome*.

        Raises:
            UsageError: for an unknown incident id.
            DataError: for a malformed action.
            StoreError: when the store cannot be written.
        """
        row = self._row(incident_id)
        done = load_json_list(row["actions"]) + action_records(actions)
        values: dict[str, Any] = {"actions": json.dumps(done)}
        if outcome is not None:
            values["outcome"] = outcome_of(outcome)

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(update(INCIDENTS).where(INCIDENTS.c.id == incident_id).values(**values))

        try:
            _retry(go)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot record actions: {_short(exc)}") from exc

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(select(func.count()).select_from(INCIDENTS)).scalar_one())
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the incident memory: {_short(exc)}") from exc

    def get(self, incident_id: str) -> dict[str, Any]:
        """Return the stored incident as a dict (fingerprint parts and actions decoded) with its
        ``feedback`` history.

        Raises:
            UsageError: for an unknown incident id.
            StoreError: when the store cannot be read or the record is corrupt.
        """
        row = self._row(incident_id)
        try:
            row["fingerprint"] = parts_from_json(row["fingerprint"])
        except DataError as exc:
            raise StoreError(f"{incident_id} is corrupt: {exc}") from exc
        row["actions"] = load_json_list(row["actions"])
        with self.engine.connect() as conn:
            fb = conn.execute(select(FEEDBACK).where(FEEDBACK.c.incident_id == incident_id).order_by(FEEDBACK.c.seq))
            row["feedback"] = [feedback_dict(r._mapping) for r in fb]
        return row

    def _row(self, incident_id: str) -> dict[str, Any]:
        try:
            with self.engine.connect() as conn:
                r = conn.execute(select(*_ROW_COLUMNS).where(INCIDENTS.c.id == str(incident_id))).first()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the incident memory: {_short(exc)}") from exc
        if r is None:
            raise UsageError(f"no incident {incident_id!r} in the memory")
        return dict(r._mapping)

    # ------------------------------------------------------------------ the index

    def refresh(self, *, full: bool = False) -> int:
        """Bring the in-memory index up to date with the store and return its size: new rows
        are read once the write counter moved, everything when *full* or when rows went missing.

        Raises:
            StoreError: when the store cannot be read.
        """
        try:
            with self.engine.connect() as conn:
                counter = int(conn.execute(select(COUNTER.c.value).where(COUNTER.c.key == "incidents")).scalar_one_or_none() or 0)
                if counter == self._synced and not full:
                    return len(self._ids)
                if full:
                    self._ids, self._matrix, self._last_seq = np.empty(0, dtype=object), np.empty((0, DIM), np.float32), 0
                self._load(conn, self._last_seq)
                total = int(conn.execute(select(func.count()).select_from(INCIDENTS)).scalar_one())
                if len(self._ids) + self._corrupt_vectors() < total and self._last_seq:
                    # a writer that started earlier committed later (a gap in seq): read all again
                    self._ids, self._matrix, self._last_seq = np.empty(0, dtype=object), np.empty((0, DIM), np.float32), 0
                    self._load(conn, 0)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the incident memory: {_short(exc)}") from exc
        self._synced = counter
        return len(self._ids)

    def _corrupt_vectors(self) -> int:
        return sum(1 for v in self.problems.values() if v.startswith("vector"))

    def _load(self, conn: Any, after: int) -> None:
        rows = conn.execute(select(INCIDENTS.c.seq, INCIDENTS.c.id, INCIDENTS.c.dim, INCIDENTS.c.vector)
                            .where(INCIDENTS.c.seq > after).order_by(INCIDENTS.c.seq)).all()
        if not rows:
            return
        seqs = [r[0] for r in rows]
        good = [r for r in rows if r[2] == DIM and isinstance(r[3], (bytes, bytearray, memoryview)) and len(r[3]) == 4 * DIM]
        if len(good) < len(rows):
            for r in rows:
                if not (r[2] == DIM and isinstance(r[3], (bytes, bytearray, memoryview)) and len(r[3]) == 4 * DIM):
                    self._problem(str(r[1]), f"vector of {len(r[3]) // 4 if r[3] is not None else 0} values, dim {r[2]}; expected {DIM}")
        mat = np.frombuffer(b"".join(bytes(r[3]) for r in good), dtype=np.float32).reshape(-1, DIM) if good else np.empty((0, DIM), np.float32)
        finite = np.isfinite(mat).all(axis=1)
        if not finite.all():
            for r, ok in zip(good, finite, strict=True):
                if not ok:
                    self._problem(str(r[1]), "vector holds NaN or infinity")
            good = [r for r, ok in zip(good, finite, strict=True) if ok]
            mat = mat[finite]
        norms = np.linalg.norm(mat, axis=1, keepdims=True)
        mat = np.divide(mat, norms, out=np.zeros_like(mat), where=norms > 0)
        self._ids = np.concatenate([self._ids, np.array([str(r[1]) for r in good], dtype=object)])
        self._matrix = np.vstack([self._matrix, mat]) if len(self._matrix) else np.ascontiguousarray(mat)
        self._last_seq = max(self._last_seq, max(seqs))

    def _problem(self, iid: str, what: str) -> None:
        if iid not in self.problems:
            log.warning("incident memory: corrupt record %s skipped: %s", iid, what)
        self.problems[iid] = what

    # ------------------------------------------------------------------ retrieval

    def similar(self, case_or_fingerprint: Case | Fingerprint, ranking: Ranking | None = None, k: int = 5, *,
                exclude: Iterable[str] = (), min_similarity: float = 0.0) -> list[Match]:
        """Return the *k* most similar remembered incidents, best first (similarity 0..1, why in
        words, confirmed cause and actions). A Case is fingerprinted with *ranking* (default: the
        ``aisre`` ranker). Corrupt records are skipped and listed in :attr:`problems`.

        Raises:
            UsageError: when *k* is not a positive integer.
            DataError: when the argument is neither a Case nor a Fingerprint.
            StoreError: when the store cannot be read.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise UsageError(f"k must be a positive integer, got {k!r}")
        fp = case_or_fingerprint if isinstance(case_or_fingerprint, Fingerprint) else fingerprint(case_or_fingerprint, ranking)
        self.refresh()
        n = len(self._ids)
        if n == 0:
            return []
        q = unit(np.asarray(fp.vector, dtype=np.float32))
        cos = self._matrix @ q
        m = min(n, max(CANDIDATES, 4 * k))
        idx = np.argpartition(-cos, m - 1)[:m] if m < n else np.arange(n)
        idx = idx[np.argsort(-cos[idx], kind="stable")]
        skip = set(exclude)
        cand = {str(self._ids[i]): float(cos[i]) for i in idx if str(self._ids[i]) not in skip}
        rows = self._rows(list(cand))
        scored = []
        for iid, c in cand.items():
            r = rows.get(iid)
            if r is None:
                continue
            try:
                parts = parts_from_json(r["fingerprint"])
                struct, _ = structured_similarity(fp.parts, parts, explain=False)
                actions = load_json_list(r["actions"])
            except DataError as exc:
                self._problem(iid, str(exc))
                continue
            sim = min(0.5 * max(c, 0.0) + 0.5 * struct, 1.0)
            if sim >= min_similarity:
                scored.append((sim, iid, r, parts, actions))
        scored.sort(key=lambda x: (-x[0], x[1]))
        out = []
        for sim, iid, r, parts, actions in scored[:k]:
            _, why = structured_similarity(fp.parts, parts)
            out.append(Match(
                incident_id=iid, similarity=round(sim, 4), why="; ".join(why),
                cause=r["cause"], fault=r["cause_fault"], status=r["status"], actions=actions,
                case_id=r["case_id"], system=r["system"], suspect=r["suspect"], outcome=r["outcome"],
                postmortem=r["postmortem"], created=float(r["created"] or 0.0),
            ))  # fmt: skip
        return out

    def _rows(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        try:
            with self.engine.connect() as conn:
                res = conn.execute(select(*_ROW_COLUMNS).where(INCIDENTS.c.id.in_(list(ids))))
                return {str(r.id): dict(r._mapping) for r in res}
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the incident memory: {_short(exc)}") from exc

    def successful_actions(self, case_or_fingerprint: Case | Fingerprint, ranking: Ranking | None = None, *,
                           k: int = 10, min_similarity: float = MIN_SIMILARITY) -> list[tuple[str, str, int]]:
        """Return ``(action name, target, success count)`` of the actions that worked for the *k*
        most similar incidents at least *min_similarity* alike, most successes first (ties: the
        more similar incident first).

        Raises: as :meth:`similar`.
        """
        return successful_actions(self.similar(case_or_fingerprint, ranking, k=k), min_similarity=min_similarity)

    def prior(self, case: Case, ranking: Ranking, k: int = 5) -> Ranking:
        """Return *ranking* re-ranked with the confirmed causes of the *k* most similar incidents
        (:func:`~aisre.memory_prior.with_memory`).

        Raises: as :meth:`similar`.
        """
        return with_memory(ranking, self.similar(case, ranking, k=k))

    # ------------------------------------------------------------------ export / import

    def export(self, path: str | Path) -> int:
        """Write every incident as one JSON object per line to *path* and return how many.

        Raises:
            StoreError: when the store cannot be read or *path* written.
        """
        target = Path(path)
        n = 0
        try:
            tmp = target.with_name(f".{target.name}.tmp")
            with self.engine.connect() as conn, tmp.open("w", encoding="utf-8") as fh:
                fb: dict[str, list[dict[str, Any]]] = {}
                for r in conn.execute(select(FEEDBACK).order_by(FEEDBACK.c.seq)):
                    fb.setdefault(str(r.incident_id), []).append(feedback_dict(r._mapping))
                for r in conn.execute(select(INCIDENTS).order_by(INCIDENTS.c.seq)).yield_per(1000):
                    fh.write(json.dumps(export_line(dict(r._mapping), fb.get(str(r.id), [])), allow_nan=False) + "\n")
                    n += 1
            tmp.replace(target)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the incident memory: {_short(exc)}") from exc
        except OSError as exc:
            raise StoreError(f"cannot write {target}: {exc.strerror}") from exc
        return n

    def import_(self, path: str | Path) -> dict[str, Any]:
        """Read incidents exported by :meth:`export` from *path* and return ``{"imported",
        "duplicate", "corrupt", "errors"}``: incidents already present (same id) are not added
        again; a corrupt line is skipped and named in ``errors`` (``"line 3: ..."``).

        Raises:
            DataError: when *path* cannot be read.
            StoreError: when the store cannot be written.
        """
        source = Path(path)
        try:
            lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise DataError(f"cannot read: {exc.strerror}", path=source) from exc
        result: dict[str, Any] = {"imported": 0, "duplicate": 0, "corrupt": 0, "errors": []}
        batch: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        for no, text in enumerate(lines, 1):
            if not text.strip():
                continue
            try:
                batch.append(import_line(text))
            except DataError as exc:
                result["corrupt"] += 1
                result["errors"].append(f"line {no}: {exc}")
                log.warning("incident memory import: %s line %d skipped: %s", source, no, exc)
        for chunk in _chunks(batch, 500):
            self._import_chunk(chunk, result)
        return result

    def _import_chunk(self, chunk: list[tuple[dict[str, Any], list[dict[str, Any]]]], result: dict[str, Any]) -> None:
        seen: set[str] = set()
        fresh = []
        with self.engine.connect() as conn:
            have = {str(x) for x in conn.execute(select(INCIDENTS.c.id).where(INCIDENTS.c.id.in_([r["id"] for r, _ in chunk]))).scalars()}
        for row, fb in chunk:
            if row["id"] in have or row["id"] in seen:
                result["duplicate"] += 1
                continue
            seen.add(row["id"])
            fresh.append((row, fb))
        if not fresh:
            return
        try:
            self._write([r for r, _ in fresh], [f for _, fbs in fresh for f in fbs])
            result["imported"] += len(fresh)
        except StoreError:
            for row, fb in fresh:  # a concurrent import won a race on some id: go one by one
                try:
                    self._write([row], fb)
                    result["imported"] += 1
                except StoreError:
                    result["duplicate"] += 1


# --------------------------------------------------------------------------- helpers


def successful_actions(matches: Iterable[Match], *, min_similarity: float = MIN_SIMILARITY) -> list[tuple[str, str, int]]:
    """Return ``(action name, target, success count)`` over the actions that worked (``ok``
    true) in the *matches* at least *min_similarity* alike, most successes first, ties by the
    best similarity then name."""
    count: dict[tuple[str, str], int] = {}
    best: dict[tuple[str, str], float] = {}
    for m in matches:
        if not m.similarity >= min_similarity:
            continue
        for a in m.actions:
            if a.get("ok") is True and a.get("name") and a.get("target"):
                key = (str(a["name"]), str(a["target"]))
                count[key] = count.get(key, 0) + 1
                best[key] = max(best.get(key, 0.0), float(m.similarity))
    return [(n, t, c) for (n, t), c in sorted(count.items(), key=lambda kv: (-kv[1], -best[kv[0]], kv[0]))]


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:200]


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
