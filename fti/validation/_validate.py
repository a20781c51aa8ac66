"""Validating a file's text rows: typed accepted rows, one quarantine record per bad row, and
the accounting ``rows_read == rows_accepted + rows_quarantined`` true by construction (or a
file rejected whole once its bad rows certainly exceed ``max_quarantine_share``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fti.definitions import Source
from fti.errors import InputFileError
from fti.validation._files import _text_frame, read_raw_file
from fti.validation._records import _Flags, _records
from fti.validation._values import _parse, day_bounds

# Records kept of a file rejected for too many bad rows (the first bad rows by row number).
QUARANTINE_SAMPLE = 1000


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


def empty_rows(source: Source) -> pd.DataFrame:
    """No rows, the source's columns in the dtypes validation gives them (what an empty day
    stages; time columns are UTC datetimes, so ``.dt`` works on them)."""
    return validate_frame(
        _text_frame(source), source, date(2000, 1, 1), Path(f"(no {source.name} rows)")
    ).accepted


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
