"""Listing, showing, exporting and re-admitting quarantined rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fti.db.tables import QuarantinedRow, Readmission, RetiredQuarantineIds, ValidationRun
from fti.definitions import Source
from fti.errors import FtiError
from fti.features.accepted_ids import id_holders, lock_ids, remember_ids
from fti.features.accounting import write_copy
from fti.features.staged import read_staged, staged_entity, staged_file, write_staged
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
    """The newest quarantined rows, each with its file's status (``accepted``, or ``rejected``:
    the rows are a sample of a file that was not used)."""
    query = (
        select(QuarantinedRow, ValidationRun.status)
        .join(ValidationRun, QuarantinedRow.validation_run_id == ValidationRun.id)
        .order_by(QuarantinedRow.id.desc())
        .limit(limit)
    )
    return [as_dict(q) | {"file_status": status} for q, status in session.execute(query)]


def show_row(session: Session, row_id: int) -> dict[str, Any]:
    """One quarantined row with its file's accounting (of an accepted file: rows read =
    accepted + quarantined, of which ``file_rows_readmitted`` accepted by re-admission; of a
    rejected one: the reason)."""
    row = session.get(QuarantinedRow, row_id)
    if row is None:
        raise FtiError(f"no quarantined row {row_id}; `fti quarantine list` shows the ids")
    run = session.get(ValidationRun, row.validation_run_id)
    assert run is not None  # the foreign key guarantees it
    return as_dict(row) | {
        "logical_date": run.logical_date.isoformat(),
        "file_status": run.status,
        "file_reason": run.reason,
        "file_rows_read": run.rows_read,
        "file_rows_accepted": run.rows_accepted,
        "file_rows_quarantined": run.rows_quarantined,
        "file_rows_readmitted": run.rows_readmitted,
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


def refuse_unknown(session: Session, source: Source, unknown: list[int]) -> None:
    """Say why ids of a fixed file name no quarantined row: re-admitted already, from an older
    validation of their file (the day was validated again since the export), or never ours."""
    if not unknown:
        return
    readmitted = set(
        session.scalars(
            select(Readmission.quarantine_id).where(
                Readmission.source == source.name, Readmission.quarantine_id.in_(unknown)
            )
        )
    )
    older: dict[str, list[int]] = {}
    for quarantine_id in sorted(set(unknown) - readmitted):
        files = session.scalars(
            select(RetiredQuarantineIds.file)
            .where(
                RetiredQuarantineIds.source == source.name,
                RetiredQuarantineIds.first_id <= quarantine_id,
                RetiredQuarantineIds.last_id >= quarantine_id,
            )
            .distinct()
        ).all()
        if files:
            older.setdefault(" or ".join(sorted(files)), []).append(quarantine_id)
    unexplained = sorted(set(unknown) - readmitted - {i for ids in older.values() for i in ids})
    reasons = [
        f"quarantine id(s) {ids} are from an older validation of {file}: run fti quarantine "
        "export again"
        for file, ids in older.items()
    ]
    if readmitted:
        reasons.append(f"no quarantined row(s) {sorted(readmitted)}: already re-admitted")
    if unexplained:
        reasons.append(
            f"no quarantined row(s) {unexplained} of source {source.name!r}: start from "
            "`fti quarantine export`"
        )
    raise FtiError("; ".join(reasons))


def refuse_rejected(runs: list[ValidationRun]) -> None:
    rejected = [run for run in runs if run.status == "rejected"]
    if rejected:
        run = rejected[0]
        raise FtiError(
            f"{run.file} was rejected ({run.reason}): its rows cannot be re-admitted; fix the "
            f"file and rerun the feature pipeline for {run.logical_date}"
        )


def record_readmissions(
    session: Session,
    source: Source,
    run: ValidationRun,
    rows: dict[int, tuple[int, dict[str, Any], dict[str, Any]]],
) -> None:
    """Remember re-admitted rows ({line: (quarantine id, original, fixed)}) for the reruns of
    their day. A line re-admitted before, whose fix still applied, keeps its original: the
    quarantined values were the earlier fix, not the file's."""
    earlier = {
        r.row_number: r
        for r in session.scalars(
            select(Readmission).where(
                Readmission.source == source.name,
                Readmission.logical_date == run.logical_date,
                Readmission.row_number.in_(list(rows)),
            )
        )
    }
    now = datetime.now(UTC)
    for line, (quarantine_id, original, fixed) in rows.items():
        row = earlier.get(line)
        if row is None:
            row = Readmission(
                source=source.name,
                logical_date=run.logical_date,
                row_number=line,
                original=original,
            )
            session.add(row)
        elif row.status != "applied":
            row.original = original
        row.file, row.quarantine_id, row.fixed = run.file, quarantine_id, fixed
        row.status, row.readmitted_at = "applied", now


def stage_more(staging_root: Path, source: Source, day: date, rows: pd.DataFrame) -> None:
    """Append accepted rows to a day's staged events (atomically), and their ids to the day's
    id hashes."""
    staged = staged_file(staging_root, source, day)
    events = read_staged(staged) if staged.exists() else rows.iloc[:0]
    both = pd.concat([events, rows] if len(events) else [rows], ignore_index=True)
    write_staged(staged, both, staged_entity(staged))
    if source.id_column is not None:
        remember_ids(staged, both[source.id_column])


def readmit(
    session: Session,
    source: Source,
    fixed: pd.DataFrame,
    staging_root: Path,
    quarantine_root: Path,
) -> dict[str, Any]:
    """Validate fixed rows again, each against its own day's rules; move those that pass.

    ``fixed`` has ``quarantine_id`` and the source's columns (as ``export_rows`` wrote them).
    A row that passes is appended to its day's validated events, its id recorded for its day,
    its quarantine record removed, and the day's accounting moves it from quarantined to
    accepted and counts it readmitted (rows read stay the same). The re-admission is recorded,
    so every later validation of the day (a rerun) accepts the fixed row again. A row that
    still breaks a rule, or whose id a day already holds, stays quarantined; the result says
    which rule.

    Raises:
        FtiError: ids that name no current quarantined row (re-admitted already, or from an
            export older than the day's latest validation), or rows of a rejected file.
    """
    missing = [c for c in ["quarantine_id", *source.columns] if c not in fixed.columns]
    if missing:
        raise FtiError(
            f"the fixed rows lack column(s) {', '.join(missing)}; start from `fti quarantine export`"
        )
    fixed = fixed.assign(quarantine_id=fixed["quarantine_id"].astype(int))
    repeated = sorted(set(fixed["quarantine_id"][fixed["quarantine_id"].duplicated()]))
    if repeated:
        raise FtiError(f"quarantine id(s) {repeated} appear more than once in the fixed rows")
    records = {
        r.id: r
        for r in session.scalars(
            select(QuarantinedRow)
            .join(ValidationRun, QuarantinedRow.validation_run_id == ValidationRun.id)
            .where(
                QuarantinedRow.id.in_(fixed["quarantine_id"].tolist()),
                ValidationRun.source == source.name,  # another source's ids are unknown here
            )
        )
    }
    refuse_unknown(session, source, sorted(set(fixed["quarantine_id"]) - set(records)))
    runs = {
        run.id: run
        for run in session.scalars(
            select(ValidationRun).where(
                ValidationRun.id.in_({r.validation_run_id for r in records.values()})
            )
        )
    }
    refuse_rejected(list(runs.values()))
    admitted, still_bad = 0, []
    for run_id, rows in fixed.groupby(
        fixed["quarantine_id"].map(lambda i: records[i].validation_run_id)
    ):
        run = runs[int(run_id)]
        passed, bad = readmit_rows(session, source, run, rows, records, staging_root)
        for quarantine_id in rows["quarantine_id"]:
            line = records[quarantine_id].row_number
            if line in bad:
                still_bad.append({"quarantine_id": quarantine_id, "line": line, "rule": bad[line]})
        admitted += passed
        session.flush()
        write_copy(session, run, quarantine_root)
    return {"readmitted": admitted, "still_quarantined": still_bad}


def readmit_rows(
    session: Session,
    source: Source,
    run: ValidationRun,
    rows: pd.DataFrame,
    records: dict[int, QuarantinedRow],
    staging_root: Path,
) -> tuple[int, dict[int, str]]:
    """Re-admit the fixed rows of one file: returns how many passed and {line: rule} of the
    rest."""
    text = rows[source.columns].astype("str").where(rows[source.columns].notna(), None)
    text.index = pd.Index([records[i].row_number for i in rows["quarantine_id"]], name="line")
    result = validate_frame(text, source, run.logical_date, Path(run.file))
    bad = {int(q.row_number): str(q.rule) for q in result.quarantined.itertuples()}
    lines = [line for line in text.index if line not in bad]  # accepted's order
    if source.id_column is not None:
        lock_ids(session, source.name)
        day = run.logical_date
        ids = result.accepted[source.id_column]
        held = id_holders(session, staging_root, source, day, ids, own=True)
        for position, holder in held.items():
            bad[lines[position]] = (
                f"{source.id_column}: unique id (already accepted that day)"
                if holder == day
                else f"{source.id_column}: duplicate of {holder.isoformat()}"
            )
    keep = [line not in bad for line in lines]
    passed = result.accepted[keep]
    admitted = [line for line, ok in zip(lines, keep, strict=True) if ok]
    quarantine_ids = dict(zip(text.index, rows["quarantine_id"], strict=True))
    record_readmissions(
        session,
        source,
        run,
        {
            line: (
                int(quarantine_ids[line]),
                records[quarantine_ids[line]].raw_values,
                {c: (None if pd.isna(v) else str(v)) for c, v in text.loc[line].items()},
            )
            for line in admitted
        },
    )
    if admitted:
        session.execute(
            delete(QuarantinedRow).where(
                QuarantinedRow.id.in_([int(quarantine_ids[line]) for line in admitted])
            )
        )
    run.rows_accepted += len(passed)
    run.rows_quarantined -= len(passed)
    run.rows_readmitted += len(passed)
    session.flush()  # the database's checks first: a refused write stages nothing
    if len(passed):
        stage_more(staging_root, source, run.logical_date, passed)
    return len(passed), bad
