"""Listing and showing quarantined rows."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import QuarantinedRow, ValidationRun
from fti.definitions import Source
from fti.errors import FtiError
from fti.features.events import staged_file, write_copy
from fti.validation import validate_frame


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


# ---- the Parquet copy in the store, export and re-admission ------------------------------------
def export_rows(session: Session, source: Source, day: date) -> pd.DataFrame:
    """A day's quarantined rows as ``quarantine_id``, ``line``, ``rule`` and the source's columns,
    ready to be fixed in a spreadsheet and handed back to ``readmit``."""
    query = (
        select(QuarantinedRow)
        .join(ValidationRun, QuarantinedRow.validation_run_id == ValidationRun.id)
        .where(ValidationRun.source == source.name, ValidationRun.logical_date == day)
        .order_by(QuarantinedRow.row_number)
    )
    return pd.DataFrame(
        [
            {"quarantine_id": r.id, "line": r.row_number, "rule": r.rule}
            | {c: r.raw_values.get(c) for c in source.columns}
            for r in session.scalars(query)
        ],
        columns=["quarantine_id", "line", "rule", *source.columns],
    )


def readmit(
    session: Session,
    source: Source,
    fixed: pd.DataFrame,
    staging_root: Path,
    quarantine_root: Path,
) -> dict[str, Any]:
    """Validate fixed rows again, each against its own day's rules; move those that pass.

    ``fixed`` has ``quarantine_id`` and the source's columns (as ``export_rows`` wrote them).
    A row that passes is appended to its day's validated events, its quarantine record is
    removed and the day's accounting moves it from quarantined to accepted (rows read stay the
    same). A row that still breaks a rule stays quarantined; the result says which rule.
    """
    missing = [c for c in ["quarantine_id", *source.columns] if c not in fixed.columns]
    if missing:
        raise FtiError(
            f"the fixed rows lack column(s) {', '.join(missing)}; start from `fti quarantine export`"
        )
    records = {
        r.id: r
        for r in session.scalars(
            select(QuarantinedRow).where(
                QuarantinedRow.id.in_([int(i) for i in fixed["quarantine_id"]])
            )
        )
    }
    unknown = sorted(set(int(i) for i in fixed["quarantine_id"]) - set(records))
    if unknown:
        raise FtiError(
            f"no quarantined row(s) {unknown}: already re-admitted, or from another export"
        )
    admitted, still_bad = 0, []
    fixed = fixed.assign(quarantine_id=fixed["quarantine_id"].astype(int))
    for run_id, rows in fixed.groupby(
        fixed["quarantine_id"].map(lambda i: records[i].validation_run_id)
    ):
        run = session.get(ValidationRun, run_id)
        assert run is not None
        text = rows[source.columns].astype("str").where(rows[source.columns].notna(), None)
        text.index = pd.Index([records[i].row_number for i in rows["quarantine_id"]], name="line")
        result = validate_frame(text, source, run.logical_date, Path(run.file))
        staged = staged_file(staging_root, source, run.logical_date)
        events = pd.read_parquet(staged) if staged.exists() else result.accepted.iloc[:0]
        bad = {int(q.row_number): str(q.rule) for q in result.quarantined.itertuples()}
        accepted_lines = [line for line in text.index if line not in bad]  # accepted's order
        if source.id_column is None:  # no id: nothing can already be there
            taken = np.zeros(len(result.accepted), dtype=bool)
        else:
            taken = result.accepted[source.id_column].isin(events[source.id_column]).to_numpy()
        for line, duplicate in zip(accepted_lines, taken, strict=True):
            if duplicate:
                bad[line] = f"{source.id_column}: unique id (already accepted that day)"
        passed = result.accepted[~taken]
        if len(passed):
            staged.parent.mkdir(parents=True, exist_ok=True)
            tmp = staged.with_suffix(".parquet.tmp")
            both = [events, passed] if len(events) else [passed]  # an empty day: just these
            pd.concat(both, ignore_index=True).to_parquet(tmp, index=False)
            tmp.replace(staged)
        for quarantine_id in rows["quarantine_id"]:
            line = records[quarantine_id].row_number
            if line in bad:
                still_bad.append({"quarantine_id": quarantine_id, "line": line, "rule": bad[line]})
            else:
                session.delete(records[quarantine_id])
                admitted += 1
        run.rows_accepted += len(passed)
        run.rows_quarantined -= len(passed)
        session.flush()
        write_copy(session, run, quarantine_root)
    return {"readmitted": admitted, "still_quarantined": still_bad}
