"""Shared constants of the fti DAGs: assets, default task arguments, the run's date.

Nothing here does work at import: no settings, no database, no heavy imports (reading the
small params.yaml for the forms' defaults is the one file read).
"""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml
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

# One slot: one feature publisher writes the store at a time (the store also locks itself).
PUBLISH_POOL = "fti_feature_store"
log = logging.getLogger("fti")


def say_what_failed(context: dict[str, Any]) -> None:
    """A failed task's story in one line of its log: what, for which date, why, what next."""
    ti = context["task_instance"]
    log.error(
        "fti: task %s of %s for %s failed on try %s: %s. Fix the cause, then clear the task to "
        "rerun it; a rerun replaces whatever the failed try left.",
        ti.task_id,
        ti.dag_id,
        context.get("logical_date") or "its run",
        ti.try_number,
        context.get("exception") or "see the log above",
    )


def params_section(stage: str) -> dict[str, Any]:
    """A section of params.yaml (FTI_PARAMS_FILE, else the repository's): the forms' defaults."""
    path = Path(
        os.environ.get("FTI_PARAMS_FILE") or Path(__file__).resolve().parents[1] / "params.yaml"
    )
    try:
        section = (yaml.safe_load(path.read_text()) or {}).get(stage, {})
    except (OSError, yaml.YAMLError):
        return {}  # the DAG still parses; the task reports the params file problem when it runs
    return section if isinstance(section, dict) else {}


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "fti",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=2),
    "on_failure_callback": say_what_failed,
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
