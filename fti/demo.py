"""`fti demo`: generate the churn demo's raw data, then `fti run` over it, scoring past dates of
its history too so that realized performance exists when it ends.

The history has a fixed length ending ``end`` (yesterday by default), whatever the date: the
demo does the same work every day (:func:`demo_days`)."""

from __future__ import annotations

from datetime import date, timedelta

from rich.console import Console

from fti.definitions import Project, load_project
from fti.errors import ConfigError
from fti.features.build import first_event_day
from fti.runner import run_nights, say, summary
from fti.settings import Settings

HISTORY_DAYS = 90  # before the past weeks: labels mature after 30 days, a holdout needs the rest


def demo_days(project: Project, end: date, nights: int, past_weeks: int) -> tuple[date, date]:
    """The first day of raw files and the first day the DAGs run for a demo ending ``end``.

    The runs cover :data:`HISTORY_DAYS` days, then ``past_weeks`` weeks, then ``nights`` days,
    ending ``end``: their number depends on the options only, never on the date. The raw files
    start earlier, as far back as the first day's feature and label rows look (a label row of
    day D is published the night of D + horizon), so the first runs see whole windows.

    Raises:
        ConfigError: the options are out of range, or the history would start before the
            project's start date.
    """
    first = end - timedelta(days=HISTORY_DAYS + 7 * past_weeks + nights - 1)
    if nights < 1 or past_weeks < 0 or first < project.first_date:
        raise ConfigError(
            f"the demo needs --days >= 1, --past-weeks >= 0 and {HISTORY_DAYS} days of history "
            f"before the past weeks and the nights, from the project's start date "
            f"{project.first_date} on: move --end later or ask for fewer --past-weeks"
        )
    looked_at = (
        first_event_day(group, first - timedelta(days=group.horizon)) for group in project.groups
    )
    return max(min(looked_at), project.first_date), first


def run_demo(
    settings: Settings,
    nightly_days: int,
    customers: int,
    end: date,
    drift_after: date | None,
    past_weeks: int = 6,
    console: Console | None = None,
) -> None:
    from churn_demo.generate import generate

    console = console or Console()
    project = load_project(settings.project)
    raw_first, first = demo_days(project, end, nightly_days, past_weeks)
    say(
        console,
        f"generating raw events for {customers} customers, {raw_first} .. {end}; the DAGs run "
        f"{first} .. {end} ({(end - first).days + 1} days)",
    )
    settings.raw_path.mkdir(parents=True, exist_ok=True)
    generate(settings.raw_path, raw_first, end, customers=customers, drift_after=drift_after)
    done = run_nights(settings, first, end, nightly_days, past_weeks, console)
    say(console, summary(settings, end, done["seconds"], "fti demo", done))
