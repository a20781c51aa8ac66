"""Shared parts of the fti DAGs: the project's manifest, assets, default task arguments, the
run's date.

Nothing here does work at import: no settings, no database, no heavy imports. Two small files
are read: the manifest (``fti.manifest``: the project's names, start date and assets, written
by ``fti check``) and params.yaml (schedules and the forms' defaults).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pendulum
import yaml
from airflow.sdk import (
    Asset,
    AssetAll,
    AssetAny,
    AssetOrTimeSchedule,
    CronDataIntervalTimetable,
    Param,
)

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


def fail_fast(function: Callable[..., Any]) -> Callable[..., Any]:
    """A task body whose deterministic failures fail the task at once, without retries.

    An fti error whose ``retry_helps`` is False (a bad raw file, too many quarantined rows, a
    definition or leakage error) fails the same way on every try: the task fails now with that
    one-line message instead of retrying it for minutes. Other errors keep the DAG's retries.
    """

    @functools.wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        from fti.errors import FtiError

        try:
            return function(*args, **kwargs)
        except FtiError as exc:
            if exc.retry_helps:
                raise
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException(
                f"{exc} (not retried: the same input fails the same way)"
            ) from exc

    return run


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


def schedule(stage: str, default: str | None, assets: AssetAll | AssetAny | None = None) -> Any:
    """When a DAG runs: params.yaml's ``schedule.<stage>`` cron (``default`` if absent), or
    when the asset condition is met (``AssetAll``: every one has a new event; ``AssetAny``:
    any), or either; ``None`` (no cron, no asset) is manual runs only.

    A cron run covers one interval: logical date = the start of the day it processes.
    """
    expression = params_section("schedule").get(stage, default)
    cron = CronDataIntervalTimetable(expression, timezone="UTC") if expression else None
    if assets is None:
        return cron
    return AssetOrTimeSchedule(timetable=cron, assets=assets) if cron else assets


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


def scoring_requests(
    context: dict[str, Any], model: str, spine: str
) -> list[dict[str, str | None]]:
    """What an inference run of ``model`` scores: a list of (as_of, model version or alias,
    spine feature_version, logical_date, started_by) requests, one scoring task each.

    Started by asset events (``started_by`` "promotion" or "features"): a promoted model
    version scores the date it was trained as of, with that version and feature version; a
    new version of the model's spine group scores its newest date with the champion. When
    only unpromoted model versions started it, the champion's scores stand and the run is
    skipped. Other runs (the form, a cron) score the form's values on their date.
    """
    triggered = context.get("triggering_asset_events", {})
    models = [event.extra for event in triggered.get(model_asset(model), [])]
    features = [event.extra for event in triggered.get(group_asset(spine), [])]
    logical = run_day(context).isoformat() if context.get("logical_date") else None
    if not models and not features:
        params = context["params"]
        return [
            {
                "as_of": run_day(context, params["as_of_date"]).isoformat(),
                "model": str(params["model"]),
                "feature_version": str(params["feature_version"]),
                "logical_date": logical,
                "started_by": "form",
            }
        ]
    requests: dict[str, tuple[str, str, str]] = {}  # one per date: a slice is written once
    for extra in features:  # the champion on the newest date of each new spine version
        requests[str(extra["last_date"])] = ("champion", str(extra["version"]), "features")
    for extra in sorted(models, key=lambda e: int(e.get("model_version") or 0)):
        if extra.get("promoted"):  # a promotion wins its date: it is the newer champion
            version = (str(extra["model_version"]), str(extra["feature_version"]), "promotion")
            requests[str(extra["as_of"])] = version
    if not requests:
        why = "; ".join(
            f"v{extra.get('model_version')}: {extra.get('reason', 'not promoted')}"
            for extra in models
        )
        skip(f"{model} not promoted ({why}): the champion's scores stand")
    return [
        {
            "as_of": as_of,
            "model": ref,
            "feature_version": version,
            "logical_date": logical,
            "started_by": started_by,
        }
        for as_of, (ref, version, started_by) in sorted(requests.items())
    ]


def run_ref(context: dict[str, Any]) -> str:
    """A run id for fti's lineage columns: '<dag_id>/<airflow run id>'."""
    return f"{context['dag'].dag_id}/{context['run_id']}"
