"""Shared parts of the fti DAGs: the projects' manifests, assets, default task arguments, the
run's date.

Nothing here does work at import: no settings, no database, no heavy imports. Small files are
read: the manifests (``fti.manifest``: each project's names, start date and assets, written by
its ``fti check``; one project each, several projects per deployment) and each project's
params.yaml (schedules, queues, deadlines and the forms' defaults).
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable, Mapping
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
    BaseNotifier,
    CronDataIntervalTimetable,
    DeadlineAlert,
    DeadlineReference,
    Param,
    SyncCallback,
)

from fti import access
from fti.manifest import project_dag_id, read_manifests

# Every project, as its `fti check` last wrote it, sorted by name: no manifest, no DAGs, and two
# that build the same name, none either (an import error says why).
MANIFESTS = read_manifests()
# The DAGs' own start date is fixed and early, and catchup is off: Airflow makes no task for a
# logical date before a DAG's start date, so a run for a date before the project's start would
# "succeed" doing nothing. With this one every run has its tasks, and run_day refuses such a
# date with the reason.
START_DATE = pendulum.datetime(2000, 1, 1, tz="UTC")


def project_start(manifest: Mapping[str, Any]) -> date:
    """The first date the project's DAGs process (its definition's start date)."""
    return pendulum.parse(manifest["start_date"]).in_timezone("UTC").date()


def tags(manifest: Mapping[str, Any]) -> list[str]:
    """The tags every DAG of the project carries."""
    return ["fti", f"project:{manifest['project']}"]


def dag_id(manifest: Mapping[str, Any], dag: str) -> str:
    """A project-level DAG's id (``<project>_feature_pipeline``, ``<project>_retention``)."""
    return project_dag_id(str(manifest["project"]), dag)


def group_asset(group: str) -> Asset:
    """Emitted by the feature pipeline for each version of a feature or label group
    (extra: group, version, new). The store's group names are the deployment's: a project that
    reads another's group sees the asset its owner emits."""
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


def project_task(manifest: Mapping[str, Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A task body of ``manifest``'s project: it runs in the project's environment (its
    definition, params file, raw files and folder: ``fti.deployment.project_env``), and its
    deterministic failures fail the task at once (:func:`fail_fast`)."""

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        checked = fail_fast(function)

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            from fti.deployment import project_env

            with project_env(manifest):
                return checked(*args, **kwargs)

        return run

    return decorate


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


def params_section(manifest: Mapping[str, Any], stage: str) -> dict[str, Any]:
    """A section of the project's params.yaml (the one its manifest names, else FTI_PARAMS_FILE,
    else the repository's): schedules, queues, deadlines and the forms' defaults."""
    path = Path(
        manifest.get("params_file")
        or os.environ.get("FTI_PARAMS_FILE")
        or Path(__file__).resolve().parents[1] / "params.yaml"
    )
    try:
        section = (yaml.safe_load(path.read_text()) or {}).get(stage, {})
    except (OSError, yaml.YAMLError):
        return {}  # the DAG still parses; the task reports the params file problem when it runs
    return section if isinstance(section, dict) else {}


def schedule(
    manifest: Mapping[str, Any],
    stage: str,
    default: str | None,
    assets: AssetAll | AssetAny | None = None,
) -> Any:
    """When a DAG runs: params.yaml's ``schedule.<stage>`` cron (``default`` if absent), or
    when the asset condition is met (``AssetAll``: every one has a new event; ``AssetAny``:
    any), or either; ``None`` (no cron, no asset) is manual runs only.

    A cron run covers one interval: logical date = the start of the day it processes.
    """
    expression = params_section(manifest, "schedule").get(stage, default)
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


class WebhookNotifier(BaseNotifier):
    """Airflow's notifier interface over fti's webhook alert (fti.monitoring.notify): one JSON
    POST to ``FTI_ALERT_WEBHOOK_URL`` per missed deadline or failed task, read when it fires.

    ``event`` ``task_failed``: a task's on_failure_callback (after its last try; the reason is
    its exception's first line). ``deadline_missed``: a DAG's deadline alert, run by Airflow's
    executor when the scheduler finds the deadline passed (``expected`` says what was due).
    A receiver that is down is logged, never raised: the alert is lost, the run is not.
    """

    def __init__(
        self,
        event: str = "task_failed",
        expected: str | None = None,
        context: dict[str, Any] | None = None,
        project: str | None = None,
    ) -> None:
        super().__init__(context)  # type: ignore[arg-type]
        self.event = event
        self.expected = expected
        self.project = project

    def notify(self, context: Any) -> None:
        try:
            from fti.monitoring import notify

            notify.send(self.alert(context))
        except Exception:  # noqa: BLE001 - an alert must never fail what it reports on
            log.exception("fti: the %s alert could not be built or sent", self.event)

    def alert(self, context: Any) -> dict[str, Any]:
        """The alert's JSON body from a task's context or a deadline callback's context."""
        from airflow.sdk.configuration import conf

        from fti.monitoring import notify

        run = context.get("dag_run")
        if isinstance(run, dict):  # a deadline callback: the run as the REST API shows it
            dag_id, run_id = str(run["dag_id"]), str(run["dag_run_id"])
            logical = run.get("logical_date")
            deadline = notify.iso_utc((context.get("deadline") or {}).get("deadline_time"))
            what = f"{dag_id} run {run_id}"
            reason = (
                f"{what} had not finished by its deadline {deadline}"
                f" ({self.expected or 'as declared in params.yaml deadlines'}); "
                f"it was {run.get('state')}"
            )
            extra: dict[str, Any] = {"deadline": deadline, "state": run.get("state")}
        else:  # a failed task
            ti = context["task_instance"]
            dag_id, run_id = ti.dag_id, ti.run_id
            logical = context.get("logical_date")
            index = getattr(ti, "map_index", -1)
            what = f"task {ti.task_id}{f'[{index}]' if index >= 0 else ''} of {dag_id}"
            reason = str(context.get("exception") or "see the task's log")
            extra = {"task_id": ti.task_id, "try_number": ti.try_number}
        return notify.alert(
            event=self.event,
            project=self.project,
            dag_id=dag_id,
            run_id=run_id,
            logical_date=logical,
            what=what,
            reason=reason,
            link=notify.run_link(conf.get("api", "base_url", fallback=None), dag_id, run_id),
            **extra,
        )


def deadlines(manifest: Mapping[str, Any], stage: str) -> list[DeadlineAlert] | None:
    """A DAG's deadline alerts, from params.yaml's ``deadlines.<stage>`` (read at parse time, as
    the schedules are); each posts a ``deadline_missed`` alert through WebhookNotifier.

    ``by: "HH:MM"``: the run has succeeded by HH:MM UTC on the day after its logical date (the
    day it processes); ``within_hours: N``: the run has succeeded within N hours of being
    queued (also covers runs that asset events started: they have no logical date). A run that
    fails or is still running at the deadline is reported; one that succeeded in time is not.
    """
    spec = params_section(manifest, "deadlines").get(stage) or {}
    project = str(manifest["project"])
    where = f"params.yaml deadlines.{stage}"
    if not isinstance(spec, dict) or set(spec) - {"by", "within_hours"}:
        raise ValueError(
            f'{where}: expected a mapping with `by` ("HH:MM", UTC) and/or `within_hours`, '
            f"got {spec!r}"
        )
    alerts = []
    if "by" in spec:
        by = spec["by"]
        try:
            hours, minutes = (int(part) for part in str(by).split(":"))
            if not isinstance(by, str) or not (0 <= hours < 24 and 0 <= minutes < 60):
                raise ValueError
        except ValueError:
            raise ValueError(
                f'{where}.by: {by!r} is not a quoted UTC time of day such as "03:00"'
            ) from None
        expected = f"succeeded by {by} UTC the day after its logical date"
        alerts.append(
            DeadlineAlert(
                reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
                interval=timedelta(days=1, hours=hours, minutes=minutes),
                callback=SyncCallback(
                    WebhookNotifier,
                    kwargs={"event": "deadline_missed", "expected": expected, "project": project},
                ),
                name=f"{stage} by {by} UTC",
            )
        )
    if "within_hours" in spec:
        within = spec["within_hours"]
        if isinstance(within, bool) or not isinstance(within, int | float) or within <= 0:
            raise ValueError(f"{where}.within_hours: {within!r} is not a number of hours above 0")
        expected = f"succeeded within {within} h of being queued"
        alerts.append(
            DeadlineAlert(
                reference=DeadlineReference.DAGRUN_QUEUED_AT,
                interval=timedelta(hours=within),
                callback=SyncCallback(
                    WebhookNotifier,
                    kwargs={"event": "deadline_missed", "expected": expected, "project": project},
                ),
                name=f"{stage} within {within} h",
            )
        )
    return alerts or None


def without_deadline_alerts(dag: Any) -> Any:
    """``dag`` with its deadline alerts dropped, for ``dag.test()`` (`fti run`, the DAG tests).

    dag.test() enforces no deadline (only the scheduler looks for passed ones, only an executor
    runs their callbacks), and in Airflow 3.3.2 it crashes at the end of every successful run
    of a DAG that has some (apache/airflow#73428): ``'dict' object has no attribute 'hex'``.
    The DAG object changes in place (and dag.test() stores it so); a running scheduler parses
    the DAG files again and keeps them. Only `fti run` and the tests call this.
    """
    dag.deadline = None
    return dag


JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}

DEFAULT_ARGS: dict[str, Any] = {
    "owner": "fti",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
    "execution_timeout": timedelta(hours=2),
}


PIPELINES = ("features", "training", "inference")


def access_control(manifest: Mapping[str, Any]) -> dict[str, dict[str, set[str]]] | None:
    """Which auth manager roles operate the project's DAGs (read, edit, trigger), beside
    Airflow's global roles: the project's params.yaml ``access.roles`` (fti.access; read at
    parse time, as the schedules are). The FAB auth manager applies it when the dag-processor
    parses the DAGs; a listed role that does not exist there is an import error naming it. No
    section: None (the global roles decide alone).
    """
    return access.access_control(params_section(manifest, "access") or None)


def task_defaults(manifest: Mapping[str, Any], pipeline: str) -> dict[str, Any]:
    """A pipeline's default task arguments: ``DEFAULT_ARGS``, the failure callbacks (the task's
    log, and the alert webhook FTI_ALERT_WEBHOOK_URL when one is set, naming the project) and
    its Celery queue, the project's params.yaml ``queues.<pipeline>`` (read at parse time, as
    the schedules are; default: the pipeline's name), so each pipeline's tasks run on workers
    of their own (``airflow celery worker --queues features``) that scale apart. Executors
    other than Celery's ignore queues.
    """
    queues = params_section(manifest, "queues")
    unknown = sorted(set(queues) - set(PIPELINES))
    if unknown:
        raise ValueError(f"params.yaml queues: unknown pipeline(s) {unknown}; known: {PIPELINES}")
    queue = queues.get(pipeline, pipeline)
    if not isinstance(queue, str) or not queue.strip() or "," in queue:
        raise ValueError(f"params.yaml queues.{pipeline}: {queue!r} is not a queue name")
    notifier = WebhookNotifier("task_failed", project=str(manifest["project"]))
    return DEFAULT_ARGS | {"queue": queue, "on_failure_callback": [say_what_failed, notifier]}


def run_day(
    manifest: Mapping[str, Any], context: dict[str, Any], override: str | None = None
) -> date:
    """The date a run of ``manifest``'s project processes: a date given in the trigger form,
    else its logical date.

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
    start = project_start(manifest)
    if day < start:
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(
            f"{day} is before the start date {start} of project {manifest['project']!r}: "
            "pick a later date (or move start_date in the definition and run `fti check`)"
        )
    return day


def scoring_requests(
    manifest: Mapping[str, Any], context: dict[str, Any], model: str, spine: str
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
    logical = run_day(manifest, context).isoformat() if context.get("logical_date") else None
    if not models and not features:
        params = context["params"]
        return [
            {
                "as_of": run_day(manifest, context, params["as_of_date"]).isoformat(),
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
