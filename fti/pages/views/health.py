"""View model of the health page: what `fti monitor health` judges (freshness, failures,
realized performance of the champions), the rows read / quarantined and scored per night, and
the pipelines' DAG runs of those nights (from Airflow's REST API, read by the caller)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fti.pages import charts
from fti.pages.svg import BAD, Chart
from fti.pages.views.common import Link, Urls

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fti.monitoring.health import Failure, Health
    from fti.monitoring.runs import Runs


@dataclass(frozen=True)
class FreshnessRow:
    kind: str
    name: str
    status: str
    newest_date: date | None
    expected_date: date | None
    due_at: datetime | None
    age_hours: float | None
    days_behind: int | None
    version: int | None
    version_href: str | None
    fill: list[str]
    owner: str | None = None  # the project that owns it (fti.ownership); None: unclaimed


@dataclass(frozen=True)
class RealizedRow:
    model: str
    href: str | None
    champion: int | None
    metric: str | None
    value: float | None
    status: str
    first_date: date | None
    last_date: date | None
    rows: int | None
    holdout: float | None
    breach: str | None
    reason: str | None = None  # why ``value`` is None (the metric is undefined on the rows)
    owner: str | None = None


@dataclass(frozen=True)
class FailureRow:
    date: date
    kind: str
    name: str
    run: Link
    reason: str
    resolved: bool
    fix: str
    owner: str | None = None


@dataclass(frozen=True)
class NightRow:
    date: date
    read: int
    quarantined: int
    runs: list[Link]


@dataclass(frozen=True)
class ScoredRow:
    as_of_date: date
    model: str
    status: str
    error: str | None
    rows: int
    run: Link


@dataclass(frozen=True)
class DagRunRow:
    night: date
    dag_id: str
    dag_href: str
    run: Link
    run_type: str
    state: str
    start: datetime | None
    duration: str
    retries: int
    failed_tasks: list[str]
    status: str  # of a failed run: resolved | drift flagged | unresolved


@dataclass(frozen=True)
class DagRuns:
    every: list[DagRunRow]
    failed: list[DagRunRow]
    chart: Chart


@dataclass(frozen=True)
class HealthPage:
    now: datetime
    newest_raw_date: date | None  # judged on the data (monitor.now: data): nothing later is due
    nights: int
    healthy: bool
    problems: list[str]
    freshness: list[FreshnessRow]
    realized: list[RealizedRow]
    failures: list[FailureRow]
    read: list[NightRow]
    read_chart: Chart
    scored: list[ScoredRow]
    scored_chart: Chart
    runs: DagRuns | None
    runs_missing: str | None
    hint: str | None = None  # everything far behind the clock: say how to judge on the data
    project: str | None = None  # only what this project owns (``?project=``)


def fix(failure: Failure) -> str:
    """What to do about a failure: the part of its problem line after the reason."""
    return failure.problem().split(f": {failure.reason}; ", 1)[-1]


def nightly(session: Session, since: date, until: date) -> tuple[list[Any], list[Any]]:
    """The validation runs and the prediction runs of the dates ``since`` .. ``until``."""
    from sqlalchemy import select

    from fti.db.tables import PredictionRun, ValidationRun

    validations = session.execute(
        select(
            ValidationRun.logical_date,
            ValidationRun.rows_read,
            ValidationRun.rows_quarantined,
            ValidationRun.run_id,
        )
        .where(ValidationRun.logical_date.between(since, until))
        .order_by(ValidationRun.logical_date, ValidationRun.id)
    ).all()
    predictions = session.scalars(
        select(PredictionRun)
        .where(PredictionRun.as_of_date.between(since, until))
        .order_by(PredictionRun.as_of_date, PredictionRun.model_name, PredictionRun.started_at)
    ).all()
    return list(validations), list(predictions)


def health_page(
    result: Health,
    validations: list[Any],
    predictions: list[Any],
    urls: Urls,
    runs: Runs | None = None,
    runs_missing: str | None = None,
    hint: str | None = None,
    project: str | None = None,
) -> HealthPage:
    """The page of ``result`` (its items' owners set, and only ``project``'s when it is given:
    ``fti.monitoring.health.with_owners``)."""
    since = result.now.date() - timedelta(days=result.nights)
    dates = [since + timedelta(days=n) for n in range((result.now.date() - since).days + 1)]
    read = dict.fromkeys(dates, 0)
    quarantined = dict.fromkeys(dates, 0)
    runs_of: dict[date, list[str]] = {day: [] for day in dates}
    for day, rows_read, rows_quarantined, run_id in validations:
        read[day] += rows_read or 0  # a file that could not be read counts 0 rows read
        quarantined[day] += rows_quarantined or 0
        if run_id not in runs_of[day]:
            runs_of[day].append(run_id)
    # Rows scored per model and as-of date: a date scored again counts its latest successful
    # run, whose slice replaced the earlier one.
    scored: dict[str, dict[date, float]] = {}
    for run in predictions:
        if run.status == "succeeded":
            scored.setdefault(run.model_name, {})[run.as_of_date] = run.row_count
    recorded = {run.run_id: run.airflow_run_id for run in predictions}
    problems = result.problems() + (runs.problems() if runs else [])
    nights = result.nights
    return HealthPage(
        now=result.now,
        newest_raw_date=result.through,
        nights=nights,
        healthy=not problems and result.healthy,
        problems=problems,
        freshness=[
            FreshnessRow(
                kind=f.kind,
                name=f.name,
                status=f.status,
                newest_date=f.newest_date,
                expected_date=f.expected_date,
                due_at=f.due_at,
                age_hours=f.age_hours,
                days_behind=f.days_behind if f.days_behind and f.days_behind > 0 else None,
                version=f.version,
                version_href=(
                    None
                    if f.version is None
                    else urls.model_version(f.name, f.version)
                    if f.kind == "predictions"
                    else urls.group_version(f.name, f.version)
                ),
                fill=list(f.fill),
                owner=f.owner,
            )
            for f in result.freshness
        ],
        realized=[
            RealizedRow(
                model=r.model,
                href=f"{urls.model_version(r.model, r.champion)}#realized"
                if r.champion is not None
                else None,
                champion=r.champion,
                metric=r.window.metric if r.window else None,
                value=r.window.value if r.window else None,
                status=r.status,
                first_date=r.window.first_date if r.window else None,
                last_date=r.window.last_date if r.window else None,
                rows=r.window.rows if r.window else None,
                holdout=r.window.holdout_value if r.window else None,
                breach=r.breach,
                reason=r.window.reason if r.window else None,
                owner=r.owner,
            )
            for r in result.realized
        ],
        failures=[
            FailureRow(
                date=f.date,
                kind=f.kind.replace("_", " "),
                name=f.name,
                run=(
                    urls.prediction_run(f.run_id, recorded.get(f.run_id))
                    if f.kind == "prediction_run"
                    else urls.lineage_run(f.run_id) or Link(f.run_id, "")
                ),
                reason=f.reason,
                resolved=f.resolved,
                fix="" if f.resolved else fix(f),
                owner=f.owner,
            )
            for f in result.failures
        ],
        read=[
            NightRow(
                day,
                read[day],
                quarantined[day],
                [urls.lineage_run(r) or Link(r, "") for r in runs_of[day]],
            )
            for day in dates
            if runs_of[day]
        ],
        read_chart=charts.bars_per_date(
            dates,
            {"rows read": read, "quarantined": quarantined},
            "rows",
            f"Rows read and quarantined per night, the last {nights} nights",
            {"quarantined": BAD},
        ),
        scored=[
            ScoredRow(
                run.as_of_date,
                run.model_name,
                run.status,
                run.error,
                run.row_count,
                urls.prediction_run(run.run_id, run.airflow_run_id),
            )
            for run in predictions
        ],
        scored_chart=charts.bars_per_date(
            dates,
            dict(sorted(scored.items())),
            "rows scored",
            f"Rows scored per model per night, the last {nights} nights",
        ),
        runs=dag_runs(runs, urls) if runs is not None else None,
        runs_missing=runs_missing,
        hint=hint,
        project=project,
    )


def dag_runs(runs: Runs, urls: Urls) -> DagRuns:
    from fti.monitoring.runs import format_duration

    minutes: dict[str, dict[date, float]] = {}
    for night in runs.per_night():
        minutes.setdefault(night.dag_id, {})[night.night] = night.duration / 60
    rows = [
        DagRunRow(
            night=run.night,
            dag_id=run.dag_id,
            dag_href=urls.airflow_dag(run.dag_id),
            run=Link(
                f"{run.dag_id}/{run.run_id}",
                urls.airflow_run(run.dag_id, run.run_id),
                top=True,
                title="open the Airflow run",
            ),
            run_type=run.run_type,
            state=run.state,
            start=run.start,
            duration=format_duration(run.duration),
            retries=run.retries,
            failed_tasks=run.failed_tasks,
            status="resolved"
            if run.resolved
            else "drift flagged"
            if run.drift_flagged
            else "unresolved",
        )
        for run in runs.runs
    ]
    return DagRuns(
        every=rows,
        failed=[row for row, run in zip(rows, runs.runs, strict=True) if run.failed],
        chart=charts.bars_per_date(
            runs.dates(), minutes, "minutes", "Minutes each pipeline ran per night"
        ),
    )
