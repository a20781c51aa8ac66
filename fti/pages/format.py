"""Values formatted for people: the Jinja filters of the fti pages.

Every value a page shows goes through one of these (``value`` picks by type), so no page
prints a Python repr: numbers to 4 significant digits (counts in full, with thousands
separators), dicts as key/value lists, lists as chips, datetimes humanised with the exact value
kept for the hover, hashes shortened (the whole value is copied by a button).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from markupsafe import Markup, escape

DASH = "\u2013"  # what an empty cell shows
MINUS = "\u2212"


def significant(value: float | int | None, digits: int = 4) -> str:
    """``value`` to ``digits`` significant digits for people: ``0.7181``, ``-41.5``, ``1,235``,
    ``0.0001234``; an exponent only below 1e-4 or from 1e9 on; a dash for None.

    Trailing zeros after the point are dropped (``0.3``, not ``0.3000``); integers are counts
    and keep every digit.
    """
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return _minus(f"{value:,}")
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return _minus("-\u221e" if value < 0 else "\u221e")
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if exponent < -4 or exponent >= 9:
        mantissa, _, power = f"{value:.{digits - 1}e}".partition("e")
        return _minus(f"{_trim(mantissa)}\u00d710{_superscript(int(power))}")
    decimals = max(digits - 1 - exponent, 0)
    rounded = round(value, decimals)
    if rounded != 0 and math.floor(math.log10(abs(rounded))) > exponent:  # 9.9996 -> 10.00
        decimals = max(decimals - 1, 0)
    return _minus(_trim(f"{value:,.{decimals}f}"))


def count(value: int | float | None) -> str:
    """A count of rows, files, ...: every digit, thousands separated; a dash for None."""
    if value is None:
        return DASH
    return _minus(f"{int(value):,}")


def _trim(text: str) -> str:
    return text.rstrip("0").rstrip(".") if "." in text else text


def _minus(text: str) -> str:
    return text.replace("-", MINUS)


def _superscript(power: int) -> str:
    return str(power).translate(
        str.maketrans(
            "-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079"
        )
    )


@dataclass(frozen=True)
class Direction:
    """Which way a metric is better: ``arrow`` and the words said on hover and to a reader."""

    arrow: str
    words: str


HIGHER = Direction("\u2191", "higher is better")
LOWER = Direction("\u2193", "lower is better")


def direction(metric: str) -> Direction | None:
    """HIGHER or LOWER for a metric fti knows (scikit-learn's scorer names: losses are lower
    is better), None for a figure that is no metric (``rows``, ``positive_rate``)."""
    from fti.errors import ConfigError
    from fti.training.metrics import higher_is_better

    try:
        return HIGHER if higher_is_better(metric) else LOWER
    except ConfigError:
        return None


def humanise_delta(delta: timedelta) -> str:
    """``just now``, ``5 min``, ``3 h``, ``2 days``, ``5 weeks``, ``4 months``, ``2 years``."""
    seconds = abs(delta.total_seconds())
    for limit, unit, size in (
        (60, "", 0),
        (3600, "min", 60),
        (86400 * 2, "h", 3600),
        (86400 * 14, "days", 86400),
        (86400 * 60, "weeks", 86400 * 7),
        (86400 * 730, "months", 86400 * 30.44),
    ):
        if seconds < limit:
            return "just now" if size == 0 else f"{int(seconds // size)} {unit}"
    return f"{int(seconds // (86400 * 365.25))} years"


def ago(moment: datetime | None, now: datetime | None = None) -> str:
    """``3 h ago`` / ``in 2 days`` for ``moment`` (naive: UTC), relative to ``now``."""
    if moment is None:
        return DASH
    moment = utc(moment)
    now = utc(now or datetime.now(UTC))
    words = humanise_delta(now - moment)
    if words == "just now":
        return words
    return f"{words} ago" if moment <= now else f"in {words}"


def exact(moment: datetime | date | None) -> str:
    """The exact value behind a humanised one (the hover): ``2026-04-30 03:05:00 UTC``."""
    if moment is None:
        return ""
    if isinstance(moment, datetime):
        return f"{utc(moment):%Y-%m-%d %H:%M:%S} UTC"
    return f"{moment:%Y-%m-%d} ({moment:%A})"


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one, as SQLite hands them back, is read as UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def when(moment: datetime | None) -> str:
    """A moment to the minute, in UTC: ``2026-04-30 03:05``."""
    return DASH if moment is None else f"{utc(moment):%Y-%m-%d %H:%M}"


def short_hash(value: str | None, length: int = 10) -> str:
    """The first ``length`` characters of a hash (the copy button copies the whole)."""
    if not value:
        return DASH
    return value if len(value) <= length + 2 else value[:length]


def words(key: str) -> str:
    """A snake_case key as words: ``n_holdout`` -> ``n holdout``."""
    return key.replace("_", " ")


def breakable(text: object) -> Markup:
    """``text`` escaped, with a line-break opportunity after each ``/`` and ``_`` run (an id
    such as ``churn_inference/manual__2026-04-30`` wraps there, not mid-word)."""
    escaped = str(escape("" if text is None else text))
    return Markup(re.sub(r"(/|_+)", r"\1<wbr>", escaped))  # noqa: S704 - escaped above


def value(item: Any) -> str:
    """Any scalar as text for people (dicts and lists are rendered by the ``value`` macro)."""
    if item is None:
        return DASH
    if isinstance(item, bool):
        return "yes" if item else "no"
    if isinstance(item, int | float):
        return significant(item)
    if isinstance(item, datetime):
        return when(item)
    if isinstance(item, date):
        return item.isoformat()
    return str(item)


def is_mapping(item: Any) -> bool:
    return isinstance(item, dict)


def is_sequence(item: Any) -> bool:
    return isinstance(item, list | tuple)


FILTERS = {
    "significant": significant,
    "count": count,
    "ago": ago,
    "exact": exact,
    "when": when,
    "short_hash": short_hash,
    "words": words,
    "breakable": breakable,
    "value": value,
}
TESTS = {"mapping_value": is_mapping, "sequence_value": is_sequence}
