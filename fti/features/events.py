"""Validated events: raw files checked row by row, staged as Parquet, accounted for in SQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy import delete
from sqlalchemy.orm import Session

from fti.db.tables import QuarantinedRow, ValidationRun
from fti.errors import QuarantineThresholdError
from fti.project import Source
from fti.validation import ValidationResult, validate_file


def raw_file(raw_root: Path, source_name: str, day: date) -> Path:
    """Where the raw file of a source for one logical date lives: ``<raw>/<source>/<date>.csv``."""
    return raw_root / source_name / f"{day.isoformat()}.csv"


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


def validate_and_stage(
    session: Session,
    source: Source,
    raw_root: Path,
    staging_root: Path,
    day: date,
    run_id: str,
    max_quarantine_share: float,
) -> ValidationResult:
    """Validate one day's raw file, record its accounting, and stage the accepted rows.

    Raises:
        InputFileError: the file cannot be used at all.
        QuarantineThresholdError: too many bad rows; accounting is recorded, nothing is staged.
    """
    result = validate_file(raw_file(raw_root, source.name, day), source, day)
    record_validation(session, source, day, result, run_id)
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
    """Validated events of the days in [first, last] that have been staged."""
    frames = []
    day = first
    while day <= last:
        path = staged_file(staging_root, source, day)
        if path.exists():
            frames.append(pd.read_parquet(path))
        day += timedelta(days=1)
    if not frames:
        return pd.DataFrame(columns=source.columns)
    return pd.concat(frames, ignore_index=True)
