"""Shared constants of the fti DAGs: assets, default task arguments, the run's date.

Nothing here does work at import: no settings, no database, no heavy imports.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pendulum
from airflow.sdk import Asset
from airflow.timetables.interval import CronDataIntervalTimetable

# Emitted by the feature pipeline for every new feature-group version (extra: group, version).
FEATURES = Asset(name="fti_feature_versions", uri="fti://feature-store/versions")
# Emitted by the training pipeline for every registered model version (extra: name, version).
MODELS = Asset(name="fti_model_versions", uri="fti://model-registry/versions")

START_DATE = pendulum.datetime(2026, 1, 1, tz="UTC")
# A run covers one day: logical date = the start of the day it processes (classic intervals).
DAILY = CronDataIntervalTimetable("@daily", timezone="UTC")
TAGS = ["fti"]

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "fti",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=2),
}


def run_day(context: dict[str, Any], override: str | None = None) -> date:
    """The date a run processes: a date given in the trigger form, else its logical date.

    Scheduled runs have logical date = start of the day they process; a manual run processes
    the logical date the user picked (its inferred data interval would be the day before).
    """
    if override:
        return date.fromisoformat(override)
    when = context.get("logical_date") or context.get("data_interval_start")
    if when is None:
        raise ValueError("this run has no logical date: give a date in the trigger form")
    return pendulum.instance(when).in_timezone("UTC").date()


def run_ref(context: dict[str, Any]) -> str:
    """A run id for fti's lineage columns: '<dag_id>/<airflow run id>'."""
    return f"{context['dag'].dag_id}/{context['run_id']}"
