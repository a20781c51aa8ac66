"""What "now" is when fti judges freshness: the wall clock, the newest raw date, or a moment.

`fti monitor health`, `fti monitor runs`, `fti monitor gaps`, the health page and `fti serve`
all ask ``judging_moment`` and judge at what it says. Three answers, the same words everywhere
(``--now`` on the commands, ``?now=`` on the page, ``now`` in params.yaml's ``monitor``
section, which sets the default once for a project):

- ``clock`` (the default): the current time, UTC. What a deployment fed every night wants:
  yesterday missing at 07:00 is a late night, whatever the data.
- ``data``: the newest raw date ``R`` (the newest ``<raw>/<source>/<YYYY-MM-DD>.<format>`` of
  any source): every group, label group and model is expected to hold R (labels R - horizon)
  and nothing later, judged at the latest moment R is due (``Moment.at``); `fti serve` judges
  staleness on R + 1 (R's features are as fresh as they get the day after R). For a project
  on past data: otherwise its history is "4356 days behind" and every served score "stale".
- an ISO date and time (without offset: UTC): judged as the clock would at that moment.
"""

from __future__ import annotations

import time as timer
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fti.definitions import DEFAULT_FRESHNESS, Project
from fti.errors import ConfigError, FtiError
from fti.params import load_params
from fti.settings import Settings

CLOCK, DATA, GIVEN = "clock", "data", "given"
KEY = "now"  # params.yaml: monitor.now
RAW_RECHECK_SECONDS = 60.0  # how long `fti serve` trusts the newest raw date it read
PAST_DATA_DAYS = 30  # every item at least this far behind the clock: past data, not a late night


@dataclass(frozen=True)
class Moment:
    """When to judge: ``at`` (UTC); ``how`` it was chosen (``clock``, ``data`` or ``given``);
    ``through``: with ``data``, the newest raw date (no later date is due, whatever ``at``)."""

    at: datetime
    how: str
    through: date | None = None

    def describe(self) -> str:
        """``clock``, ``data: newest raw date 2013-12-31`` or ``given``, for one line of output."""
        return f"data: newest raw date {self.through}" if self.through else self.how


def parse_now(text: str) -> str | datetime:
    """``clock``, ``data``, or the moment an ISO date and time names (naive: UTC).

    Raises:
        ValueError: ``text`` is none of them (the caller names where it came from).
    """
    word = text.strip().lower()
    if word in (CLOCK, DATA):
        return word
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO date and time, {CLOCK!r} or {DATA!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def configured_now(settings: Settings) -> str | datetime:
    """params.yaml's ``monitor.now`` (``clock`` when absent).

    Raises:
        ConfigError: it is none of clock, data or an ISO date and time (names the file).
    """
    value = load_params(settings.params_file, "monitor").get(KEY, CLOCK)
    try:
        # YAML reads an unquoted 2026-05-01T06:00 as a naive datetime: UTC, as on the command line
        return parse_now(value.isoformat() if isinstance(value, date) else str(value))
    except ValueError as exc:
        raise ConfigError(
            f"{settings.params_file}: monitor.now: {exc}; set it to clock (production), data "
            "(a project on past data) or a moment such as 2026-05-01T06:00"
        ) from None


def judging_moment(now: str | None, settings: Settings, project: Project) -> Moment:
    """The moment ``now`` (``--now``'s text; None: params.yaml's ``monitor.now``) names.

    Raises:
        ValueError: ``now`` is not clock, data or an ISO date and time.
        ConfigError: params.yaml's ``monitor.now`` is not either.
        FtiError: ``data``, but no source has a raw file.
    """
    chosen = parse_now(now) if now is not None else configured_now(settings)
    if isinstance(chosen, datetime):
        return Moment(chosen, GIVEN)
    if chosen == CLOCK:
        return Moment(datetime.now(UTC), CLOCK)
    newest = require_newest_raw_date(project, settings.raw_path)
    due = [item.fresh_by.due(newest) for item in [*project.groups, *project.models]]
    return Moment(max(due, default=DEFAULT_FRESHNESS.due(newest)), DATA, newest)


def serving_day(now: str | None, settings: Settings, project: Project) -> Callable[[], date]:
    """The day `fti serve` judges staleness on, asked per request: the UTC date (``clock``), the
    given moment's date, or the day after the newest raw date (``data``; the raw folder is read
    again at most every ``RAW_RECHECK_SECONDS``, so files added while serving count)."""
    moment = judging_moment(now, settings, project)
    if moment.how == CLOCK:
        return lambda: datetime.now(UTC).date()
    if moment.through is None:
        return lambda: moment.at.date()
    return _DayAfterNewestRaw(project, settings.raw_path, moment.through)


class _DayAfterNewestRaw:
    """The day after the newest raw date, read again at most every ``RAW_RECHECK_SECONDS``."""

    def __init__(self, project: Project, raw_root: Path, newest: date) -> None:
        self.project, self.raw_root = project, raw_root
        self.day, self.read_at = newest + timedelta(days=1), timer.monotonic()

    def __call__(self) -> date:
        if timer.monotonic() - self.read_at > RAW_RECHECK_SECONDS:
            newest = newest_raw_date(self.project, self.raw_root)
            self.day = newest + timedelta(days=1) if newest else self.day
            self.read_at = timer.monotonic()
        return self.day


def newest_raw_date(project: Project, raw_root: Path) -> date | None:
    """The newest date any source of ``project`` has a raw file for (None: no file)."""
    found = [
        day
        for source in project.sources
        for path in (raw_root / source.name).glob(f"*.{source.format}")
        for day in [_file_date(path.stem)]
        if day is not None
    ]
    return max(found, default=None)


def require_newest_raw_date(project: Project, raw_root: Path) -> date:
    """``newest_raw_date``, or an error saying what to do when there is none."""
    newest = newest_raw_date(project, raw_root)
    if newest is None:
        names = ", ".join(s.name for s in project.sources)
        raise FtiError(
            f"now is 'data' but {raw_root} holds no raw file of {names} "
            "(<source>/<YYYY-MM-DD>.<format>): add the raw files, or pass --now clock or a moment"
        )
    return newest


def _file_date(stem: str) -> date | None:
    try:
        return date.fromisoformat(stem)
    except ValueError:
        return None


def past_data_hint(moment: Moment, days_behind: list[int | None]) -> str | None:
    """A line for a project judged on the clock whose every group, label group and model that
    holds anything is ``PAST_DATA_DAYS`` or more behind (``days_behind``: one per item, None:
    nothing held or nothing due): its data is most likely historical."""
    behind = [days for days in days_behind if days is not None]
    if moment.how != CLOCK or not behind or min(behind) < PAST_DATA_DAYS:
        return None
    return (
        f"everything is {min(behind)} day(s) or more behind the clock: for a project on past "
        "data, set now: data in params.yaml's monitor section to judge on the newest raw date "
        "(--now data for one command)"
    )
