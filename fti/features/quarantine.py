"""Listing quarantined rows."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import QuarantinedRow


def list_rows(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    query = select(QuarantinedRow).order_by(QuarantinedRow.id.desc()).limit(limit)
    return [
        {
            "id": q.id,
            "file": q.file,
            "row_number": q.row_number,
            "column": q.column,
            "rule": q.rule,
            "raw_values": q.raw_values,
        }
        for q in session.scalars(query)
    ]
