"""The runs of fti's pipelines per night, as Airflow recorded them, read through its REST API v2.

For the last ``nights`` nights: each DAG run of the feature pipeline and of every model's
training and inference DAG (the models of the manifest the DAG files are generated from), with
its state, start, end, duration and run type, the tries of its task instances (a task's
retries are its tries after the first) and, for a failed run, the tasks that failed. Runs are
grouped per pipeline per night. A failed run is *resolved* when a later run of the same DAG
for the same night succeeded; an unresolved one makes `fti monitor health` unhealthy, unless
it is *drift flagged*: an inference run failed by its ``check_drift`` task alone (its scores
were written; the drift is in fti's drift results).

The night of a run is the date it processes, as for fti's own tables: its logical date (a
scheduled run of D is queued when D ends; a backfill or a manual run of D has D too). A run
started by asset events has no logical date: it belongs to the night of the run whose event
started it (training to its feature run, inference to its training or feature run), else,
when that run is unknown, to the day before it was queued (the nightly chain runs after
midnight).

Everything comes from Airflow's metadata; only a run of ``dag.test()`` (`fti run`, `fti demo`,
the DAG tests) is read differently: Airflow records its logical date as its start, so it is
taken to start when ``dag.test()`` queued it (its ``run_after``).

fti never imports Airflow: the API is read with httpx (``fti.monitoring.airflow_api``), through
a client the caller gives (:func:`api_client` builds one from the settings; the health page
inside Airflow forwards the viewing user's own token; the tests pass the api-server app's
TestClient).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import httpx

from fti.errors import ConfigError
from fti.manifest import builds_groups, project_dag_id
from fti.monitoring.airflow_api import (  # PasswordAuth: for its users, who import it from here
    API,
    CREDENTIALS,
    PAGE,
    URL_SETTING,
    AirflowApiError,
    PasswordAuth,  # noqa: F401
    _Api,
    _quote,
    api_client,
)
from fti.monitoring.health import NIGHTS, utc
from fti.monitoring.notify import run_link

if TYPE_CHECKING:
    from fti.settings import Settings

FEATURE_DAG = "feature_pipeline"  # a project's is <project>_feature_pipeline
SUCCESS, FAILED = "success", "failed"
# The inference DAG's task that fails a run whose predictions were written but drifted: a flag
# (fti's drift results and pages hold the drift), not a failure of the pipeline.
DRIFT_TASK = "check_drift"
_CHAIN = 5  # asset-started runs followed back to a run with a logical date, at most


def pipeline_dags(project: str, models: Sequence[str], features: bool = True) -> list[str]:
    """The DAG ids of ``project``'s pipelines for its ``models``: its feature pipeline (when it
    has one: ``features``), then each model's training and inference DAG (the names the DAG
    files give them)."""
    return [
        *([project_dag_id(project, FEATURE_DAG)] if features else []),
        *(f"{model}_training" for model in models),
        *(f"{model}_inference" for model in models),
    ]


def manifest_dags(manifest: dict[str, Any]) -> list[str]:
    """The DAG ids the DAG files make from ``manifest`` (fti.manifest)."""
    return pipeline_dags(
        str(manifest["project"]),
        [str(model["name"]) for model in manifest["models"]],
        features=builds_groups(manifest),
    )


@dataclass(frozen=True)
class TaskTries:
    """One task instance of a run: ``task`` is its id (``id[N]`` for map index N), ``tries``
    Airflow's try number (0: it never ran, e.g. upstream failed)."""

    task: str
    state: str | None
    tries: int

    @property
    def retries(self) -> int:
        return max(self.tries - 1, 0)


@dataclass(frozen=True)
class PipelineRun:
    """One DAG run of a pipeline, in the night it processed. ``duration`` in seconds (None
    while it runs); ``resolved``: a failed run that a later run of the same night fixed."""

    dag_id: str
    run_id: str
    night: date
    logical_date: datetime | None
    run_after: datetime
    run_type: str
    state: str
    start: datetime | None
    end: datetime | None
    duration: float | None
    tasks: tuple[TaskTries, ...]
    link: str
    resolved: bool = False

    @property
    def failed(self) -> bool:
        return self.state == FAILED

    @property
    def retries(self) -> int:
        """Tries after the first, summed over the run's task instances."""
        return sum(t.retries for t in self.tasks)

    @property
    def failed_tasks(self) -> list[str]:
        return [t.task for t in self.tasks if t.state == FAILED]

    @property
    def drift_flagged(self) -> bool:
        """Failed only by ``DRIFT_TASK`` (mapped or not): its scores were written, they drifted."""
        tasks = self.failed_tasks
        return self.failed and bool(tasks) and all(t.split("[")[0] == DRIFT_TASK for t in tasks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "night": self.night.isoformat(),
            "logical_date": _iso(self.logical_date),
            "run_after": _iso(self.run_after),
            "run_type": self.run_type,
            "state": self.state,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "duration_seconds": self.duration,
            "retries": self.retries,
            "tries": {t.task: t.tries for t in self.tasks},
            "failed_tasks": self.failed_tasks,
            "resolved": self.resolved if self.failed else None,
            "drift_flagged": self.drift_flagged,
            "link": self.link,
        }

    def problem(self) -> str:
        """One line for an unresolved failed run: what failed and what to do (for stderr)."""
        tasks = ", ".join(self.failed_tasks) or "no task (see the run)"
        return (
            f"failed: DAG run {self.dag_id} {self.run_id} of {self.night}: failed task(s) {tasks}; "
            f"read their logs at {self.link}, fix the cause, then clear the failed tasks there "
            "to rerun them"
        )


@dataclass(frozen=True)
class PipelineNight:
    """The runs of one pipeline (DAG) for one night, oldest first."""

    dag_id: str
    night: date
    runs: list[PipelineRun]

    @property
    def state(self) -> str:
        """The state of its latest run: a rerun that succeeded makes the night a success."""
        return self.runs[-1].state

    @property
    def duration(self) -> float:
        """Seconds its finished runs took, together."""
        return sum(r.duration or 0.0 for r in self.runs)

    @property
    def retries(self) -> int:
        return sum(r.retries for r in self.runs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "night": self.night.isoformat(),
            "state": self.state,
            "runs": len(self.runs),
            "duration_seconds": round(self.duration, 3),
            "retries": self.retries,
            "failed_runs": sum(r.failed for r in self.runs),
        }


@dataclass(frozen=True)
class Runs:
    """The runs of ``dags`` for the nights ``since`` .. ``until`` (``nights`` back from ``now``),
    newest night first, then in the order of ``dags``, then oldest run first."""

    now: datetime
    nights: int
    since: date
    until: date
    dags: list[str]
    runs: list[PipelineRun]

    @property
    def unresolved(self) -> list[PipelineRun]:
        """Failed runs no later run of their night fixed, but for drift flags."""
        return [r for r in self.runs if r.failed and not r.resolved and not r.drift_flagged]

    @property
    def healthy(self) -> bool:
        return not self.unresolved

    def problems(self) -> list[str]:
        return [r.problem() for r in self.unresolved]

    def per_night(self) -> list[PipelineNight]:
        """One entry per pipeline and night that had runs, in the order of ``runs``."""
        grouped: dict[tuple[str, date], list[PipelineRun]] = {}
        for run in self.runs:
            grouped.setdefault((run.dag_id, run.night), []).append(run)
        return [PipelineNight(dag, night, runs) for (dag, night), runs in grouped.items()]

    def dates(self) -> list[date]:
        return [self.since + timedelta(days=n) for n in range((self.until - self.since).days + 1)]

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "now": self.now.isoformat(),
            "nights": self.nights,
            "since": self.since.isoformat(),
            "until": self.until.isoformat(),
            "dags": self.dags,
            "unresolved_failures": len(self.unresolved),
            "per_night": [n.as_dict() for n in self.per_night()],
            "runs": [r.as_dict() for r in self.runs],
        }


def project_dags(settings: Settings) -> list[str]:
    """The DAG ids of the settings' project's pipelines (FTI_PROJECT), from its manifest among
    the deployment's (``fti.deployment.project_manifest_path``), which the DAG files read.

    Raises:
        ConfigError: the project has no manifest (or an unreadable one).
    """
    from fti.deployment import project_manifest_path
    from fti.manifest import read_manifest

    try:
        return manifest_dags(read_manifest(project_manifest_path(settings)))
    except (OSError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


def project_runs(settings: Settings, now: datetime | None = None, nights: int = NIGHTS) -> Runs:
    """:func:`read_runs` of the project's pipelines through the API the settings name."""
    dags = project_dags(settings)
    with api_client(settings) as client:
        return read_runs(client, dags, now, nights)


def read_runs(
    client: httpx.Client,
    dags: Sequence[str],
    now: datetime | None = None,
    nights: int = NIGHTS,
    *,
    page: int = PAGE,
    url_setting: str = URL_SETTING,
    credentials: str = CREDENTIALS,
) -> Runs:
    """The runs of ``dags`` for the nights from ``nights`` before ``now`` (default: the current
    time; naive means UTC) through ``now``'s date, read through ``client`` (an httpx client
    whose base URL is Airflow's, with its credentials), ``page`` items a request.

    ``url_setting`` and ``credentials`` say, in an error, what sets the URL and what fixes
    refused credentials (the defaults: fti's settings).

    Raises:
        AirflowApiError: the API cannot be reached, refuses the credentials or fails.
    """
    api = _Api(client, url_setting, credentials)
    now = utc(now or datetime.now(UTC))
    until = now.date()
    since = until - timedelta(days=nights)
    first = datetime.combine(since, time.min, UTC)
    listing = f"{API}/dags/~/dagRuns/list"
    dated = api.post_all(
        listing,
        "dag_runs",
        page,
        dag_ids=list(dags),
        logical_date_gte=first.isoformat(),
        logical_date_lt=(first + timedelta(days=nights + 1)).isoformat(),
        order_by="id",
    )
    # Runs without a logical date (started by asset events) queued from the first night on,
    # up to the morning after the last.
    undated = [
        run
        for run in api.post_all(
            listing,
            "dag_runs",
            page,
            dag_ids=list(dags),
            run_after_gte=first.isoformat(),
            run_after_lt=(first + timedelta(days=nights + 2)).isoformat(),
            order_by="id",
        )
        if run.get("logical_date") is None
    ]
    found = dated + undated
    nights_of = _nights(api, found, first, page)
    wanted = [run for run in found if since <= nights_of[_key(run)] <= until]
    tries = _task_tries(api, wanted, page)
    order = {dag: n for n, dag in enumerate(dags)}
    runs = [
        _pipeline_run(run, nights_of[_key(run)], tries.get(_key(run), ()), api.base)
        for run in wanted
    ]
    runs.sort(key=lambda r: (-r.night.toordinal(), order.get(r.dag_id, 0), _began(r)))
    return Runs(now, nights, since, until, list(dags), _resolve(runs))


def _key(run: dict[str, Any]) -> tuple[str, str]:
    return str(run["dag_id"]), str(run["dag_run_id"])


def _nights(
    api: _Api, runs: list[dict[str, Any]], first: datetime, page: int
) -> dict[tuple[str, str], date]:
    """The night each run processed: its logical date's; for a run started by asset events,
    that of the run whose event started it (followed back through the asset events, and the
    runs they name), else the day before it was queued."""
    known = {_key(run): run for run in runs}
    started_by: dict[tuple[str, str], tuple[str, str]] = {}
    if any(run.get("logical_date") is None for run in runs):
        started_by = _started_by(api, first, page)

    def night(key: tuple[str, str], depth: int = 0) -> date:
        run = known.get(key) or _one_run(api, key, known)
        if run is None:
            raise LookupError(key)
        if run.get("logical_date"):
            return _when(run["logical_date"]).date()
        source = started_by.get(key)
        if source is not None and depth < _CHAIN:
            try:
                return night(source, depth + 1)
            except LookupError:
                pass  # the source run was deleted: fall back to when this one was queued
        return _when(run["run_after"]).date() - timedelta(days=1)

    return {key: night(key) for key in list(known)}


def _started_by(api: _Api, first: datetime, page: int) -> dict[tuple[str, str], tuple[str, str]]:
    """(DAG, run) -> the (DAG, run) whose asset event started it, for the runs asset events
    started from ``first`` on. A user who may not read assets gets none (the runs then fall
    back to the day they were queued)."""
    try:
        events = api.get_all(
            f"{API}/assets/events",
            "asset_events",
            page,
            timestamp_gte=first.isoformat(),
            order_by="timestamp",
        )
    except AirflowApiError as exc:
        if exc.status == 403:
            return {}
        raise
    found: dict[tuple[str, str], tuple[str, str]] = {}
    for event in events:
        if not event.get("source_dag_id") or not event.get("source_run_id"):
            continue  # an event posted through the API, not by a run
        source = (str(event["source_dag_id"]), str(event["source_run_id"]))
        for created in event.get("created_dagruns") or []:
            if created.get("triggering", True):
                found[(str(created["dag_id"]), str(created["run_id"]))] = source
    return found


def _one_run(
    api: _Api, key: tuple[str, str], known: dict[tuple[str, str], dict[str, Any]]
) -> dict[str, Any] | None:
    """A run outside the window (the source of an asset-started run), read once."""
    dag_id, run_id = key
    path = f"{API}/dags/{_quote(dag_id)}/dagRuns/{_quote(run_id)}"
    try:
        run = api.call("GET", path)
    except AirflowApiError as exc:
        if exc.status == 404:
            return None
        raise
    known[key] = run
    return run


def _task_tries(
    api: _Api, runs: list[dict[str, Any]], page: int
) -> dict[tuple[str, str], tuple[TaskTries, ...]]:
    """The task instances of ``runs``: per DAG, those of its runs queued from the earliest of
    theirs on, kept for the runs asked."""
    wanted = {_key(run) for run in runs}
    earliest: dict[str, datetime] = {}
    for run in runs:
        dag_id = str(run["dag_id"])
        queued = _when(run["run_after"])
        earliest[dag_id] = min(queued, earliest.get(dag_id, queued))
    found: dict[tuple[str, str], list[TaskTries]] = {}
    for dag_id, after in earliest.items():
        for ti in api.get_all(
            f"{API}/dags/{_quote(dag_id)}/dagRuns/~/taskInstances",
            "task_instances",
            page,
            run_after_gte=after.isoformat(),
            order_by="id",
        ):
            key = (dag_id, str(ti["dag_run_id"]))
            if key not in wanted:
                continue
            index = ti.get("map_index", -1)
            task = str(ti["task_id"]) + (f"[{index}]" if index is not None and index >= 0 else "")
            found.setdefault(key, []).append(
                TaskTries(task, ti.get("state"), int(ti.get("try_number") or 0))
            )
    return {key: tuple(sorted(tasks, key=lambda t: t.task)) for key, tasks in found.items()}


def _pipeline_run(
    run: dict[str, Any], night: date, tasks: tuple[TaskTries, ...], base: str
) -> PipelineRun:
    start = _time(run.get("start_date"))
    end = _time(run.get("end_date"))
    duration = run.get("duration")
    if run.get("triggered_by") == "test":
        # dag.test() records the logical date as the run's start: it began at its run_after.
        start = _when(run["run_after"])
        duration = (end - start).total_seconds() if end and start else None
    return PipelineRun(
        dag_id=str(run["dag_id"]),
        run_id=str(run["dag_run_id"]),
        night=night,
        logical_date=_time(run.get("logical_date")),
        run_after=_when(run["run_after"]),
        run_type=str(run.get("run_type")),
        state=str(run.get("state")),
        start=start,
        end=end,
        duration=None if duration is None else round(float(duration), 3),
        tasks=tasks,
        link=run_link(base, str(run["dag_id"]), str(run["dag_run_id"])),
    )


def _resolve(runs: list[PipelineRun]) -> list[PipelineRun]:
    """Mark each failed run that a later run of the same DAG and night succeeded."""

    def fixed(failed: PipelineRun) -> bool:
        return any(
            other.dag_id == failed.dag_id
            and other.night == failed.night
            and other.state == SUCCESS
            and _began(other) > _began(failed)
            for other in runs
        )

    return [replace(r, resolved=fixed(r)) if r.failed else r for r in runs]


def _began(run: PipelineRun) -> datetime:
    return run.start or run.run_after


def _time(value: Any) -> datetime | None:
    """An API timestamp as an aware UTC datetime (None stays None)."""
    if value is None or value == "":
        return None
    return utc(datetime.fromisoformat(str(value)))


def _when(value: Any) -> datetime:
    """A timestamp the API always gives (``run_after``; a logical date when there is one)."""
    return utc(datetime.fromisoformat(str(value)))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def format_duration(seconds: float | None) -> str:
    """``1h 02m``, ``4m 05s`` or ``12.3s``; empty while running."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"
