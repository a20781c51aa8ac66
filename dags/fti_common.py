"""Shared parts of the fti DAGs: the project's manifest, assets, default task arguments, the
run's date.

Nothing here does work at import: no settings, no database, no heavy imports. Two small files
are read: the manifest (``fti.manifest``: the project's names, start date and assets, written
by ``fti check``) and params.yaml (schedules and the forms' defaults).
"""

from __future__ import annotations

import logging
import os
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml
from airflow.sdk import Asset, AssetAll, AssetOrTimeSchedule, CronDataIntervalTimetable, Param

from fti.manifest import read_manifest

# The project, as `fti check` last wrote it: no manifest, no DAGs (an import error says why).
MANIFEST = read_manifest()
PROJECT_START = pendulum.parse(MANIFEST["start_date"]).in_timezone("UTC")
# The DAGs' own start date is fixed and early, and catchup is off: Airflow makes no task for a
# logical date before a DAG's start date, so a run for a date before the project's start would
# "succeed" doing nothing. With this one every run has its tasks, and run_day refuses such a
# date with the reason.
START_DATE = pendulum.datetime(2000, 1, 1, tz="UTC")
TAGS = ["fti", f"project:{MANIFEST['project']}"]


def group_asset(group: str) -> Asset:
    """Emitted by the feature pipeline for each version of a feature or label group
    (extra: group, version, new)."""
    return Asset(name=f"fti_group_{group}", uri=f"fti://feature-store/{group}")


def model_asset(model: str) -> Asset:
    """Emitted by a model's training pipeline for each version it registers (extra: the
    promotion decision, model_version, feature_versions, label_version, as_of)."""
    return Asset(name=f"fti_model_{model}", uri=f"fti://model-registry/{model}")


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


def schedule(stage: str, default: str | None, assets: list[Asset] | None = None) -> Any:
    """When a DAG runs: params.yaml's ``schedule.<stage>`` cron (``default`` if absent), or
    once every one of ``assets`` has a new event, or either; ``None`` (no cron, no asset) is
    manual runs only.

    A cron run covers one interval: logical date = the start of the day it processes.
    """
    expression = params_section("schedule").get(stage, default)
    cron = CronDataIntervalTimetable(expression, timezone="UTC") if expression else None
    if not assets:
        return cron
    condition = AssetAll(*assets)
    return AssetOrTimeSchedule(timetable=cron, assets=condition) if cron else condition


def dry_run_param(what: str) -> Param:
    """The form's dry-run switch: do every step but ``what``; nothing downstream is triggered."""
    return Param(
        False,
        type="boolean",
        description=f"Dry run: do everything but {what}, and trigger nothing.",
    )


def skip(reason: str) -> None:
    """End the task here, skipped (so its outlets emit no asset event), saying why in its log
    (Airflow itself logs only "Skipping task.")."""
    from airflow.sdk.exceptions import AirflowSkipException

    log.info("fti: skipped: %s", reason)
    raise AirflowSkipException(reason)


def skip_if_dry_run(context: dict[str, Any], what: str) -> None:
    """End a dry run's task here, skipped: no write, and no asset event for downstream DAGs."""
    if context["params"].get("dry_run"):
        skip(f"dry run: {what}")


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
        day = date.fromisoformat(override)
    else:
        when = context.get("logical_date") or context.get("data_interval_start")
        if when is None:
            raise ValueError("this run has no logical date: give a date in the trigger form")
        day = pendulum.instance(when).in_timezone("UTC").date()
    if day < PROJECT_START.date():
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{day} is before the start date {PROJECT_START.date()} of project "
            f"{MANIFEST['project']!r}: "
            "pick a later date (or move start_date in the definition and run `fti check`)"
        )
    return day


def scoring_request(context: dict[str, Any], model: str) -> dict[str, str | None]:
    """What an inference run of ``model`` scores: as_of, model (version or alias),
    feature_version, and its logical_date.

    A run started by new model versions (asset events) scores what the newest promoted one
    was trained on, with that version; if none was promoted, the champion's predictions
    stand and the run is skipped. Other runs take the form's values and their logical date.
    """
    events = list(context.get("triggering_asset_events", {}).get(model_asset(model), []))
    logical = run_day(context).isoformat() if context.get("logical_date") else None
    if events:
        promoted = [event.extra for event in events if event.extra.get("promoted")]
        if not promoted:
            why = "; ".join(
                f"v{event.extra.get('model_version')}: {event.extra.get('reason', 'not promoted')}"
                for event in events
            )
            skip(f"{model} not promoted ({why}): the champion's scores stand")
        newest = promoted[-1]
        return {
            "as_of": str(newest["as_of"]),
            "model": str(newest["model_version"]),
            "feature_version": str(newest["feature_version"]),
            "logical_date": logical,
        }
    params = context["params"]
    return {
        "as_of": run_day(context, params["as_of_date"]).isoformat(),
        "model": str(params["model"]),
        "feature_version": str(params["feature_version"]),
        "logical_date": logical,
    }


def run_ref(context: dict[str, Any]) -> str:
    """A run id for fti's lineage columns: '<dag_id>/<airflow run id>'."""
    return f"{context['dag'].dag_id}/{context['run_id']}"
