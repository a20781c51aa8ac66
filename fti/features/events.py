"""Validated events: raw files checked row by row, staged as Parquet, accounted for in SQL.

One validation of a day's file ends in one of two states, recorded in ``validation_runs``:

- accepted: its good rows are staged (``staged_file``), its ids are recorded in
  ``accepted_ids``, its bad rows are in ``quarantined_rows`` (and a Parquet copy);
- rejected (unreadable, or too many bad rows): its staged events and ids are removed, the
  record says why, and the error is raised after the record is committed.

Across days, an id accepted on one day is a duplicate on any other (``accepted_ids``, looked
up for the day's ids only). Rows re-admitted by hand (``readmissions``) are put back in place
of their raw line before every validation of their day, so a rerun keeps them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Text, cast, delete, func, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fti.db.tables import (
    Base,
    QuarantinedRow,
    Readmission,
    RetiredQuarantineIds,
    ValidationRun,
)
from fti.definitions import Entity, Source
from fti.errors import FtiError, InputFileError, QuarantineThresholdError
from fti.features.shards import SLOT_COLUMN, SLOT_KEY, Shard, slots_of
from fti.validation import (
    QUARANTINE_COLUMNS,
    QUARANTINE_SAMPLE,
    RawRows,
    ValidationResult,
    empty_rows,
    is_over_threshold,
    read_raw_file,
    validate_file,
    validate_frame,
)

log = logging.getLogger(__name__)

# What the quarantine table's columns hold at most (String(200), String(500)): a rule quoting a
# very long raw value is cut, with an ellipsis; raw_values keeps the whole value.
COLUMN_CHARS, RULE_CHARS = 200, 500
# Longer ids are stored by their sha256: PostgreSQL's btree refuses keys above ~2.7 KB.
ID_CHARS = 512
STAGED_ROW_GROUP = 64 * 1024  # rows: a shard of a big day reads a few row groups, not all
ID_CHUNK = 5000  # ids per IN (...) lookup: below SQLite's 32766 and PostgreSQL's 65535 binds
ACCEPTED_IDS = Base.metadata.tables["accepted_ids"]
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


def raw_file(raw_root: Path, source: Source, day: date) -> Path:
    """Where a source's raw file of one logical date lives: ``<raw>/<name>/<date>.<format>``."""
    return raw_root / source.name / f"{day.isoformat()}.{source.format}"


def staged_file(staging_root: Path, source: Source, day: date) -> Path:
    return staging_root / "validated" / source.name / f"{day.isoformat()}.parquet"


def quarantine_file(root: Path, source: str, day: date) -> Path:
    """``<store>/quarantine/<source>/<date>.parquet``: a day's quarantined rows (ignored by git)."""
    return root / source / f"{day.isoformat()}.parquet"


# ---- accounting and quarantine records -------------------------------------------------------
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
        ids_recorded=True,
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
    """Rewrite the Parquet copy of one file's quarantined rows from the table (atomically)."""
    q = QUARANTINED.c
    rows = session.execute(
        select(q.id, q.file, q.row_number, q.column, q.rule, cast(q.raw_values, Text))
        .where(q.validation_run_id == run.id)
        .order_by(q.row_number)
    ).all()
    columns = list(zip(*rows, strict=True)) or [()] * len(COPY_SCHEMA)
    table = pa.table(
        [
            pa.array(list(values), field.type)
            for values, field in zip(columns, COPY_SCHEMA, strict=True)
        ],
        schema=COPY_SCHEMA,
    )
    target = quarantine_file(root, run.source, run.logical_date)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(target)
    return target


# ---- ids across days ---------------------------------------------------------------------------
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


def accepted_lines(raw: pd.DataFrame, result: ValidationResult) -> list[int]:
    """The raw line (or row) of each accepted row, in the accepted frame's order."""
    bad = set(int(n) for n in result.quarantined["row_number"])
    lines = [int(i) for i in raw.index if int(i) not in bad]
    assert len(lines) == result.rows_accepted, "accepted rows are the raw rows not quarantined"
    return lines


def quarantine_repeats(
    session: Session, source: Source, result: ValidationResult, raw: pd.DataFrame | None
) -> ValidationResult:
    """Move the accepted rows whose id another day holds to quarantine: rule
    ``<id_column>: duplicate of <that day>``. ``raw`` is the text the rows were validated from
    (read again from the file only when a repeat is found)."""
    if source.id_column is None or result.accepted.empty:
        return result
    ids = id_text(result.accepted[source.id_column])
    held = id_holders(session, source.name, ids)
    if not held:
        return result
    if raw is None:
        raw = read_raw_file(result.file, source).frame
    lines = accepted_lines(raw, result)
    repeat = [i in held for i in ids]
    records = pd.DataFrame(
        [
            {
                "row_number": line,
                "column": source.id_column,
                "rule": f"{source.id_column}: duplicate of {held[value].isoformat()}",
                "raw_values": json.dumps(
                    {k: (None if pd.isna(v) else v) for k, v in raw.loc[line].items()}
                ),
            }
            for line, value, again in zip(lines, ids, repeat, strict=True)
            if again
        ],
        columns=QUARANTINE_COLUMNS,
    )
    quarantined = pd.concat([result.quarantined, records], ignore_index=True)
    return replace(
        result,
        accepted=result.accepted[[not r for r in repeat]].reset_index(drop=True),
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
    lock_ids(session, source.name)
    forget_ids(session, source.name, day)
    run = record_validation(session, source, day, path, outcome, run_id)
    write_copy(session, run, quarantine_root)
    staged_file(staging_root, source, day).unlink(missing_ok=True)  # before the commit: safe
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
    ``quarantine_min_rows``. ``entity``: whose key the staged rows are sorted by, for shards
    (``write_staged``).

    Raises:
        InputFileError: the file cannot be used at all. The rejection is recorded and
            committed first, the day's staged events removed.
        QuarantineThresholdError: too many bad rows; likewise, with a sample of them kept.
    """
    path = raw_file(raw_root, source, day)
    record_history_ids(session, source, staging_root)
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
    lock_ids(session, source.name)
    forget_ids(session, source.name, day)  # the day keeps its own ids; other days' count
    if not result.over_threshold:
        result = quarantine_repeats(session, source, result, raw)
    bad = result.rows_bad if result.over_threshold else result.rows_quarantined
    if result.over_threshold or is_over_threshold(
        bad, result.rows_read, max_quarantine_share, quarantine_min_rows
    ):
        message = threshold_message(
            path,
            bad,
            result.rows_read,
            max_quarantine_share,
            quarantine_min_rows,
            result.over_threshold,
        )
        sample = result.quarantined.head(QUARANTINE_SAMPLE)
        outcome = Outcome("rejected", result.rows_read, 0, bad, sample, reason=message)
        reject(session, source, day, path, outcome, run_id, staging_root, quarantine_root)
        raise QuarantineThresholdError(message)
    if source.id_column is not None:
        remember_ids(session, source.name, day, id_text(result.accepted[source.id_column]))
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
    write_staged(staged_file(staging_root, source, day), result.accepted, entity)
    return result


def write_staged(target: Path, events: pd.DataFrame, entity: Entity | None) -> None:
    """Stage a day's accepted events (atomically), sorted by the slot of ``entity``'s key
    (``SLOT_COLUMN``, in row groups of ``STAGED_ROW_GROUP`` rows) so that one shard's entities
    are read with Parquet pushdown; without an entity (the source has no entity key column)
    as they are."""
    table = pa.Table.from_pandas(events, preserve_index=False)
    if entity is not None and entity.key in events.columns:
        slots = slots_of(table.column(entity.key), entity.dtype)
        order = np.argsort(slots, kind="stable")
        table = table.take(order).append_column(SLOT_COLUMN, pa.array(slots[order], pa.int16()))
        metadata = (table.schema.metadata or {}) | {
            SLOT_KEY: f"{entity.key}:{entity.dtype}".encode()
        }
        table = table.replace_schema_metadata(metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, row_group_size=STAGED_ROW_GROUP)
    tmp.replace(target)


def read_staged(
    path: Path, shard: Shard | None = None, entity: Entity | None = None
) -> pd.DataFrame:
    """A day's staged events (of ``shard``'s entities of ``entity`` only, when given)."""
    return staged_table(path, shard, entity).to_pandas()


def staged_table(path: Path, shard: Shard | None = None, entity: Entity | None = None) -> pa.Table:
    """A day's staged events as Arrow (of ``shard``'s entities of ``entity`` only, when given).

    A file staged sorted by the slots of ``entity``'s key is read with pushdown (only the row
    groups holding the shard's slots); any other (staged before shards, or by another key)
    is read whole and filtered, so the result is the same either way.
    """
    if shard is None or shard.whole or entity is None:
        return _without_slots(pq.read_table(path))
    first, end = shard.slots
    if (pq.read_schema(path).metadata or {}).get(SLOT_KEY) == _slot_key(entity):
        filters = [(SLOT_COLUMN, ">=", first), (SLOT_COLUMN, "<", end)]
        return _without_slots(pq.read_table(path, filters=filters))
    table = _without_slots(pq.read_table(path))
    if entity.key not in table.column_names:
        raise FtiError(
            f"{path}: no column {entity.key!r} to split {entity.name!r} entities into shards; "
            "give the group one shard (params.yaml shards.groups)"
        )
    return table.filter(shard.holds(slots_of(table.column(entity.key), entity.dtype)))


def _slot_key(entity: Entity) -> bytes:
    return f"{entity.key}:{entity.dtype}".encode()


def staged_entity(path: Path) -> Entity | None:
    """The entity whose key a staged file is sorted by (None: not sorted by one)."""
    if not path.exists():
        return None
    said = (pq.read_schema(path).metadata or {}).get(SLOT_KEY)
    if said is None:
        return None
    key, _, dtype = said.decode().rpartition(":")
    return Entity(key, key=key, dtype="string" if dtype == "string" else "int64")


def _without_slots(table: pa.Table) -> pa.Table:
    return table.drop_columns([SLOT_COLUMN]) if SLOT_COLUMN in table.column_names else table


def load_events(
    staging_root: Path,
    source: Source,
    first: date,
    last: date,
    shard: Shard | None = None,
    entity: Entity | None = None,
) -> pd.DataFrame:
    """Validated rows of the days in [first, last] that have been staged (of the entities of
    ``entity`` in ``shard`` only, when given: see ``staged_table``).

    With none, an empty frame of the source's columns in their validated dtypes (time columns
    are UTC datetimes), never an untyped one.
    """
    tables = []
    day = first
    while day <= last:
        path = staged_file(staging_root, source, day)
        if path.exists():
            table = staged_table(path, shard, entity)
            if table.num_rows:
                tables.append(table)
        day += timedelta(days=1)
    if not tables:
        return empty_rows(source)
    return pa.concat_tables(tables, promote_options="default").to_pandas()
