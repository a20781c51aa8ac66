"""Engines and transactions for fti's database (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _on_sqlite_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    # fti issues BEGIN itself (see _on_sqlite_begin), so SAVEPOINTs and write locks behave.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _on_sqlite_begin(connection) -> None:  # type: ignore[no-untyped-def]
    # A write transaction takes SQLite's write lock at BEGIN (IMMEDIATE), so two writers queue
    # up (busy_timeout) instead of both reading a value and one failing when it upgrades.
    mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
    connection.exec_driver_sql(f"BEGIN {mode}")


@lru_cache(maxsize=8)
def get_engine(url: str) -> Engine:
    """One pooled engine per database URL for the life of the process."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True)


@contextmanager
def session_scope(url: str, write: bool = False) -> Iterator[Session]:
    """A session that commits when the block ends and rolls back when it raises.

    ``write=True`` for every transaction that writes: on SQLite it takes the write lock up
    front (``BEGIN IMMEDIATE``), so concurrent writers wait for each other (busy timeout)
    instead of one failing at once when it upgrades a read lock; PostgreSQL relies on row
    locks and constraints.
    """
    factory = sessionmaker(get_engine(url), expire_on_commit=False)
    with factory.begin() as session:
        if write:
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
