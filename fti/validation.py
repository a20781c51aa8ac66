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
path cost about 1.5 s per file. Quarantine records are built column-wise too (masks, joined
rule texts, JSON assembled per column), so a file of bad rows costs about what a good one does.

Every source field counts: CSV and Parquet files become the same text frame (a Parquet column
is turned into text, so both meet exactly the same rules); times without an offset are read in
the source's ``timezone`` and every time is stored in UTC; "inside the logical date" means
inside that day in the source's zone; ``id_column`` (when given) is unique within the file;
``missing_day="empty"`` makes a day without a file, or with a header and no rows, a normal day
of no rows.

What a value must look like in a column the schema parses (``coerce=True``); surrounding
whitespace is ignored, anything else quarantines the row with a rule that says why:

- integer columns: an optional sign and decimal digits, parsed exactly (no detour through
  floats), so ``9007199254740993`` stays itself. A decimal point followed only by zeros
  (``2.0``, ``2.``: what a float-typed export writes) is that integer. Quarantined, saying
  which: fractions (``2.5``: not a whole number), exponents (``1e3``), values outside the
  column's integer type (int64 unless it says otherwise), ``inf``/``nan`` and numbers beyond
  int64 written as floats (``1e308``: not a finite integer); hexadecimal and anything else;
- float columns: a decimal number, with an optional exponent (``1.5``, ``-2``, ``.5``,
  ``1e-3``), read to the nearest float. ``inf``, ``nan`` and numbers beyond the float range are
  ``not a finite number`` (a feature or a model cannot use them; no source needs them today);
- time columns: a complete ``YYYY-MM-DD`` date (its midnight in the source's zone), or a date,
  ``T`` or a space and a complete ``HH:MM`` with optional ``:SS`` and fraction, then an
  optional offset (``Z``, ``+HH:MM``, ``+HHMM``, ``+HH``). A cut-off value (``2023-09``,
  ``2026-03-01T11:5``, an hour alone) is an ``incomplete timestamp``, never read as another
  instant; so are ISO's basic forms (``20260301``);
- CSV files are UTF-8, with or without a byte-order mark (spreadsheet exports write one), with
  LF or CRLF line ends; a line longer than pyarrow's read block (a cell of megabytes) is read
  whole. Only invalid UTF-8 is reported as an encoding problem.

A file with a ``max_quarantine_share`` stops being validated once its bad rows certainly exceed
that share and ``quarantine_min_rows`` (both only grow as validation goes on); it keeps a sample
of ``QUARANTINE_SAMPLE`` records (see ``ValidationResult``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fti.definitions import Source
from fti.errors import InputFileError

QUARANTINE_COLUMNS = ["row_number", "column", "rule", "raw_values"]
GOT_CHARS = 100  # of a raw value quoted in a rule ("(got '...')"); longer ones end in "…"
# Records kept of a file rejected for too many bad rows (the first bad rows by row number).
QUARANTINE_SAMPLE = 1000
UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
# A time with an offset (Z, +HH, +HHMM, +HH:MM) after its clock time, as pandas' ISO 8601 parser
# reads it; anything else is a local time of the source's zone (a date alone is its midnight).
OFFSET = r"[T ]\s*\d{1,2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)\s*$"
# Times are stored in nanoseconds; a day's margin keeps localising inside the range.
EARLIEST = pd.Timestamp.min + pd.Timedelta(days=1)
LATEST = pd.Timestamp.max - pd.Timedelta(days=1)
# What a value may look like (RE2, as pyarrow matches; numbers are matched once trimmed).
INTEGER = r"^[+-]?[0-9]+(?:\.0*)?$"
DECIMAL = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
NON_FINITE = r"(?i)^[+-]?(?:inf|infinity|nan)$"
TIMESTAMP = (
    r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?\s*(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
    r"\s*$"
)
INCOMPLETE = "incomplete timestamp; write YYYY-MM-DD, or YYYY-MM-DDTHH:MM[:SS[.f]] and an offset"
EXPONENT = "an exponent; write the integer's digits"
INT64_DIGITS = {False: "9223372036854775807", True: "9223372036854775808"}  # by sign: negative?
# Texts that json.dumps / repr write as they are between quotes (printable ASCII, no escapes).
JSON_PLAIN = r"^[\x20\x21\x23-\x5b\x5d-\x7e]*$"
REPR_PLAIN = r"^[\x20-\x26\x28-\x5b\x5d-\x7e]*$"


@dataclass(frozen=True)
class ValidationResult:
    """One file's rows split into accepted (typed) and quarantined (one record per bad row).

    ``rows_bad`` counts the bad rows found. ``over_threshold``: validation was asked for a
    ``max_quarantine_share`` and the bad rows certainly exceed it and ``quarantine_min_rows``;
    it stopped there, the file is rejected whole: ``accepted`` is empty and ``quarantined``
    holds at most ``QUARANTINE_SAMPLE`` records, those of the first bad rows found by row
    number (``rows_bad`` may be fewer than the file holds). Otherwise
    ``rows_read == rows_accepted + rows_quarantined`` and ``rows_bad == rows_quarantined``.
    """

    file: Path
    rows_read: int
    accepted: pd.DataFrame
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS; row_number: 1-based line (CSV) or row (Parquet)
    rows_bad: int
    over_threshold: bool = False

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
    table, malformed = _csv_table(path, header, source)
    frame = table.to_pandas()
    # Each row's line: line 1 is the header, and the lines set aside hold no row.
    lines = np.arange(2, len(frame) + len(malformed) + 2)
    lines = np.setdiff1d(lines, [line for line, _, _ in malformed], assume_unique=True)
    frame.index = pd.Index(lines, name="line")
    return RawRows(frame[source.columns], malformed)


def _csv_table(
    path: Path, header: list[str], source: Source
) -> tuple[pyarrow.Table, list[tuple[int, str, str]]]:
    """The declared columns as text, and the lines that could not be split into fields.

    pyarrow reads in blocks and refuses a line longer than a block; such a file is read again
    with blocks four times as large, up to the whole file (a single cell may be megabytes).
    pyarrow skips a UTF-8 byte-order mark itself.
    """
    block = 1 << 20  # pyarrow's default
    size = path.stat().st_size
    while True:
        malformed: list[tuple[int, str, str]] = []

        def set_aside(row: pacsv.InvalidRow, malformed: list = malformed) -> str:
            problem = f"{row.actual_columns} field(s) where the header has {row.expected_columns}"
            malformed.append((row.number, problem, row.text[:2000]))
            return "skip"

        try:
            table = pacsv.read_csv(
                path,
                # Single-threaded: only then does pyarrow number the lines of invalid rows.
                read_options=pacsv.ReadOptions(use_threads=False, block_size=block),
                parse_options=pacsv.ParseOptions(invalid_row_handler=set_aside),
                convert_options=pacsv.ConvertOptions(
                    column_types=dict.fromkeys(header, pyarrow.string()),
                    include_columns=source.columns,
                    null_values=[""],
                    strings_can_be_null=True,
                ),
            )
        except pyarrow.ArrowInvalid as exc:
            if "straddl" in str(exc) and block <= size:
                block *= 4
                continue
            encoding = "UTF-8 " if "UTF8" in str(exc) or "UTF-8" in str(exc) else ""
            raise InputFileError(f"{path}: cannot be read as {encoding}CSV ({exc})") from exc
        return table, malformed


def _header(path: Path, source: Source) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:  # -sig: skip a BOM
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


@dataclass(frozen=True)
class _Problem:
    """Rows (by position) that broke one rule, or one batch of pandera's failure cases.

    ``column`` and ``rule`` are one value or one per row; where ``got``, the record's text ends
    with the row's raw value of ``column`` (and ``reason``, one per row, None for none).
    """

    positions: np.ndarray
    column: str | np.ndarray
    rule: str | np.ndarray
    got: bool | np.ndarray = False
    reason: np.ndarray | None = None

    def rows(self, keep: np.ndarray | None) -> _Problem:
        """Only the rows whose positions are in ``keep`` (all when None)."""
        if keep is None:
            return self
        at = np.isin(self.positions, keep)

        def pick(value: Any) -> Any:
            return value[at] if isinstance(value, np.ndarray) else value

        return _Problem(
            self.positions[at],
            pick(self.column),
            pick(self.rule),
            pick(self.got),
            pick(self.reason),
        )


@dataclass
class _Flags:
    """The problems found so far: which rows (by position) are bad, and what each broke (its
    text is built only for the records kept)."""

    size: int
    bad: np.ndarray = field(init=False)
    problems: list[_Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bad = np.zeros(self.size, dtype=bool)

    def add(self, where: np.ndarray, *args: Any, **kwargs: Any) -> None:
        """Flag the rows ``where`` (a mask, or positions), with the rest as ``_Problem``'s."""
        positions = np.flatnonzero(where) if where.dtype == bool else where
        if len(positions):
            self.bad[positions] = True
            self.problems.append(_Problem(positions, *args, **kwargs))

    @property
    def count(self) -> int:
        return int(self.bad.sum())


def validate_frame(
    raw: pd.DataFrame,
    source: Source,
    logical_date: date,
    file: Path,
    malformed: Sequence[tuple[int, str, str]] = (),
    max_quarantine_share: float | None = None,
    quarantine_min_rows: int = 0,
) -> ValidationResult:
    """Split text rows into typed accepted rows and quarantined rows, one record per bad row.

    ``raw``'s index is each row's line (CSV) or row (Parquet) in the file; ``malformed``
    lines (line, problem, text) could not be split into fields and are quarantined whole.
    With ``max_quarantine_share``, validation stops as soon as the bad rows certainly make up
    more than that share of the rows read and are more than ``quarantine_min_rows``: the result
    is ``over_threshold`` (see ``ValidationResult``); ``is_over_threshold`` of the full count
    gives the same decision.

    Raises:
        InputFileError: a rule failed for the file as a whole rather than for rows.
    """
    rows_read = len(raw) + len(malformed)
    flags = _Flags(len(raw))

    def over() -> bool:  # bad rows are only ever added: once over, the whole file is too
        bad = flags.count + len(malformed)
        return is_over_threshold(bad, rows_read, max_quarantine_share, quarantine_min_rows)

    def rejected() -> ValidationResult:
        sample = _records(raw, flags, malformed, QUARANTINE_SAMPLE)
        bad = flags.count + len(malformed)
        return ValidationResult(file, rows_read, empty_rows(source), sample, bad, True)

    # Pass 1 types the text column by column (vectorised; a value that does not parse or a null
    # where none is allowed flags its row). Pass 2 runs the schema's rules on the typed rows.
    columns: dict[str, pd.Series] = {}
    for name, column in source.schema.columns.items():
        if over():
            return rejected()
        values = raw[name]
        parsed = values
        if column.coerce:
            parsed, failed, reasons = _parse(values, column.dtype, source.timezone)
            flags.add(
                failed,
                name,
                f"parse as {column.dtype}",
                got=True,
                reason=None if reasons is None else reasons[failed],
            )
        if not column.nullable:
            flags.add(values.isna().to_numpy(), name, "not null")
        columns[name] = parsed
    if over():
        return rejected()
    kept = np.flatnonzero(~flags.bad)  # positions of the rows typed
    typed = pd.DataFrame({c: columns.get(c, raw[c]) for c in raw.columns}).iloc[kept]
    typed = typed.astype({n: str(c.dtype) for n, c in source.schema.columns.items() if c.coerce})
    try:
        typed = source.schema.validate(typed, lazy=True)
    except pa.errors.SchemaErrors as errors:
        _flag_failure_cases(errors, raw.index, flags, file)
        alive = ~flags.bad[kept]
        typed, kept = typed[alive], kept[alive]
    if over():
        return rejected()

    start, end = day_bounds(logical_date, source.timezone)
    times = typed[source.time_column]
    if times.dt.tz is None:  # a column declared naive holds UTC clock times
        times = times.dt.tz_localize("UTC")
    outside = ((times < start) | (times >= end)).to_numpy()
    flags.add(kept[outside], source.time_column, f"inside logical date {logical_date.isoformat()}")
    if source.id_column is not None:
        repeated = typed[source.id_column].duplicated(keep="first").to_numpy()
        flags.add(kept[repeated], source.id_column, "unique id (duplicate of an earlier row)")
    if over():
        return rejected()

    accepted = typed[~flags.bad[kept]].reset_index(drop=True)
    quarantined = _records(raw, flags, malformed)
    result = ValidationResult(file, rows_read, accepted, quarantined, len(quarantined))
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    return result


def _flag_failure_cases(
    errors: pa.errors.SchemaErrors, index: pd.Index, flags: _Flags, file: Path
) -> None:
    """Flag the rows pandera found breaking a rule: a column's rule with the value it got, a
    cross-column rule as the whole row's. A rule broken by the file as a whole raises."""
    cases = errors.failure_cases
    if cases["index"].isna().any():
        first = cases[cases["index"].isna()].iloc[0]
        raise InputFileError(
            f"{file}: column {first['column']!r} breaks {first['check']}"
        ) from errors
    positions = index.get_indexer(pd.Index(cases["index"]).astype(index.dtype))
    whole_row = (cases["schema_context"] == "DataFrameSchema").to_numpy()
    flags.add(
        positions,
        np.where(whole_row, "(row)", cases["column"].astype(str).to_numpy()),
        cases["check"].astype(str).to_numpy(),
        got=~whole_row,
    )


def _parse(
    values: pd.Series, dtype: object, zone: str
) -> tuple[pd.Series, np.ndarray, np.ndarray | None]:
    """Text to ``dtype``: the parsed values (null where a value does not parse), the mask of
    values that did not, and per row why not (None when the dtype says it all)."""
    kind = str(dtype)
    if kind.startswith("datetime64"):
        times, failed, reasons = _parse_datetimes(values, zone)
        target = getattr(dtype, "type", None)
        if isinstance(target, pd.DatetimeTZDtype):
            return times.dt.tz_convert(target.tz), failed, reasons
        times = times.dt.tz_convert("UTC").dt.tz_localize(None)  # declared naive: UTC
        return times, failed, reasons
    if kind.lower().startswith(("int", "uint")):
        return _parse_integers(values, kind.lower())
    if kind.lower().startswith("float"):
        return _parse_floats(values)
    return values, np.zeros(len(values), dtype=bool), None


def _arrow(values: pd.Series, strict: bool = False) -> pyarrow.Array:
    """A text column as one Arrow string array (null where null). A value that is not text (a
    frame built by hand) is taken as its ``str``, unless ``strict``: then that raises."""
    try:
        array = pyarrow.array(values, pyarrow.string(), from_pandas=True)
    except (pyarrow.ArrowTypeError, pyarrow.ArrowInvalid):
        if strict:
            raise
        text = [None if pd.isna(v) else str(v) for v in values.to_numpy(dtype=object)]
        array = pyarrow.array(text, pyarrow.string())
    return array.combine_chunks() if isinstance(array, pyarrow.ChunkedArray) else array


def _text(values: pd.Series) -> pyarrow.Array:
    """A text column as an Arrow string array (null where null), surrounding spaces trimmed."""
    return pc.utf8_trim_whitespace(_arrow(values))


def _matches(text: pyarrow.Array, pattern: str) -> np.ndarray:
    """Where ``text`` matches ``pattern`` (never where null)."""
    found = pc.match_substring_regex(text, pattern).fill_null(False)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _parse_integers(values: pd.Series, kind: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Integer text to exact int64 (``2.0`` is 2); out of range, fractions, exponents and
    non-finite text do not parse, each with its reason."""
    text = _text(values)
    present = ~np.asarray(values.isna())
    reasons = np.full(len(values), None, dtype=object)
    try:  # the usual column: plain digits that fit (pyarrow checks the range; not hex)
        if pc.any(pc.match_substring(text, "x", ignore_case=True)).as_py():
            raise pyarrow.ArrowInvalid("hexadecimal")
        numbers, ok = _numbers(pc.cast(text, pyarrow.int64()), np.int64), present
    except pyarrow.ArrowInvalid:
        numbers, ok = _exact_integers(text, present, reasons)
    if kind != "int64":  # another integer type: its own range
        info = np.iinfo(kind)
        outside = ok & ((numbers < info.min) | (numbers > info.max))
        reasons[outside], ok = f"outside the {kind} range", ok & ~outside
    parsed = pd.Series(pd.arrays.IntegerArray(numbers, ~ok), index=values.index)
    return parsed, present & ~ok, reasons


def _exact_integers(
    text: pyarrow.Array, present: np.ndarray, reasons: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Integer text to int64 value by value, without a detour through floats: (numbers, which
    parsed); ``reasons`` gets why the others did not."""
    whole = _matches(text, INTEGER)
    digits = pc.replace_substring_regex(text, r"\.0*$", "")
    negative = pc.starts_with(digits, "-")
    magnitude = pc.replace_substring_regex(digits, r"^[+-]?0*", "")  # "" for zero
    length = pc.utf8_length(magnitude)
    limit = pc.if_else(negative, INT64_DIGITS[True], INT64_DIGITS[False])
    fits = pc.or_(
        pc.less(length, 19), pc.and_(pc.equal(length, 19), pc.less_equal(magnitude, limit))
    )
    ok = whole & np.asarray(fits.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
    magnitude = pc.if_else(pc.equal(length, 0), "0", magnitude)
    signed = pc.binary_join_element_wise(pc.if_else(negative, "-", ""), magnitude, "")
    numbers = _numbers(pc.cast(pc.if_else(pyarrow.array(ok), signed, "0"), pyarrow.int64()))
    reasons[whole & ~ok] = "outside the int64 range"
    decimal = present & ~whole & _matches(text, DECIMAL)
    if decimal.any():  # a number, but not an integer's digits: say which way
        beyond = ~(np.abs(_floats(text, decimal)) < 2.0**63)  # inf and NaN too
        exponent = _matches(text, "[eE]")
        reasons[decimal] = np.where(
            beyond, "not a finite integer", np.where(exponent, EXPONENT, "not a whole number")
        )[decimal]
    reasons[present & _matches(text, NON_FINITE)] = "not a finite integer"
    return numbers, ok


def _numbers(array: pyarrow.Array, dtype: type = np.int64) -> np.ndarray:
    """A numeric Arrow array as numpy, 0 where null."""
    return np.asarray(array.fill_null(0).to_numpy(zero_copy_only=False), dtype=dtype)


def _parse_floats(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Decimal text to the nearest float64; non-finite values do not parse."""
    text = _text(values)
    present = ~np.asarray(values.isna())
    try:  # the usual column: every value a number (pyarrow's parser is correctly rounded)
        numbers, decimal = _numbers(pc.cast(text, pyarrow.float64()), np.float64), present
    except pyarrow.ArrowInvalid:
        decimal = _matches(text, DECIMAL)
        numbers = _floats(text, decimal)
    ok = decimal & np.isfinite(numbers)
    reasons = np.full(len(values), None, dtype=object)
    reasons[present & ~ok & (decimal | _matches(text, NON_FINITE))] = "not a finite number"
    parsed = pd.Series(np.where(ok, numbers, np.nan), index=values.index)
    return parsed, present & ~ok, reasons


def _floats(text: pyarrow.Array, decimal: np.ndarray) -> np.ndarray:
    """The decimal texts (where ``decimal``) to the nearest float64; 0 elsewhere."""
    return _numbers(
        pc.cast(pc.if_else(pyarrow.array(decimal), text, "0"), pyarrow.float64()), np.float64
    )


def _parse_datetimes(values: pd.Series, zone: str) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """Complete ISO 8601 text to UTC times (see ``parse_times``); an incomplete value, or a
    local time a clock change skips or repeats, does not parse, each with its reason."""
    raw = _arrow(values)
    present = ~np.asarray(values.isna())
    complete = _matches(raw, TIMESTAMP)
    times, unclear = parse_times(values.where(complete | ~present), zone)
    reasons = np.full(len(values), None, dtype=object)
    reasons[present & ~complete] = INCOMPLETE
    reasons[unclear.to_numpy()] = (
        f"no single time in {zone}, a clock change skips or repeats it; give its offset"
    )
    return times, present & times.isna().to_numpy(), reasons


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


# ---- quarantine records, built column-wise -------------------------------------------------------
def _records(
    raw: pd.DataFrame,
    flags: _Flags,
    malformed: Sequence[tuple[int, str, str]],
    limit: int | None = None,
) -> pd.DataFrame:
    """One record per bad row, by row number: its columns, its rules (``column: rule``, each
    once, in the order found) and its raw values as JSON (what ``json.dumps`` writes). With
    ``limit``, only the first ``limit`` bad rows by row number."""
    positions = np.flatnonzero(flags.bad)
    numbers = np.asarray(raw.index, dtype=np.int64)[positions]
    unsplit = sorted(malformed)
    keep = None
    if limit is not None:
        cut = np.sort(np.concatenate([numbers, [line for line, _, _ in unsplit]]))[:limit]
        last = cut[-1] if len(cut) else -1
        positions, numbers = positions[numbers <= last], numbers[numbers <= last]
        unsplit = [m for m in unsplit if m[0] <= last]
        keep = positions
    columns, rules = _rules(raw, [p.rows(keep) for p in flags.problems], positions)
    records = pyarrow.table(
        {
            "row_number": pyarrow.array(numbers, pyarrow.int64()),
            "column": columns,
            "rule": rules,
            "raw_values": _json_objects(raw, positions),
        }
    )
    if unsplit:
        lines = pyarrow.table(
            {
                "row_number": pyarrow.array([line for line, _, _ in unsplit], pyarrow.int64()),
                "column": pyarrow.array(["(row)"] * len(unsplit), pyarrow.string()),
                "rule": pyarrow.array([f"(row): {problem}" for _, problem, _ in unsplit]),
                "raw_values": pyarrow.array([json.dumps({"line": t}) for _, _, t in unsplit]),
            }
        )
        records = pyarrow.concat_tables([records, lines])
    return records.sort_by("row_number").to_pandas()[QUARANTINE_COLUMNS]


def _rules(
    raw: pd.DataFrame, problems: list[_Problem], positions: np.ndarray
) -> tuple[pyarrow.Array, pyarrow.Array]:
    """Per row of ``positions`` (sorted): its columns joined by ``,`` and its ``column: rule``
    texts joined by ``; ``, each once, in the order found."""
    if not problems:
        return pyarrow.array([], pyarrow.string()), pyarrow.array([], pyarrow.string())
    at = np.concatenate([p.positions for p in problems])
    column = pyarrow.concat_arrays([_strings(p.column, len(p.positions)) for p in problems])
    text = pyarrow.concat_arrays([_rule_text(raw, p) for p in problems])
    if len(at) > 1 and not (np.diff(at) > 0).all():  # by row, in the order found within one
        order = np.argsort(at, kind="stable")
        at, column, text = at[order], column.take(order), text.take(order)
    if len(at) == len(positions):  # one problem per row, the usual case: nothing to join
        return column, text
    joined = pd.DataFrame({"at": at, "column": column.to_pandas(), "text": text.to_pandas()})
    return (
        pyarrow.array(_joined(joined, "column", ",").reindex(positions), pyarrow.string()),
        pyarrow.array(_joined(joined, "text", "; ").reindex(positions), pyarrow.string()),
    )


def _strings(value: str | np.ndarray, size: int) -> pyarrow.Array:
    """One text repeated ``size`` times, or the array's texts, as an Arrow string array."""
    if isinstance(value, np.ndarray):
        return pyarrow.array(value, pyarrow.string())
    return pyarrow.repeat(pyarrow.scalar(value, pyarrow.string()), size)


def _rule_text(raw: pd.DataFrame, problem: _Problem) -> pyarrow.Array:
    """``column: rule``, then `` (got <raw value>[: reason])`` where the problem says so."""
    size = len(problem.positions)

    def text(value: str | np.ndarray) -> str | pyarrow.Array:  # a scalar stays one
        return value if isinstance(value, str) else _strings(value, size)

    pieces = [text(problem.column), ": ", text(problem.rule)]
    got = np.broadcast_to(np.asarray(problem.got, dtype=bool), (size,))
    if got.any():
        reasons = np.full(size, None) if problem.reason is None else problem.reason
        suffix = pc.binary_join_element_wise(": ", pyarrow.array(reasons, pyarrow.string()), "")
        values = _got_values(raw, problem, got)
        pieces.append(
            pc.binary_join_element_wise(" (got ", values, suffix.fill_null(""), ")", "").fill_null(
                ""
            )
        )
    if not any(isinstance(p, pyarrow.Array) for p in pieces):
        pieces[0] = _strings(problem.column, size)
    return pc.binary_join_element_wise(*pieces, "")


def _got_values(raw: pd.DataFrame, problem: _Problem, got: np.ndarray) -> pyarrow.Array:
    """The raw values (as ``repr`` writes them) of the rows ``got``, each of its own column;
    null elsewhere."""
    names = np.broadcast_to(np.asarray(problem.column, dtype=object), got.shape)
    values = None
    for name in pd.unique(names[got]):
        rows = got & (names == name)
        quoted = _shortened(_quoted(raw[name].iloc[problem.positions[rows]], REPR_PLAIN, "'", repr))
        if rows.all():  # the usual problem: one column's values
            return quoted
        if values is None:
            values = pyarrow.nulls(len(got), pyarrow.string())
        values = pc.replace_with_mask(values, pyarrow.array(rows), quoted)
    assert values is not None
    return values


def _shortened(texts: pyarrow.Array) -> pyarrow.Array:
    """Texts cut to ``GOT_CHARS`` characters with an ellipsis: a rule quotes the start of a very
    long raw value (the record's raw values keep all of it)."""
    long = pc.greater(pc.utf8_length(texts), GOT_CHARS)
    cut = pc.binary_join_element_wise(pc.utf8_slice_codeunits(texts, 0, GOT_CHARS), "…", "")
    return pc.if_else(long, cut, texts)


def _joined(problems: pd.DataFrame, name: str, separator: str) -> pd.Series:
    """Per row (``at``), the distinct values of ``name`` in order, joined by ``separator``."""
    distinct = problems.drop_duplicates(["at", name])
    rank = distinct.groupby("at", sort=False).cumcount().to_numpy()
    values = distinct[name].to_numpy(dtype=object)
    positions = distinct["at"].to_numpy()
    joined = pd.Series(values[rank == 0], index=positions[rank == 0], dtype=object)
    for later in range(1, int(rank.max(initial=0)) + 1):
        at = rank == later
        where = positions[at]
        joined.loc[where] = joined.loc[where].to_numpy() + separator + values[at]
    return joined


def _json_objects(raw: pd.DataFrame, positions: np.ndarray) -> pyarrow.Array:
    """The rows at ``positions`` as ``json.dumps({column: text or None, ...})`` writes them,
    built column by column."""
    pieces: list[Any] = []
    for number, name in enumerate(raw.columns):
        pieces.append(("{" if number == 0 else ", ") + json.dumps(str(name)) + ": ")
        pieces.append(_quoted(raw[name].iloc[positions], JSON_PLAIN, '"', json.dumps, "null"))
    if not pieces:
        return pyarrow.array(["{}"] * len(positions), pyarrow.string())
    return pc.binary_join_element_wise(*pieces, "}", "")


def _quoted(
    values: pd.Series,
    plain: str,
    quote: str,
    encode: Callable[[Any], str],
    null: str = "None",
) -> pyarrow.Array:
    """``encode`` of each value (``null`` for a null one), vectorised: a text matching
    ``plain`` just gets ``quote`` around it (what ``encode`` gives it); others go one by one."""
    try:
        text = _arrow(values, strict=True)
    except (pyarrow.ArrowTypeError, pyarrow.ArrowInvalid):  # not text: each value its own way
        objects = values.to_numpy(dtype=object)
        present = ~np.asarray(values.isna())
        encoded = [encode(v) if p else null for v, p in zip(objects, present, strict=True)]
        return pyarrow.array(encoded, pyarrow.string())
    simple = pc.match_substring_regex(text, plain).fill_null(True)
    quoted = pc.binary_join_element_wise(quote, text, quote, "")
    if not pc.all(simple).as_py():
        rest = pc.invert(simple)
        encoded = [encode(v) for v in pc.filter(text, rest).to_pylist()]
        quoted = pc.replace_with_mask(quoted, rest, pyarrow.array(encoded, pyarrow.string()))
    return quoted.fill_null(null)


def is_over_threshold(
    bad: int, rows_read: int, max_quarantine_share: float | None, quarantine_min_rows: int = 0
) -> bool:
    """Whether ``bad`` rows of ``rows_read`` reject a file: more than ``max_quarantine_share`` of
    them (None: never) and more than ``quarantine_min_rows`` (0: the share alone decides)."""
    return (
        max_quarantine_share is not None
        and bad > quarantine_min_rows
        and bad > 0
        and bad / rows_read > max_quarantine_share
    )


def validate_file(
    path: Path,
    source: Source,
    logical_date: date,
    max_quarantine_share: float | None = None,
    quarantine_min_rows: int = 0,
) -> ValidationResult:
    """Read and validate one raw file (``format`` and ``missing_day`` as the source says);
    ``max_quarantine_share`` and ``quarantine_min_rows`` as in ``validate_frame``."""
    raw = read_raw_file(path, source)
    return validate_frame(
        raw.frame,
        source,
        logical_date,
        path,
        raw.malformed,
        max_quarantine_share,
        quarantine_min_rows,
    )
