"""Ids across days: an id accepted on one day is a duplicate on any other. ``accepted_ids``
records the day that holds each id, looked up for a day's ids only (primary-key probes), so
the cost follows the day's ids, not the history held."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import date
from pathlib import Path

import pandas as pd
from sqlalchemy import delete, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fti.db.tables import Base, ValidationRun
from fti.definitions import Source
from fti.features.accounting import bulk_insert
from fti.features.staged import staged_file

# Longer ids are stored by their sha256: PostgreSQL's btree refuses keys above ~2.7 KB.
ID_CHARS = 512
ID_CHUNK = 5000  # ids per IN (...) lookup: below SQLite's 32766 and PostgreSQL's 65535 binds
ACCEPTED_IDS = Base.metadata.tables["accepted_ids"]


def id_text(values: pd.Series) -> list[str]:
    """Ids as ``accepted_ids`` stores them: text (an int64 id as its digits); an id longer than
    ``ID_CHARS`` as ``sha256:<hex>`` of its text."""
    texts = [str(v) for v in values]
    return [
        t if len(t) <= ID_CHARS else "sha256:" + hashlib.sha256(t.encode()).hexdigest()
        for t in texts
    ]


# PostgreSQL: one primary-key probe per id, whatever the planner's statistics say. Without them
# (a table that grew fast, autovacuum not there yet) ``id_value IN (...)`` or ``= ANY(...)`` of
# thousands of ids was planned as a scan of the source's whole history (2-30 s at 5e6 ids).
# LIMIT 1 keeps the subquery a parameterised lookup (the key holds at most one row anyway).
PG_HOLDERS = text(
    "SELECT v.id, a.logical_date FROM unnest(CAST(:ids AS text[])) AS v(id)"
    " CROSS JOIN LATERAL (SELECT logical_date FROM accepted_ids"
    " WHERE source = :source AND id_value = v.id LIMIT 1) AS a"
)


def id_holders(session: Session, source: str, ids: Sequence[str]) -> dict[str, date]:
    """The day that holds each of ``ids`` (those held): primary-key lookups of ``ID_CHUNK``
    ids a query, so the cost follows the day's ids, not the history held."""
    c = ACCEPTED_IDS.c
    postgres = session.get_bind().dialect.name == "postgresql"
    held: dict[str, date] = {}
    for start in range(0, len(ids), ID_CHUNK):
        chunk = list(ids[start : start + ID_CHUNK])
        found = (
            session.execute(PG_HOLDERS, {"ids": chunk, "source": source})
            if postgres
            else session.execute(
                select(c.id_value, c.logical_date).where(c.source == source, c.id_value.in_(chunk))
            )
        )
        held.update((value, day) for value, day in found)
    return held


def remember_ids(session: Session, source: str, day: date, ids: Iterable[str]) -> None:
    """Record that ``day`` holds ``ids`` (one bulk write; an id held already is a bug)."""
    bulk_insert(
        session,
        "accepted_ids",
        ["source", "id_value", "logical_date"],
        ((source, i, day.isoformat()) for i in ids),
    )


def lock_ids(session: Session, source: str) -> None:
    """Hold the source's ids until the transaction ends, so two days validated at once on
    PostgreSQL cannot both take one id (SQLite's write transactions already queue up)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"fti-ids:{source}"}
        )


def forget_ids(session: Session, source: str, day: date) -> None:
    """Drop the ids a day holds (before it is validated again, or when it is rejected)."""
    c = ACCEPTED_IDS.c
    session.execute(delete(ACCEPTED_IDS).where(c.source == source, c.logical_date == day))


def record_history_ids(session: Session, source: Source, staging_root: Path) -> None:
    """Record the ids of days validated before ``accepted_ids`` existed (migration 0008), from
    their staged events, once; an id two such days both hold stays with the first."""
    unrecorded = (
        (ValidationRun.source == source.name)
        & ValidationRun.ids_recorded.is_(False)
        & (ValidationRun.status == "accepted")
    )
    pending = session.scalars(
        select(ValidationRun.logical_date).where(unrecorded).order_by(ValidationRun.logical_date)
    ).all()
    if not pending:
        return
    if source.id_column is not None:
        dialect = session.get_bind().dialect.name
        upsert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(ACCEPTED_IDS)
        for day in pending:
            path = staged_file(staging_root, source, day)
            if not path.exists():
                continue
            ids = id_text(pd.read_parquet(path, columns=[source.id_column])[source.id_column])
            rows = [{"source": source.name, "id_value": i, "logical_date": day} for i in ids]
            if rows:
                session.execute(upsert.on_conflict_do_nothing(), rows)
    session.execute(update(ValidationRun).where(unrecorded).values(ids_recorded=True))
