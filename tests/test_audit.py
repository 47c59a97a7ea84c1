"""The audit log: a hash chain that names any edited, deleted, inserted or reordered record."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from aisre.remediate import GENESIS, AuditLog, AuditRecord, canonical_json


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("AISRE_DB", raising=False)
    return tmp_path / "home"


@pytest.fixture
def log(home) -> AuditLog:
    log = AuditLog()
    for i in range(1, 6):
        log.log("decision", time=1000.0 + i, case_id="c1", step_id=f"s{i}", action="scale", target="cart",
                decision="allow", policies=["p"], reasons=[f"reason {i}"])  # fmt: skip
    return log


def db(home) -> sqlite3.Connection:
    return sqlite3.connect(home / "aisre.db", isolation_level=None)


def test_an_untouched_chain_verifies_and_links_each_record_to_the_previous(log):
    recs = log.records()
    assert [r.seq for r in recs] == [1, 2, 3, 4, 5]
    assert recs[0].prev_hash == GENESIS
    for a, b in zip(recs, recs[1:], strict=False):
        assert b.prev_hash == a.hash
    body = canonical_json(recs[2].body())
    assert recs[2].hash == hashlib.sha256(f"{recs[1].hash}\n{body}".encode()).hexdigest()
    assert log.verify() == []
    assert log.head() == (5, recs[-1].hash)


def test_edit_is_named(log, home):
    db(home).execute("UPDATE audit_records SET body = replace(body, 'reason 3', 'reason x') WHERE seq = 3")
    assert log.verify() == ["record 3 edited: its content no longer matches its hash"]


def test_edit_of_an_indexed_column_is_named(log, home):
    db(home).execute("UPDATE audit_records SET target = 'frontend' WHERE seq = 2")
    assert log.verify() == ["record 2 edited: column target differs from its hashed content"]


def test_edit_and_rehash_is_named(log, home):
    con = db(home)
    prev, body = con.execute("SELECT prev_hash, body FROM audit_records WHERE seq = 3").fetchone()
    body = body.replace("reason 3", "reason x")
    digest = hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()
    con.execute("UPDATE audit_records SET body = ?, hash = ? WHERE seq = 3", (body, digest))
    problems = log.verify()
    assert len(problems) == 1 and problems[0].startswith("record 3 edited and re-hashed")


def test_delete_in_the_middle_is_named(log, home):
    db(home).execute("DELETE FROM audit_records WHERE seq = 3")
    assert log.verify() == ["record 3 deleted: record 4 chains to a record that is gone"]


def test_delete_of_the_last_record_is_named(log, home):
    db(home).execute("DELETE FROM audit_records WHERE seq = 5")
    assert log.verify() == ["record 5 deleted: the chain head names record 5 but the log ends at 4"]


def test_delete_of_the_first_record_is_named(log, home):
    db(home).execute("DELETE FROM audit_records WHERE seq = 1")
    assert log.verify() == ["record 1 deleted: record 2 chains to a record that is gone"]


def test_reorder_is_named(log, home):
    con = db(home)
    con.execute("UPDATE audit_records SET seq = -1 WHERE seq = 3")
    con.execute("UPDATE audit_records SET seq = 3 WHERE seq = 4")
    con.execute("UPDATE audit_records SET seq = 4 WHERE seq = -1")
    problems = log.verify()
    assert any(p.startswith("record 3 out of order") for p in problems), problems
    assert any(p.startswith("record 4 out of order") for p in problems), problems
    assert all("out of order" in p for p in problems)


def _forge(prev: str, kind: str = "approval") -> tuple[str, str]:
    rec = AuditRecord(kind=kind, time=1002.5, actor="mallory", case_id="c1", step_id="s9", approval={"by": "mallory"})
    body = canonical_json(rec.body())
    return body, hashlib.sha256(f"{prev}\n{body}".encode()).hexdigest()


def test_insert_in_the_middle_is_named(log, home):
    """A well-formed record slipped in after record 2 (the rest renumbered) is named."""
    con = db(home)
    con.execute("UPDATE audit_records SET seq = seq + 100 WHERE seq >= 3")
    con.execute("UPDATE audit_records SET seq = seq - 99 WHERE seq >= 100")
    prev = con.execute("SELECT hash FROM audit_records WHERE seq = 2").fetchone()[0]
    body, digest = _forge(prev)
    con.execute(
        "INSERT INTO audit_records (seq, time, kind, case_id, step_id, target, body, prev_hash, hash) "
        "VALUES (3, 1002.5, 'approval', 'c1', 's9', NULL, ?, ?, ?)",
        (body, prev, digest),
    )
    problems = log.verify()
    assert problems[0] == "record 3 inserted: nothing chains to it"
    assert any("inserted after the chain head" in p for p in problems)  # the log is now one longer


def test_insert_at_the_end_is_named(log, home):
    con = db(home)
    prev = con.execute("SELECT hash FROM audit_records WHERE seq = 5").fetchone()[0]
    body, digest = _forge(prev)
    con.execute(
        "INSERT INTO audit_records (seq, time, kind, case_id, step_id, target, body, prev_hash, hash) "
        "VALUES (6, 1002.5, 'approval', 'c1', 's9', NULL, ?, ?, ?)",
        (body, prev, digest),
    )
    assert log.verify() == ["record 6 inserted after the chain head (record 5)"]


def test_pending_start_is_listed_until_a_finish_closes_it(home):
    log = AuditLog()
    start = log.log("start", time=1.0, case_id="c", step_id="s1", target="cart", result="pending")
    assert [r.seq for r in log.pending()] == [start.seq]
    log.log("finish", time=2.0, case_id="c", step_id="s1", target="cart", result="ok", ref=start.seq)
    assert log.pending() == []


def test_empty_log_verifies(home):
    assert AuditLog().verify() == [] and AuditLog().records() == []


def test_records_carry_every_audit_field(home):
    log = AuditLog()
    log.log("finish", time=5.0, actor="alice", case_id="c", step_id="s1", action="scale", target="cart",
            hypothesis="cart", decision="allow", policies=["p"], reasons=["r"], approval={"by": "bob"},
            before={"replicas": 2}, after={"replicas": 4}, result="ok", inverse="scale cart back to 2 replicas")  # fmt: skip
    r = log.records()[0].to_dict()
    for key in ("actor", "action", "target", "hypothesis", "decision", "reasons", "approval", "before", "after", "result", "inverse"):
        assert r[key] not in (None, "", [], {}), key


APPENDER = textwrap.dedent(
    """
    import sys
    from aisre.remediate import AuditLog
    log = AuditLog(sys.argv[1])
    for i in range(int(sys.argv[3])):
        log.log("decision", time=float(i), actor=sys.argv[2], step_id=str(i), target="t")
    """
)


def append_concurrently(url: str, n: int = 1000) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, url, who, str(n)]) for who in ("p1", "p2")]
    for p in procs:
        assert p.wait(timeout=600) == 0


@pytest.mark.slow
def test_two_processes_appending_1000_records_each_lose_nothing(home):
    url = f"sqlite:///{home / 'aisre.db'}"
    home.mkdir(parents=True, exist_ok=True)
    append_concurrently(url)
    log = AuditLog(url)
    recs = log.records()
    assert len(recs) == 2000
    assert [r.seq for r in recs] == list(range(1, 2001))
    for who in ("p1", "p2"):
        assert sorted(int(r.step_id) for r in recs if r.actor == who) == list(range(1000))
    assert log.verify() == []


def test_two_processes_appending_concurrently_quick(home):
    """The same race at 100 records each, for the default run."""
    url = f"sqlite:///{home / 'aisre.db'}"
    home.mkdir(parents=True, exist_ok=True)
    append_concurrently(url, 100)
    log = AuditLog(url)
    assert len(log.records()) == 200 and log.verify() == []
