"""Listing and showing quarantined rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import QuarantinedRow, ValidationRun
from fti.errors import FtiError


def as_dict(row: QuarantinedRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "file": row.file,
        "row_number": row.row_number,
        "column": row.column,
        "rule": row.rule,
        "raw_values": row.raw_values,
    }


def list_rows(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    query = select(QuarantinedRow).order_by(QuarantinedRow.id.desc()).limit(limit)
    return [as_dict(q) for q in session.scalars(query)]


def show_row(session: Session, row_id: int) -> dict[str, Any]:
    """One quarantined row with its file's accounting (rows read = accepted + quarantined)."""
    row = session.get(QuarantinedRow, row_id)
    if row is None:
        raise FtiError(f"no quarantined row {row_id}; `fti quarantine list` shows the ids")
    run = session.get(ValidationRun, row.validation_run_id)
    assert run is not None  # the foreign key guarantees it
    return as_dict(row) | {
        "logical_date": run.logical_date.isoformat(),
        "file_rows_read": run.rows_read,
        "file_rows_accepted": run.rows_accepted,
        "file_rows_quarantined": run.rows_quarantined,
        "run_id": run.run_id,
    }
