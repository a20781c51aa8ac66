"""Validated events: raw files checked row by row, staged as Parquet, accounted for in SQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fti.db.tables import QuarantinedRow, ValidationRun
from fti.definitions import Source
from fti.errors import QuarantineThresholdError
from fti.validation import ValidationResult, empty_rows, validate_file


def raw_file(raw_root: Path, source: Source, day: date) -> Path:
    """Where a source's raw file of one logical date lives: ``<raw>/<name>/<date>.<format>``."""
    return raw_root / source.name / f"{day.isoformat()}.{source.format}"


def staged_file(staging_root: Path, source: Source, day: date) -> Path:
    return staging_root / "validated" / source.name / f"{day.isoformat()}.parquet"


def record_validation(
    session: Session, source: Source, day: date, result: ValidationResult, run_id: str
) -> ValidationRun:
    """Replace the accounting and quarantine of one file (reruns leave one record)."""
    session.execute(
        delete(ValidationRun).where(
            ValidationRun.source == source.name, ValidationRun.file == str(result.file)
        )
    )
    run = ValidationRun(
        source=source.name,
        file=str(result.file),
        logical_date=day,
        rows_read=result.rows_read,
        rows_accepted=result.rows_accepted,
        rows_quarantined=result.rows_quarantined,
        run_id=run_id,
        created_at=datetime.now(UTC),
    )
    session.add(run)
    session.flush()
    session.add_all(
        QuarantinedRow(
            validation_run_id=run.id,
            file=str(result.file),
            row_number=int(q.row_number),
            column=str(q.column),
            rule=str(q.rule),
            raw_values=json.loads(q.raw_values),
        )
        for q in result.quarantined.itertuples()
    )
    return run


def quarantine_file(root: Path, source: str, day: date) -> Path:
    """``<store>/quarantine/<source>/<date>.parquet``: a day's quarantined rows (ignored by git)."""
    return root / source / f"{day.isoformat()}.parquet"


def write_copy(session: Session, run: ValidationRun, root: Path) -> Path:
    """Rewrite the Parquet copy of one file's quarantined rows from the table (atomically)."""
    rows = session.scalars(
        select(QuarantinedRow)
        .where(QuarantinedRow.validation_run_id == run.id)
        .order_by(QuarantinedRow.row_number)
    ).all()
    table = pa.table(
        {
            "id": pa.array([r.id for r in rows], pa.int64()),
            "file": pa.array([r.file for r in rows], pa.string()),
            "row_number": pa.array([r.row_number for r in rows], pa.int64()),
            "column": pa.array([r.column for r in rows], pa.string()),
            "rule": pa.array([r.rule for r in rows], pa.string()),
            "raw_values": pa.array([json.dumps(r.raw_values) for r in rows], pa.string()),
        }
    )
    target = quarantine_file(root, run.source, run.logical_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(target)
    return target


def validate_and_stage(
    session: Session,
    source: Source,
    raw_root: Path,
    staging_root: Path,
    day: date,
    run_id: str,
    max_quarantine_share: float,
    quarantine_root: Path,
) -> ValidationResult:
    """Validate one day's raw file, record its accounting and quarantine (the table and a
    Parquet copy under ``quarantine_root``), and stage the accepted rows.

    A day of no rows (``missing_day="empty"``: no file, or a header alone) is recorded with
    0 rows against the expected path and stages an empty, typed Parquet file.

    Raises:
        InputFileError: the file cannot be used at all.
        QuarantineThresholdError: too many bad rows; accounting is recorded, nothing is staged.
    """
    result = validate_file(raw_file(raw_root, source, day), source, day)
    run = record_validation(session, source, day, result, run_id)
    write_copy(session, run, quarantine_root)
    share = result.rows_quarantined / result.rows_read if result.rows_read else 0.0
    if share > max_quarantine_share:
        session.commit()  # keep the accounting so `fti quarantine list` shows why
        raise QuarantineThresholdError(
            f"{result.file}: {result.rows_quarantined} of {result.rows_read} rows "
            f"({share:.1%}) broke a rule, above FTI_MAX_QUARANTINE_SHARE={max_quarantine_share:.0%}; "
            "see `fti quarantine list`, fix the file and rerun"
        )
    target = staged_file(staging_root, source, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    result.accepted.to_parquet(tmp, index=False)
    tmp.replace(target)
    return result


def load_events(staging_root: Path, source: Source, first: date, last: date) -> pd.DataFrame:
    """Validated rows of the days in [first, last] that have been staged.

    With none, an empty frame of the source's columns in their validated dtypes (time columns
    are UTC datetimes), never an untyped one.
    """
    frames = []
    day = first
    while day <= last:
        path = staged_file(staging_root, source, day)
        if path.exists():
            frame = pd.read_parquet(path)
            if len(frame):
                frames.append(frame)
        day += timedelta(days=1)
    if not frames:
        return empty_rows(source)
    return pd.concat(frames, ignore_index=True)
