"""A raw file as text: every declared column of a CSV or Parquet file, rows indexed by their line
(CSV) or row (Parquet), and the CSV lines that could not be split into fields.

A Parquet column is turned into text, so CSV and Parquet rows meet exactly the same rules
(see ``fti.validation``); a file that cannot be used at all raises ``InputFileError``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fti.definitions import Source
from fti.errors import InputFileError


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
