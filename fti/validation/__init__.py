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

This package's public face is this module; inside it, ``_files`` reads a raw file as text,
``_values`` parses text to typed values, ``_records`` builds the quarantine records and
``_validate`` splits the rows and keeps the accounting.
"""

from fti.validation._files import RawRows, read_raw_file
from fti.validation._records import QUARANTINE_COLUMNS
from fti.validation._validate import (
    QUARANTINE_SAMPLE,
    ValidationResult,
    empty_rows,
    is_over_threshold,
    validate_file,
    validate_frame,
)
from fti.validation._values import day_bounds, parse_times

__all__ = [
    "QUARANTINE_COLUMNS",
    "QUARANTINE_SAMPLE",
    "RawRows",
    "ValidationResult",
    "day_bounds",
    "empty_rows",
    "is_over_threshold",
    "parse_times",
    "read_raw_file",
    "validate_file",
    "validate_frame",
]
