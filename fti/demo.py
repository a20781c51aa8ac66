"""`fti demo`: generate the churn demo's raw data, then `fti run` over it, scoring past dates of
its history too so that realized performance exists when it ends."""

from __future__ import annotations

from datetime import date

from fti.definitions import load_project
from fti.errors import ConfigError
from fti.runner import run_nights, summary
from fti.settings import Settings

HISTORY_DAYS = 90  # labels mature after 30 days; a time-based holdout needs the rest


def run_demo(
    settings: Settings,
    nightly_days: int,
    customers: int,
    end: date,
    drift_after: date | None,
    past_weeks: int = 16,
) -> None:
    from churn_demo.generate import generate

    project = load_project(settings.project)
    history = (end - project.first_date).days - nightly_days - 7 * max(past_weeks, 0)
    if nightly_days < 1 or past_weeks < 0 or history < HISTORY_DAYS:
        raise ConfigError(
            f"the demo needs --days >= 1, --past-weeks >= 0 and at least {HISTORY_DAYS} days of "
            f"history from the project's start date {project.first_date} before the past weeks "
            "and the nights (labels mature after 30 days): move --end later or ask for fewer "
            "--past-weeks"
        )
    first = project.first_date
    print(f"generating raw events for {customers} customers, {first} .. {end}", flush=True)
    settings.raw_path.mkdir(parents=True, exist_ok=True)
    generate(settings.raw_path, first, end, customers=customers, drift_after=drift_after)
    done = run_nights(settings, first, end, nightly_days, past_weeks)
    print(summary(settings, end, done["seconds"], "fti demo"))
