"""The accounting of one validation of a file: its ``validation_runs`` record and its quarantine
records, replaced together by a rerun (the ids of the records replaced are retired, never
handed out again), written with the database's fast path, and their Parquet copy under the
store's ``quarantine/`` folder."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Text, cast, delete, func, select
from sqlalchemy.orm import Session

from fti.db.tables import Base, QuarantinedRow, RetiredQuarantineIds, ValidationRun
from fti.definitions import Source

# What the quarantine table's columns hold at most (String(200), String(500)): a rule quoting a
# very long raw value is cut, with an ellipsis; raw_values keeps the whole value.
COLUMN_CHARS, RULE_CHARS = 200, 500
QUARANTINED = Base.metadata.tables["quarantined_rows"]
# The Parquet copy of a file's quarantined rows (raw_values: the JSON text of the row's values).
COPY_SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("file", pa.string()),
        ("row_number", pa.int64()),
        ("column", pa.string()),
        ("rule", pa.string()),
        ("raw_values", pa.string()),
    ]
)


def quarantine_file(root: Path, source: str, day: date) -> Path:
    """``<store>/quarantine/<source>/<date>.parquet``: a day's quarantined rows (ignored by git;
    none for a day without any)."""
    return root / source / f"{day.isoformat()}.parquet"


@dataclass(frozen=True)
class Outcome:
    """What one validation of a file found, as ``validation_runs`` records it."""

    status: str  # accepted | rejected
    rows_read: int | None  # None: the file could not be read
    rows_accepted: int
    rows_quarantined: int
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS: the records kept (a sample when rejected)
    rows_readmitted: int = 0
    reason: str | None = None


def record_validation(
    session: Session, source: Source, day: date, file: Path, outcome: Outcome, run_id: str
) -> ValidationRun:
    """Replace the accounting and quarantine records of one file (reruns leave one record).

    The quarantined rows are written with one bulk insert; the ids of the rows replaced are
    retired (remembered, never handed out again) so an old export is told to export again.
    """
    retire_quarantine_ids(session, source.name, str(file))
    session.execute(
        delete(ValidationRun).where(
            ValidationRun.source == source.name, ValidationRun.file == str(file)
        )
    )
    run = ValidationRun(
        source=source.name,
        file=str(file),
        logical_date=day,
        rows_read=outcome.rows_read,
        rows_accepted=outcome.rows_accepted,
        rows_quarantined=outcome.rows_quarantined,
        rows_readmitted=outcome.rows_readmitted,
        status=outcome.status,
        reason=outcome.reason,
        run_id=run_id,
        created_at=datetime.now(UTC),
    )
    session.add(run)
    session.flush()
    insert_quarantined(session, run.id, str(file), outcome.quarantined)
    return run


def insert_quarantined(session: Session, run_id: int, file: str, rows: pd.DataFrame) -> None:
    """A file's quarantine records (``QUARANTINE_COLUMNS`` frame) in one bulk write."""
    bulk_insert(
        session,
        "quarantined_rows",
        ["validation_run_id", "file", "row_number", "column", "rule", "raw_values"],
        (
            (
                run_id,
                file,
                int(line),
                _fit(str(column), COLUMN_CHARS),
                _fit(str(rule), RULE_CHARS),
                _json_text(values),
            )
            for line, column, rule, values in zip(
                rows["row_number"], rows["column"], rows["rule"], rows["raw_values"], strict=True
            )
        ),
    )


def _fit(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_text(values: Any) -> str:
    return values if isinstance(values, str) else json.dumps(values)


def bulk_insert(
    session: Session, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]
) -> None:
    """Rows into ``table`` in the session's transaction by the database's fast path: ``COPY``
    on PostgreSQL, one DBAPI executemany on SQLite. Values as the database reads them from
    text: JSON as its text, dates as ``YYYY-MM-DD`` (what SQLAlchemy stores on SQLite)."""
    connection = session.connection()
    driver = connection.connection.driver_connection
    assert driver is not None
    names = ", ".join(f'"{c}"' for c in columns)
    if connection.dialect.name == "postgresql":
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy,
        ):
            for row in rows:
                copy.write_row(row)
        return
    cursor = driver.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' for _ in columns)})", rows
        )
    finally:
        cursor.close()


def retire_quarantine_ids(session: Session, source: str, file: str) -> None:
    """Remember the range of ids a file's current quarantine records hold, before they go."""
    first, last = session.execute(
        select(func.min(QuarantinedRow.id), func.max(QuarantinedRow.id))
        .join(ValidationRun, QuarantinedRow.validation_run_id == ValidationRun.id)
        .where(ValidationRun.source == source, ValidationRun.file == file)
    ).one()
    if first is not None:
        session.add(
            RetiredQuarantineIds(
                source=source,
                file=file,
                first_id=first,
                last_id=last,
                retired_at=datetime.now(UTC),
            )
        )


def write_copy(session: Session, run: ValidationRun, root: Path) -> Path:
    """Rewrite the Parquet copy of one file's quarantined rows from the table (atomically).

    A file with no quarantined row has no copy (a clean day writes nothing; a rerun or a
    re-admission that leaves none removes the earlier copy).
    """
    q = QUARANTINED.c
    rows = session.execute(
        select(q.id, q.file, q.row_number, q.column, q.rule, cast(q.raw_values, Text))
        .where(q.validation_run_id == run.id)
        .order_by(q.row_number)
    ).all()
    target = quarantine_file(root, run.source, run.logical_date)
    if not rows:
        target.unlink(missing_ok=True)
        return target
    columns = list(zip(*rows, strict=True))
    table = pa.table(
        [
            pa.array(list(values), field.type)
            for values, field in zip(columns, COPY_SCHEMA, strict=True)
        ],
        schema=COPY_SCHEMA,
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(target)
    return target
