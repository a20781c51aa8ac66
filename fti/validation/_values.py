"""Text to typed values, vectorised: exact integers, floats, and ISO 8601 times in a source's
zone stored in UTC; each value that does not parse comes with the reason why (the value rules
are listed in ``fti.validation``)."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

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


def day_bounds(day: date, zone: str) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``[start, end)`` of a logical date in UTC: its midnight to the next one in ``zone``
    (23 or 25 hours on a clock change)."""

    def midnight(d: date) -> pd.Timestamp:
        local = pd.Timestamp(d).tz_localize(zone, ambiguous=True, nonexistent="shift_forward")
        return local.tz_convert("UTC")

    return midnight(day), midnight(day + timedelta(days=1))


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
