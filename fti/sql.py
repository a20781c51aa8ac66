"""Read-only SQL against fti's database, enforced by the database itself."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from fti.db.engine import get_engine
from fti.errors import FtiError, ReadOnlyQueryError


def run_read_only(url: str, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run ``query`` in a read-only transaction and return (column names, rows).

    PostgreSQL runs it in a ``READ ONLY`` transaction; SQLite with ``PRAGMA query_only``.
    Any write, DDL or multi-statement trick is refused by the database and rolled back.
    """
    engine = get_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        try:
            if sqlite:
                connection.exec_driver_sql("PRAGMA query_only = ON")
            else:
                connection.exec_driver_sql("SET TRANSACTION READ ONLY")
            result = connection.execute(text(query))
            columns = list(result.keys()) if result.returns_rows else []
            rows = [tuple(r) for r in result] if result.returns_rows else []
        except DBAPIError as exc:
            connection.rollback()
            message = str(exc.orig).strip().splitlines()[0]
            if (
                "readonly" in message.replace("-", "").replace(" ", "").lower()
                or "read-only" in message
            ):
                raise ReadOnlyQueryError(f"fti sql is read-only: {message}") from exc
            raise FtiError(f"query failed: {message}") from exc
        finally:
            connection.rollback()
            if sqlite:
                connection.exec_driver_sql("PRAGMA query_only = OFF")
    return columns, rows
