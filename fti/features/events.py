"""Validated events: raw files checked row by row, staged as Parquet, accounted for in SQL.

One validation of a day's file ends in one of two states, recorded in ``validation_runs``:

- accepted: its good rows are staged (``staged_file``, with the hashes of its ids beside
  them), its bad rows are in ``quarantined_rows`` (and a Parquet copy);
- rejected (unreadable, or too many bad rows): its staged events and ids are removed, the
  record says why, and the error is raised after the record is committed.

Across days, an id accepted on one day is a duplicate on any other (``fti.features.accepted_ids``:
the other days' staged ids, read one day at a time). Rows re-admitted by hand (``readmissions``) are put back in place
of their raw line before every validation of their day, so a rerun keeps them.

The accounting records are written by ``fti.features.accounting``, the ids across days kept by
``fti.features.accepted_ids`` and the staged events written and read by
``fti.features.staged``; this module validates a day's file and ties them together.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import (
    Readmission,
)
from fti.definitions import Entity, Source
from fti.errors import InputFileError, QuarantineThresholdError
from fti.features.accepted_ids import id_holders, lock_ids, remember_ids
from fti.features.accounting import (  # quarantine_file: for its users, who import it from here
    Outcome,
    quarantine_file,  # noqa: F401
    record_validation,
    write_copy,
)
from fti.features.staged import (  # load_events: for its users, who import it from here
    ids_file,
    load_events,  # noqa: F401
    staged_file,
    write_staged,
)
from fti.validation import (
    QUARANTINE_COLUMNS,
    QUARANTINE_SAMPLE,
    RawRows,
    ValidationResult,
    is_over_threshold,
    read_raw_file,
    validate_file,
    validate_frame,
)

log = logging.getLogger(__name__)


def raw_file(raw_root: Path, source: Source, day: date) -> Path:
    """Where a source's raw file of one logical date lives: ``<raw>/<name>/<date>.<format>``."""
    return raw_root / source.name / f"{day.isoformat()}.{source.format}"


# ---- ids across days ---------------------------------------------------------------------------
def accepted_lines(raw: pd.DataFrame, result: ValidationResult) -> list[int]:
    """The raw line (or row) of each accepted row, in the accepted frame's order."""
    bad = set(int(n) for n in result.quarantined["row_number"])
    lines = [int(i) for i in raw.index if int(i) not in bad]
    assert len(lines) == result.rows_accepted, "accepted rows are the raw rows not quarantined"
    return lines


def quarantine_repeats(
    session: Session,
    source: Source,
    day: date,
    result: ValidationResult,
    raw: pd.DataFrame | None,
    staging_root: Path,
) -> ValidationResult:
    """Move the accepted rows whose id another day holds to quarantine: rule
    ``<id_column>: duplicate of <that day>``. ``raw`` is the text the rows were validated from
    (read again from the file only when a repeat is found)."""
    if source.id_column is None or result.accepted.empty:
        return result
    held = id_holders(session, staging_root, source, day, result.accepted[source.id_column])
    if not held:
        return result
    if raw is None:
        raw = read_raw_file(result.file, source).frame
    lines = accepted_lines(raw, result)
    records = pd.DataFrame(
        [
            {
                "row_number": lines[position],
                "column": source.id_column,
                "rule": f"{source.id_column}: duplicate of {holder.isoformat()}",
                "raw_values": json.dumps(
                    {k: (None if pd.isna(v) else v) for k, v in raw.loc[lines[position]].items()}
                ),
            }
            for position, holder in sorted(held.items())
        ],
        columns=QUARANTINE_COLUMNS,
    )
    repeat = np.zeros(result.rows_accepted, dtype=bool)
    repeat[list(held)] = True
    quarantined = pd.concat([result.quarantined, records], ignore_index=True)
    return replace(
        result,
        accepted=result.accepted[~repeat].reset_index(drop=True),
        quarantined=quarantined.sort_values("row_number", kind="stable", ignore_index=True),
        rows_bad=result.rows_bad + len(records),
    )


# ---- re-admissions ----------------------------------------------------------------------------
def day_readmissions(session: Session, source: Source, day: date) -> list[Readmission]:
    return list(
        session.scalars(
            select(Readmission)
            .where(Readmission.source == source.name, Readmission.logical_date == day)
            .order_by(Readmission.row_number)
        )
    )


def _raw_values(row: pd.Series, columns: Sequence[str]) -> dict[str, Any]:
    return {c: (None if pd.isna(row[c]) else str(row[c])) for c in columns}


def apply_readmissions(
    raw: RawRows, source: Source, fixes: Sequence[Readmission]
) -> tuple[RawRows, set[int]]:
    """Put each re-admitted row in place of its raw line, where the file still holds the
    original there; a fix whose line changed (the file was corrected) is marked ``stale``
    and logged. Returns the rows to validate and the lines replaced."""
    frame, malformed = raw.frame.copy(), {m[0]: m for m in raw.malformed}
    applied = set()
    for fix in fixes:
        line = fix.row_number
        if "line" in fix.original:  # a line that could not be split into fields
            still = line in malformed and fix.original == {"line": malformed[line][2]}
        else:
            original = {c: fix.original.get(c) for c in source.columns}
            still = line in frame.index and _raw_values(frame.loc[line], source.columns) == original
        if not still:
            fix.status = "stale"
            log.warning(
                "%s: line %s is no longer the row re-admitted on %s (the file changed); the "
                "re-admission no longer applies, the line is validated as it is now",
                fix.file,
                line,
                fix.readmitted_at.date(),
            )
            continue
        malformed.pop(line, None)
        frame.loc[line] = [fix.fixed.get(c) for c in source.columns]
        fix.status = "applied"
        applied.add(line)
    return RawRows(frame.sort_index(), sorted(malformed.values())), applied


# ---- one day's file ---------------------------------------------------------------------------
def _validate(
    path: Path,
    source: Source,
    day: date,
    share: float,
    min_rows: int,
    fixes: Sequence[Readmission],
) -> tuple[ValidationResult, pd.DataFrame | None, int]:
    """Validate a file, with its re-admissions applied when it has any. Returns the result,
    the raw text validated (None when not kept) and how many accepted rows were re-admitted."""
    if not fixes:
        return validate_file(path, source, day, share, min_rows), None, 0
    raw, applied = apply_readmissions(read_raw_file(path, source), source, fixes)
    result = validate_frame(raw.frame, source, day, path, raw.malformed, share, min_rows)
    if result.over_threshold:
        return result, raw.frame, 0
    readmitted = len(applied & set(accepted_lines(raw.frame, result)))
    return result, raw.frame, readmitted


def threshold_message(
    path: Path, bad: int, rows_read: int, share: float, min_rows: int, early: bool
) -> str:
    return (
        f"{path}: {'at least ' if early else ''}{bad} of {rows_read} rows ({bad / rows_read:.1%}) "
        f"broke a rule, above FTI_MAX_QUARANTINE_SHARE={share} and more than "
        f"FTI_QUARANTINE_MIN_ROWS={min_rows}; see `fti quarantine list`, fix the file and rerun"
    )


def none_accepted_message(path: Path, source: Source, day: date, result: ValidationResult) -> str:
    first = result.quarantined.iloc[0]
    return (
        f"{path}: none of its {result.rows_read} rows was accepted (the first, line "
        f"{first['row_number']}, broke {first['rule']}); see `fti quarantine export --source "
        f"{source.name} --date {day}`, fix the file and rerun"
    )


def reject(
    session: Session,
    source: Source,
    day: date,
    path: Path,
    outcome: Outcome,
    run_id: str,
    staging_root: Path,
    quarantine_root: Path,
) -> None:
    """Record a rejected file and commit: its day's staged events and ids are removed (no
    build uses a file that was not accepted; a rerun validates it again), the previous
    accounting and quarantine records are replaced by this attempt's."""
    run = record_validation(session, source, day, path, outcome, run_id)
    write_copy(session, run, quarantine_root)
    staged = staged_file(staging_root, source, day)
    ids_file(staged).unlink(missing_ok=True)  # before the commit: safe
    staged.unlink(missing_ok=True)
    session.commit()


def validate_and_stage(
    session: Session,
    source: Source,
    raw_root: Path,
    staging_root: Path,
    day: date,
    run_id: str,
    max_quarantine_share: float,
    quarantine_root: Path,
    *,
    quarantine_min_rows: int,
    entity: Entity | None = None,
) -> ValidationResult:
    """Validate one day's raw file, record its accounting and quarantine (the table and a
    Parquet copy under ``quarantine_root``), and stage the accepted rows.

    The day's re-admitted rows replace their raw lines first; an accepted id another day holds
    is quarantined as a duplicate of that day. A day of no rows (``missing_day="empty"``: no
    file, or a header alone) is recorded with 0 rows against the expected path and stages an
    empty, typed Parquet file. The file is rejected when its bad rows (cross-day duplicates
    included) are more than ``max_quarantine_share`` of the rows read and more than
    ``quarantine_min_rows``, or when it has rows and none of them is accepted (whatever the
    counts: a day of rows that all broke a rule is a bad file, not an empty day).
    ``entity``: whose key the staged rows are sorted by, for shards (``write_staged``).

    Raises:
        InputFileError: the file cannot be used at all. The rejection is recorded and
            committed first, the day's staged events removed.
        QuarantineThresholdError: too many bad rows, or no good one; likewise, with a sample
            of them kept.
    """
    path = raw_file(raw_root, source, day)
    fixes = day_readmissions(session, source, day)
    try:
        result, raw, readmitted = _validate(
            path, source, day, max_quarantine_share, quarantine_min_rows, fixes
        )
    except InputFileError as exc:
        failed = Outcome("rejected", None, 0, 0, pd.DataFrame(columns=QUARANTINE_COLUMNS))
        reject(
            session,
            source,
            day,
            path,
            replace(failed, reason=str(exc)),
            run_id,
            staging_root,
            quarantine_root,
        )
        raise
    lock_ids(session, source.name)  # other days' ids stay as they are until this one is in
    if not result.over_threshold:
        result = quarantine_repeats(session, source, day, result, raw, staging_root)
    bad = result.rows_bad if result.over_threshold else result.rows_quarantined
    too_many = result.over_threshold or is_over_threshold(
        bad, result.rows_read, max_quarantine_share, quarantine_min_rows
    )
    if too_many or (result.rows_read > 0 and result.rows_accepted == 0):
        message = (
            threshold_message(
                path,
                bad,
                result.rows_read,
                max_quarantine_share,
                quarantine_min_rows,
                result.over_threshold,
            )
            if too_many
            else none_accepted_message(path, source, day, result)
        )
        sample = result.quarantined.head(QUARANTINE_SAMPLE)
        outcome = Outcome("rejected", result.rows_read, 0, bad, sample, reason=message)
        reject(session, source, day, path, outcome, run_id, staging_root, quarantine_root)
        raise QuarantineThresholdError(message)
    outcome = Outcome(
        "accepted",
        result.rows_read,
        result.rows_accepted,
        result.rows_quarantined,
        result.quarantined,
        rows_readmitted=readmitted,
    )
    run = record_validation(session, source, day, path, outcome, run_id)
    write_copy(session, run, quarantine_root)
    staged = staged_file(staging_root, source, day)
    write_staged(staged, result.accepted, entity)
    if source.id_column is not None:
        remember_ids(staged, result.accepted[source.id_column])
    return result
