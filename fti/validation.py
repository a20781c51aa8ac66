"""Row-level validation of raw files: good rows go on, bad rows go to quarantine with a reason.

pandera does the rule checking (declared next to each project's source); this module turns
its failure cases into one quarantine record per bad row and keeps the accounting
``rows_read == rows_accepted + rows_quarantined`` true by construction.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd
import pandera.pandas as pa

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


def read_raw_file(path: Path, source: Source) -> pd.DataFrame:
    """Read every column as text; a file that cannot be used at all raises InputFileError."""
    if not path.exists():
        raise InputFileError(f"{path}: raw file for source {source.name!r} does not exist")
    try:
        frame = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8"
        )
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise InputFileError(f"{path}: cannot be read as UTF-8 CSV ({exc})") from exc
    missing = [c for c in source.columns if c not in frame.columns]
    if missing:
        raise InputFileError(
            f"{path}: missing required column(s) {', '.join(missing)}; "
            f"source {source.name!r} needs {', '.join(source.columns)}"
        )
    return frame[source.columns]


def validate_frame(
    raw: pd.DataFrame, source: Source, logical_date: date, file: Path
) -> ValidationResult:
    """Split text rows into typed accepted rows and quarantined rows, one record per bad row."""
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
                "row_number": int(raw.index.get_loc(i)) + 2,  # header is line 1
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
    result = ValidationResult(file, len(raw), accepted.reset_index(drop=True), quarantined)
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
    return validate_frame(read_raw_file(path, source), source, logical_date, path)
