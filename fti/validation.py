"""Row-level validation of raw files: good rows go on, bad rows go to quarantine with a reason.

pandera does the rule checking (declared next to each project's source); this module turns
its failure cases into one quarantine record per bad row and keeps the accounting
``rows_read == rows_accepted + rows_quarantined`` true by construction.

Why pandera and not Great Expectations: rules are plain Python next to the source definition
(``churn_demo/project.py``), versioned with the code, run in-process on a DataFrame with no
context, store or config files; its lazy validation returns every failure case with its row
index, which is exactly what row-level quarantine needs. Great Expectations' suites, data
contexts and checkpoints would add a second configuration system for the same checks.
Types are parsed here, vectorised, rather than by pandera's coercion, whose per-value failure
path cost about 1.5 s per file.

Every source field counts: CSV and Parquet files become the same text frame (a Parquet column
is turned into text, so both meet exactly the same rules); times without an offset are read in
the source's ``timezone`` and every time is stored in UTC; "inside the logical date" means
inside that day in the source's zone; ``id_column`` (when given) is unique within the file;
``missing_day="empty"`` makes a day without a file, or with a header and no rows, a normal day
of no rows.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fti.definitions import Source
from fti.errors import InputFileError

QUARANTINE_COLUMNS = ["row_number", "column", "rule", "raw_values"]
UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
# A time with an offset (Z, +HH, +HHMM, +HH:MM) after its clock time, as pandas' ISO 8601 parser
# reads it; anything else is a local time of the source's zone (a date alone is its midnight).
OFFSET = r"[T ]\s*\d{1,2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$"
# Times are stored in nanoseconds; a day's margin keeps localising inside the range.
EARLIEST = pd.Timestamp.min + pd.Timedelta(days=1)
LATEST = pd.Timestamp.max - pd.Timedelta(days=1)


@dataclass(frozen=True)
class ValidationResult:
    file: Path
    rows_read: int
    accepted: pd.DataFrame
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS; row_number: 1-based line (CSV) or row (Parquet)

    @property
    def rows_accepted(self) -> int:
        return len(self.accepted)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)


@dataclass(frozen=True)
class RawRows:
    """A raw file as text: rows indexed by their line (CSV) or row (Parquet) in the file, and
    the CSV lines that could not be split into fields."""

    frame: pd.DataFrame  # the source's columns as text (null for empty); index = line / row
    malformed: list[tuple[int, str, str]]  # (line number, problem, the line's text)

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.malformed)


def read_raw_file(path: Path, source: Source) -> RawRows:
    """Read every declared column as text; a file that cannot be used at all raises
    InputFileError naming it.

    A CSV line with the wrong number of fields (a very wide row, a truncated last line) is not
    fatal: it is returned in ``malformed`` and quarantined like any other bad row. A missing
    file, or one without rows, is an error unless the source says ``missing_day="empty"``:
    then it is a day of no rows.
    """
    if not path.exists():
        if source.missing_day == "empty":
            return RawRows(_text_frame(source), [])
        raise InputFileError(
            f"{path}: raw file for source {source.name!r} does not exist (a source whose days "
            "may have no file declares missing_day='empty')"
        )
    raw = _read_parquet(path, source) if source.format == "parquet" else _read_csv(path, source)
    if raw.rows_read == 0 and source.missing_day != "empty":
        raise InputFileError(
            f"{path}: has {'a header but ' if source.format == 'csv' else ''}no rows; a day of "
            f"{source.name!r} was expected. Check the export that wrote it, then rerun the day "
            "(a source whose days may have no rows declares missing_day='empty')."
        )
    return raw


def _read_csv(path: Path, source: Source) -> RawRows:
    header = _header(path, source)
    missing = [c for c in source.columns if c not in header]
    if missing:
        raise InputFileError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"source {source.name!r} needs {', '.join(source.columns)} (the header has "
            f"{', '.join(header[:12]) or 'nothing'}; is the delimiter a comma?)"
        )
    malformed: list[tuple[int, str, str]] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        problem = f"{row.actual_columns} field(s) where the header has {row.expected_columns}"
        malformed.append((row.number, problem, row.text[:2000]))
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            # Single-threaded: only then does pyarrow number the lines of invalid rows.
            read_options=pacsv.ReadOptions(use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pyarrow.string()),
                include_columns=source.columns,
                null_values=[""],
                strings_can_be_null=True,
            ),
        )
    except pyarrow.ArrowInvalid as exc:
        raise InputFileError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from exc
    frame = table.to_pandas()
    bad_lines = {line for line, _, _ in malformed}
    lines = (n for n in itertools.count(2) if n not in bad_lines)  # line 1 is the header
    frame.index = pd.Index([next(lines) for _ in range(len(frame))], name="line")
    return RawRows(frame[source.columns], malformed)


def _header(path: Path, source: Source) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            first = handle.readline()
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from exc
    if not first.strip():
        raise InputFileError(
            f"{path}: is empty (no header line); a day of {source.name!r} was expected"
        )
    return next(csv.reader([first]))


def _read_parquet(path: Path, source: Source) -> RawRows:
    """Each declared column as text, so Parquet rows meet exactly the rules CSV rows do.

    Numbers become their shortest text, dates ``YYYY-MM-DD``, typed times ISO text that keeps
    their instant (with the offset when the column has a zone, none when naive: then they are
    read in the source's zone like CSV text). Nulls and empty strings are null, as in CSV.
    """
    try:
        schema = pq.read_schema(path)
        missing = [c for c in source.columns if c not in schema.names]
        if missing:
            raise InputFileError(
                f"{path}: missing required column(s) {', '.join(missing)}; source "
                f"{source.name!r} needs {', '.join(source.columns)} (the file has "
                f"{', '.join(schema.names[:12]) or 'nothing'})"
            )
        repeated = [c for c in source.columns if schema.names.count(c) > 1]
        if repeated:
            raise InputFileError(f"{path}: column(s) {', '.join(repeated)} appear more than once")
        table = pq.read_table(path, columns=source.columns)
    except (pyarrow.ArrowException, OSError) as exc:
        raise InputFileError(f"{path}: cannot be read as Parquet ({exc})") from exc
    text = {}
    for name in source.columns:
        column = table.column(name)
        try:
            text[name] = _as_text(column)
        except pyarrow.ArrowException as exc:
            raise InputFileError(
                f"{path}: column {name!r} ({column.type}) cannot be read as text ({exc})"
            ) from exc
    frame = pyarrow.table(text).to_pandas() if text else _text_frame(source)
    frame.index = pd.RangeIndex(1, len(frame) + 1, name="row")  # 1-based, as row numbers go
    return RawRows(frame[source.columns], [])


def _as_text(column: pyarrow.ChunkedArray) -> pyarrow.ChunkedArray:
    if pyarrow.types.is_dictionary(column.type):
        column = pyarrow.chunked_array(
            [chunk.dictionary_decode() for chunk in column.chunks], column.type.value_type
        )
    text = pc.cast(column, pyarrow.string())
    return pc.if_else(pc.equal(text, ""), pyarrow.scalar(None, pyarrow.string()), text)


def _text_frame(source: Source) -> pd.DataFrame:
    """No rows, the source's columns as text (the frame an empty file reads as)."""
    table = pyarrow.table({c: pyarrow.array([], pyarrow.string()) for c in source.columns})
    frame = table.to_pandas()
    frame.index = pd.RangeIndex(0, name="row")
    return frame


def empty_rows(source: Source) -> pd.DataFrame:
    """No rows, the source's columns in the dtypes validation gives them (what an empty day
    stages; time columns are UTC datetimes, so ``.dt`` works on them)."""
    return validate_frame(
        _text_frame(source), source, date(2000, 1, 1), Path(f"(no {source.name} rows)")
    ).accepted


def day_bounds(day: date, zone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of a logical date in UTC: its midnight to the next one in ``zone``
    (23 or 25 hours on a clock change)."""

    def midnight(d: date) -> pd.Timestamp:
        local = pd.Timestamp(d).tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
        return local.tz_convert("UTC")

    return midnight(day), midnight(day + timedelta(days=1))


def validate_frame(
    raw: pd.DataFrame,
    source: Source,
    logical_date: date,
    file: Path,
    malformed: Sequence[tuple[int, str, str]] = (),
) -> ValidationResult:
    """Split text rows into typed accepted rows and quarantined rows, one record per bad row.

    ``raw``'s index is each row's line (CSV) or row (Parquet) in the file; ``malformed``
    lines (line, problem, text) could not be split into fields and are quarantined whole.
    """
    problems: dict[int, list[tuple[str, str]]] = {}

    def flag(index: int, column: str, rule: str) -> None:
        problems.setdefault(int(index), []).append((column, rule))

    # Pass 1 types the text column by column (vectorised; a value that does not parse or a null
    # where none is allowed flags its row). Pass 2 runs the schema's rules on the typed rows.
    typed = raw.copy()
    for name, column in source.schema.columns.items():
        values = raw[name]
        parsed, unclear = values, None
        if column.coerce:
            parsed, unclear = _parse(values, column.dtype, source.timezone)
        for index in values.index[values.notna() & parsed.isna()]:
            if unclear is not None and unclear[index]:
                flag(
                    index,
                    name,
                    f"parse as {column.dtype} (got {values[index]!r}: no single time in "
                    f"{source.timezone}, a clock change skips or repeats it; give its offset)",
                )
            else:
                flag(index, name, f"parse as {column.dtype} (got {values[index]!r})")
        if not column.nullable:
            for index in values.index[values.isna()]:
                flag(index, name, "not null")
        typed[name] = parsed
    typed = typed.drop(index=list(problems))
    typed = typed.astype({n: str(c.dtype) for n, c in source.schema.columns.items() if c.coerce})
    try:
        typed = source.schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        cases = errors.failure_cases
        if cases["index"].isna().any():
            first = cases[cases["index"].isna()].iloc[0]
            raise InputFileError(
                f"{file}: column {first['column']!r} breaks {first['check']}"
            ) from errors
        for case in cases.itertuples():
            if case.schema_context == "DataFrameSchema":  # a cross-column rule: the whole row
                flag(case.index, "(row)", str(case.check))
            else:
                flag(case.index, str(case.column), f"{case.check} (got {case.failure_case!r})")
        typed = typed.drop(index=[i for i in problems if i in typed.index])

    start, end = day_bounds(logical_date, source.timezone)
    times = typed[source.time_column]
    if times.dt.tz is None:  # a column declared naive holds UTC clock times
        times = times.dt.tz_localize("UTC")
    for index in typed.index[(times < start) | (times >= end)]:
        flag(index, source.time_column, f"inside logical date {logical_date.isoformat()}")
    if source.id_column is not None:
        ids = typed[source.id_column]
        for index in typed.index[ids.duplicated(keep="first")]:
            flag(index, source.id_column, "unique id (duplicate of an earlier row)")

    bad = sorted(problems)
    accepted = typed.drop(index=[i for i in bad if i in typed.index])
    quarantined = pd.DataFrame(
        [
            {
                "row_number": int(i),
                "column": ",".join(dict.fromkeys(c for c, _ in problems[i])),
                "rule": "; ".join(dict.fromkeys(f"{c}: {r}" for c, r in problems[i])),
                "raw_values": json.dumps(
                    {k: (None if pd.isna(v) else v) for k, v in raw.loc[i].items()}
                ),
            }
            for i in bad
        ],
        columns=QUARANTINE_COLUMNS,
    )
    unsplit = pd.DataFrame(
        [
            {
                "row_number": line,
                "column": "(row)",
                "rule": f"(row): {problem}",
                "raw_values": json.dumps({"line": text}),
            }
            for line, problem, text in malformed
        ],
        columns=QUARANTINE_COLUMNS,
    )
    if len(unsplit):
        quarantined = pd.concat([quarantined, unsplit]).sort_values("row_number", kind="stable")
    result = ValidationResult(
        file, len(raw) + len(malformed), accepted.reset_index(drop=True), quarantined
    )
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    return result


def _parse(values: pd.Series, dtype: object, zone: str) -> tuple[pd.Series, pd.Series | None]:
    """Text to ``dtype``; what does not parse becomes null (the caller flags it).

    For times, also a mask of the local times ``zone`` has no single instant for.
    """
    kind = str(dtype)
    if kind.startswith("datetime64"):
        times, unclear = parse_times(values, zone)
        target = getattr(dtype, "type", None)
        if isinstance(target, pd.DatetimeTZDtype):
            return times.dt.tz_convert(target.tz), unclear
        return times.dt.tz_convert("UTC").dt.tz_localize(None), unclear  # declared naive: UTC
    if kind.startswith(("int", "Int", "float", "Float")):
        numbers = pd.to_numeric(values, errors="coerce")
        if kind.lower().startswith("int"):
            numbers = numbers.where(numbers.isna() | (numbers == numbers.round()))
        return numbers, None
    return values, None


def parse_times(values: pd.Series, zone: str) -> tuple[pd.Series, pd.Series]:
    """ISO 8601 text to UTC times (``datetime64[ns, UTC]``, NaT where a value does not parse).

    A value with an offset keeps its instant; one without (a date alone is its midnight) is a
    clock time in ``zone``. The second series marks the local times that zone has no single
    instant for (skipped or repeated by a clock change): they are NaT, not guessed.
    """
    no_offset = pd.Series(False, index=values.index)
    try:  # the usual file: every time with one offset, or every time without
        whole = pd.to_datetime(values, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):  # pandas refuses to mix offsets, or offsets and none
        whole = None
    if whole is not None and isinstance(whole.dtype, pd.DatetimeTZDtype):
        return _utc_ns(whole), no_offset
    if whole is not None:
        return _localise(whole, zone, values.index)

    present = values.notna()
    aware = present & values.astype("object").where(present, "").str.contains(OFFSET).astype(bool)
    local_text = values[present & ~aware]
    try:
        local = pd.to_datetime(local_text, format="ISO8601", errors="coerce")
        missed = isinstance(local.dtype, pd.DatetimeTZDtype)
    except (ValueError, TypeError):
        missed = True
    if missed:  # an offset the pattern does not know: sort these values one by one (slow)
        has_offset = local_text.map(
            lambda v: pd.to_datetime(v, format="ISO8601", errors="coerce").tzinfo is not None
        ).astype(bool)
        aware |= has_offset.reindex(values.index, fill_value=False)
        local = pd.to_datetime(local_text[~has_offset], format="ISO8601", errors="coerce")
    times, unclear = _localise(local, zone, values.index)
    offset = pd.to_datetime(values[aware], utc=True, format="ISO8601", errors="coerce")
    times.loc[offset.index] = _utc_ns(offset)
    return times, unclear


def _utc_ns(times: pd.Series) -> pd.Series:
    """Offset-carrying times in UTC nanoseconds; NaT beyond what nanoseconds hold."""
    utc = times.dt.tz_convert("UTC")
    inside = (utc >= EARLIEST.tz_localize("UTC")) & (utc <= LATEST.tz_localize("UTC"))
    return utc.where(inside).astype(UTC_NS)


def _localise(local: pd.Series, zone: str, index: pd.Index) -> tuple[pd.Series, pd.Series]:
    """Clock times of ``zone`` in UTC nanoseconds over ``index`` (NaT elsewhere), and the mask
    of those a clock change skips or repeats."""
    local = local.where((local >= EARLIEST) & (local <= LATEST))
    placed = local.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
    unclear = (local.notna() & placed.isna()).reindex(index, fill_value=False)
    times = pd.Series(pd.NaT, index=index, dtype=UTC_NS)
    times.loc[placed.index] = placed.dt.tz_convert("UTC").astype(UTC_NS)
    return times, unclear


def validate_file(path: Path, source: Source, logical_date: date) -> ValidationResult:
    """Read and validate one raw file (``format`` and ``missing_day`` as the source says)."""
    raw = read_raw_file(path, source)
    return validate_frame(raw.frame, source, logical_date, path, raw.malformed)
