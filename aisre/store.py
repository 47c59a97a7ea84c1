"""Where aisre keeps its data, and the embedded store (SQLAlchemy 2).

The home folder holds the store, the dataset cache, the incident memory, the audit log and
trained models. ``AISRE_HOME`` moves it; ``AISRE_DB`` points the store at another database
(``postgresql+psycopg://...``); ``AISRE_CACHE`` moves the dataset cache.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from aisre.errors import StoreError

__all__ = ["cache_dir", "database_url", "engine", "home"]


def home() -> Path:
    """Return the aisre home folder (``$AISRE_HOME`` or ``~/.local/share/aisre``), created if absent.

    Raises:
        StoreError: when the folder cannot be created.
    """
    path = Path(os.environ.get("AISRE_HOME") or Path.home() / ".local" / "share" / "aisre")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the aisre home {path}: {exc.strerror}") from exc
    return path


def cache_dir() -> Path:
    """Return the dataset cache folder (``$AISRE_CACHE`` or ``$AISRE_HOME/cache``), created if absent.

    Raises:
        StoreError: when the folder cannot be created.
    """
    path = Path(os.environ.get("AISRE_CACHE") or home() / "cache")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the dataset cache {path}: {exc.strerror}") from exc
    return path


def database_url() -> str:
    """Return the store's SQLAlchemy URL: ``$AISRE_DB`` or a SQLite file in the home folder."""
    return os.environ.get("AISRE_DB") or f"sqlite:///{home() / 'aisre.db'}"


def engine(url: str | None = None) -> Engine:
    """Return a SQLAlchemy engine for *url* (default :func:`database_url`), one per URL.

    SQLite runs in WAL mode with a busy timeout so concurrent writers wait instead of failing.

    Raises:
        StoreError: when the URL is malformed or its driver is not installed.
    """
    return _engine(url or database_url())


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    try:
        if url.startswith("sqlite"):
            eng = create_engine(url, connect_args={"timeout": 30})

            @event.listens_for(eng, "connect")
            def _sqlite_pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
                cur = dbapi_conn.cursor()
                cur.execute("PRAGMA journal_mode=WAL")
                cur.execute("PRAGMA busy_timeout=30000")
                cur.close()

            return eng
        return create_engine(url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open the store at {url.split('@')[-1]}: {exc}") from exc
