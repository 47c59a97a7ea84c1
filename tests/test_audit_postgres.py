"""The audit log on PostgreSQL: the same chain, tamper detection and concurrent appends.

The server comes from ``AISRE_TEST_PG`` (a SQLAlchemy URL, e.g.
``postgresql+psycopg://postgres@/postgres?host=/tmp/pg``) when set; otherwise the fixture starts a
throwaway cluster with ``initdb``/``pg_ctl`` on a unix socket in a temporary folder (as the
``postgres`` user through ``runuser`` when run as root); otherwise the tests skip with a reason.
Every test gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from aisre.remediate import AuditLog

APPENDER = """
import sys
from aisre.remediate import AuditLog
log = AuditLog(sys.argv[1])
for i in range(int(sys.argv[3])):
    log.log("decision", time=float(i), actor=sys.argv[2], step_id=str(i), target="t")
"""


def append_concurrently(url: str, n: int) -> None:
    """Run two processes appending *n* records each to the log at *url*, at the same time."""
    procs = [subprocess.Popen([sys.executable, "-c", APPENDER, url, who, str(n)]) for who in ("p1", "p2")]
    for p in procs:
        assert p.wait(timeout=900) == 0

pytestmark = pytest.mark.postgres


def _bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if (Path(candidate) / "initdb").exists() and (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def pg_server() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a PostgreSQL server that lets us create databases."""
    given = os.environ.get("AISRE_TEST_PG")
    if given:
        yield given
        return
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server: set AISRE_TEST_PG or install postgresql (initdb and pg_ctl)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed (pip install 'aisre[postgres]')")
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="aisre-pg-"))
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            pytest.skip("running as root without runuser: cannot start PostgreSQL as a normal user")
        try:
            shutil.chown(root, "postgres", "postgres")
        except (LookupError, PermissionError) as exc:
            pytest.skip(f"running as root and cannot hand the cluster to the postgres user: {exc}")
        prefix = ["runuser", "-u", "postgres", "--"]
    root.chmod(0o755)
    data, port = root / "data", _free_port()
    run = {"check": True, "capture_output": True, "text": True, "timeout": 120}
    try:
        subprocess.run([*prefix, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-N"], **run)
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-w", "-o",
             f"-k {root} -p {port} -c listen_addresses='' -c fsync=off", "start"],
            **run,
        )  # fmt: skip
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        detail = getattr(exc, "stderr", "") or str(exc)
        pytest.skip(f"could not start a temporary PostgreSQL: {detail.strip().splitlines()[-1] if detail.strip() else exc}")
    try:
        yield f"postgresql+psycopg://postgres@/postgres?host={root}&port={port}"
    finally:
        subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server, tmp_path, monkeypatch) -> Iterator[str]:
    """A fresh database on the server, with AISRE_HOME in a temporary folder."""
    monkeypatch.setenv("AISRE_HOME", str(tmp_path / "home"))
    name = f"aisre_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # an unreachable AISRE_TEST_PG is a skip with its reason, not an error
        admin.dispose()
        pytest.skip(f"PostgreSQL at AISRE_TEST_PG is not usable: {exc}")
    url = make_url(pg_server).set(database=name).render_as_string(hide_password=False)
    monkeypatch.setenv("AISRE_DB", url)
    try:
        yield url
    finally:
        from aisre.store import engine

        engine(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def filled(url: str) -> AuditLog:
    log = AuditLog(url)
    for i in range(1, 6):
        log.log("decision", time=1000.0 + i, case_id="c1", step_id=f"s{i}", target="cart", decision="allow", reasons=[f"reason {i}"])
    return log


def sql(url: str, statement: str) -> None:
    eng = create_engine(url)
    with eng.begin() as conn:
        conn.execute(text(statement))
    eng.dispose()


def test_audit_log_lives_in_aisre_db(pg_url):
    log = filled(pg_url)
    assert AuditLog().engine.dialect.name == "postgresql"  # AISRE_DB points the store here
    assert [r.seq for r in AuditLog().records()] == [1, 2, 3, 4, 5]
    assert log.verify() == []


def test_edit_is_named(pg_url):
    log = filled(pg_url)
    sql(pg_url, "UPDATE audit_records SET body = replace(body, 'reason 2', 'reason x') WHERE seq = 2")
    assert log.verify() == ["record 2 edited: its content no longer matches its hash"]


def test_delete_is_named(pg_url):
    log = filled(pg_url)
    sql(pg_url, "DELETE FROM audit_records WHERE seq = 4")
    assert log.verify() == ["record 4 deleted: record 5 chains to a record that is gone"]


def test_reorder_is_named(pg_url):
    log = filled(pg_url)
    sql(pg_url, "UPDATE audit_records SET seq = -1 WHERE seq = 2")
    sql(pg_url, "UPDATE audit_records SET seq = 2 WHERE seq = 3")
    sql(pg_url, "UPDATE audit_records SET seq = 3 WHERE seq = -1")
    problems = log.verify()
    assert problems and all("out of order" in p for p in problems)
    assert any(p.startswith("record 2 out of order") for p in problems)


def test_insert_is_named(pg_url):
    log = filled(pg_url)
    sql(pg_url, "INSERT INTO audit_records (seq, time, kind, body, prev_hash, hash) "
                "SELECT 6, 1.0, 'approval', '{}', hash, repeat('a', 64) FROM audit_records WHERE seq = 5")  # fmt: skip
    problems = log.verify()
    assert "record 6 inserted after the chain head (record 5)" in problems


@pytest.mark.slow
def test_two_processes_appending_1000_records_each_lose_nothing(pg_url):
    append_concurrently(pg_url, 1000)
    log = AuditLog(pg_url)
    recs = log.records()
    assert [r.seq for r in recs] == list(range(1, 2001))
    for who in ("p1", "p2"):
        assert sorted(int(r.step_id) for r in recs if r.actor == who) == list(range(1000))
    assert log.verify() == []


def test_two_processes_appending_concurrently_quick(pg_url):
    append_concurrently(pg_url, 100)
    log = AuditLog(pg_url)
    assert len(log.records()) == 200 and log.verify() == []
