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
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pandera.pandas as pa
import pyarrow
import pyarrow.csv as pacsv

from fti.errors import InputFileError
from fti.project import Source

QUARANTINE_COLUMNS = ["row_number", "column", "rule", "raw_values"]


@dataclass(frozen=True)
class ValidationResult:
    file: Path
    rows_read: int
    accepted: pd.DataFrame
    quarantined: pd.DataFrame  # QUARANTINE_COLUMNS; row_number is the 1-based line in the file

    @property
    def rows_accepted(self) -> int:
        return len(self.accepted)

    @property
    def rows_quarantined(self) -> int:
        return len(self.quarantined)


@dataclass(frozen=True)
class RawRows:
    """A raw file as text: rows indexed by their line in the file, and unparseable lines."""

    frame: pd.DataFrame  # the source's columns as text (null for empty); index = line number
    malformed: list[tuple[int, str, str]]  # (line number, problem, the line's text)

    @property
    def rows_read(self) -> int:
        return len(self.frame) + len(self.malformed)


def read_raw_file(path: Path, source: Source) -> RawRows:
    """Read every column as text; a file that cannot be used at all raises InputFileError.

    A line with the wrong number of fields (a very wide row, a truncated last line) is not
    fatal: it is returned in ``malformed`` and quarantined like any other bad row.
    """
    if not path.exists():
        raise InputFileError(f"{path}: raw file for source {source.name!r} does not exist")
    header = _header(path)
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
    if table.num_rows + len(malformed) == 0:
        raise InputFileError(
            f"{path}: has a header but no rows; a day of {source.name!r} was expected. "
            "Check the export that wrote it, then rerun the day."
        )
    frame = table.to_pandas()
    bad_lines = {line for line, _, _ in malformed}
    lines = (n for n in itertools.count(2) if n not in bad_lines)  # line 1 is the header
    frame.index = pd.Index([next(lines) for _ in range(len(frame))], name="line")
    return RawRows(frame[source.columns], malformed)


def _header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            first = handle.readline()
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from exc
    if not first.strip():
        raise InputFileError(f"{path}: is empty (no header line); a day of events was expected")
    return next(csv.reader([first]))


def validate_frame(
    raw: pd.DataFrame,
    source: Source,
    logical_date: date,
    file: Path,
    malformed: Sequence[tuple[int, str, str]] = (),
) -> ValidationResult:
    """Split text rows into typed accepted rows and quarantined rows, one record per bad row.

    ``raw``'s index is each row's line in the file; ``malformed`` lines (line, problem, text)
    could not be split into fields and are quarantined whole.
    """
    problems: dict[int, list[tuple[str, str]]] = {}

    def flag(index: int, column: str, rule: str) -> None:
        problems.setdefault(int(index), []).append((column, rule))

    # Pass 1 types the text column by column (vectorised; a value that does not parse or a null
    # where none is allowed flags its row). Pass 2 runs the schema's rules on the typed rows.
    typed = raw.copy()
    for name, column in source.schema.columns.items():
        values = raw[name]
        parsed = _parse(values, column.dtype) if column.coerce else values
        for index in values.index[values.notna() & parsed.isna()]:
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

    start = pd.Timestamp(datetime.combine(logical_date, datetime.min.time(), tzinfo=UTC))
    end = start + timedelta(days=1)
    times = typed[source.time_column]
    for index in typed.index[(times < start) | (times >= end)]:
        flag(index, source.time_column, f"inside logical date {logical_date.isoformat()}")
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


def _parse(values: pd.Series, dtype: object) -> pd.Series:
    """Text to ``dtype``; what does not parse becomes null (the caller flags it)."""
    kind = str(dtype)
    if kind.startswith("datetime64"):
        return pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    if kind.startswith(("int", "Int", "float", "Float")):
        numbers = pd.to_numeric(values, errors="coerce")
        if kind.lower().startswith("int"):
            numbers = numbers.where(numbers.isna() | (numbers == numbers.round()))
        return numbers
    return values


def validate_file(path: Path, source: Source, logical_date: date) -> ValidationResult:
    raw = read_raw_file(path, source)
    return validate_frame(raw.frame, source, logical_date, path, raw.malformed)
