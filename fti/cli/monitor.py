"""`fti monitor …`: drift and model-quality reports, gaps, realized performance, the DAG runs
and the platform's health."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from fti.cli import output
from fti.cli.options import JsonFlag, OwnerFilter, parse_date, settings
from fti.errors import FtiError

if TYPE_CHECKING:
    from fti.definitions import Project
    from fti.monitoring.clock import Moment
    from fti.settings import Settings

monitor_app = typer.Typer(
    help="Drift, model-quality reports, gaps and platform health.", no_args_is_help=True
)

NowOption = Annotated[
    str | None,
    typer.Option(
        help="When to judge: clock (the current time), data (the newest raw date: a project on "
        "past data) or an ISO date and time (without offset: UTC). Default: params.yaml's "
        "monitor.now, else clock."
    ),
]


def judging(now: str | None, s: Settings, project: Project) -> Moment:
    """``--now`` (or params.yaml's ``monitor.now``) as a moment (fti.monitoring.clock)."""
    from fti.monitoring.clock import judging_moment

    try:
        return judging_moment(now, s, project)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--now") from exc


@monitor_app.command("report")
def monitor_report(
    run: Annotated[
        str | None, typer.Option(help="Prediction run id (default: the newest run).")
    ] = None,
    out: Annotated[
        str | None, typer.Option(help="Folder for the HTML files (default: FTI_HOME/reports).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Write a run's drift and model-quality reports as HTML.

    The run's drift report, its model's metrics-over-versions chart and its model's realized
    performance (metric over dates per version, reliability or error bands)."""
    from pathlib import Path

    from fti.monitoring.publish import write_reports

    s = settings()
    folder = Path(out) if out else s.home / "reports"
    output.emit(write_reports(s, folder, run), as_json)


@monitor_app.command("gaps")
def monitor_gaps(
    through: Annotated[
        str | None,
        typer.Option(
            help="Last day expected (default: after params.yaml's monitor.now: yesterday, UTC, "
            "on the clock; the newest raw date on the data)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Days no run processed since the project's start, with the command that fills each.

    Groups without their partition, models without their predictions. Exit 1 when there are
    any."""
    from datetime import timedelta

    from fti.pipelines.runs import find_gaps, setup

    s, project = setup(settings())
    if through:
        day = parse_date(through)
    else:
        moment = judging(None, s, project)
        day = moment.through or moment.at.date() - timedelta(days=1)
    gaps: list[dict[str, Any]] = [gap.as_dict() for gap in find_gaps(day, s)]
    if as_json:
        output.emit(gaps, True)
    elif not gaps:
        output.console.print(f"no gaps up to {day}")
    for gap in [] if as_json else gaps:
        ranges = ", ".join(a if a == b else f"{a}..{b}" for a, b in gap["ranges"])
        output.console.print(f"{gap['kind']} {gap['name']}: {gap['days']} day(s) missing: {ranges}")
        for command in gap["fill"][:5]:
            output.console.print(f"  {command}")
    if gaps:
        raise typer.Exit(1)


@monitor_app.command("realized")
def monitor_realized(
    model: Annotated[str, typer.Option(help="The model.")],
    version: Annotated[
        str | None, typer.Option(help="Only this version (number or alias).")
    ] = None,
    refresh: Annotated[
        bool,
        typer.Option(
            "--refresh",
            help="Recompute every date with predictions and labels first (after a backfill).",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Realized performance: each version's metric per as-of date once its labels landed.

    With the holdout figure, rows joined, and calibration (classifiers) or errors
    (regressors); where a date's metric is not defined (one row has no ROC AUC), the reason.
    Figures over several dates (`fti monitor health`, `fti models compare --realized`) are
    the metric of their pooled rows, not an average of these."""
    from fti.db.engine import session_scope
    from fti.monitoring.realized import realized_rows, refresh_realized
    from fti.registry import aliases

    s = settings()
    if refresh:
        refresh_realized(s, model)
    with session_scope(s.db_url) as session:
        versions = None if version is None else [aliases.resolve(session, model, version)]
        rows = realized_rows(session, model, versions)
    columns = [
        "as_of_date",
        "model_version",
        "alias",
        "metric",
        "value",
        "holdout_value",
        "rows",
        "brier_score",
        "label_version",
        "reason",
    ]
    output.emit(rows, as_json, columns)


@monitor_app.command("health")
def monitor_health(
    as_json: JsonFlag = False,
    now: NowOption = None,
    nights: Annotated[int, typer.Option(min=1, help="Nights of failures to list.")] = 7,
    owner: OwnerFilter = None,
) -> None:
    """Platform health; exit 1 when something is stale, never published or failed.

    Freshness of every feature group, label group and model against its fresh_by, and the
    failed runs of the last nights, each with the project that owns it (--project: only
    that project's). With FTI_AIRFLOW_API_URL set, also the pipelines' DAG runs
    from Airflow's REST API (a failed one counts until a later run of its night succeeded)."""
    from fti.db.engine import session_scope
    from fti.monitoring.clock import past_data_hint
    from fti.monitoring.health import REALIZED_COLUMNS, health, with_owners
    from fti.monitoring.realized import realized_rules
    from fti.ownership import owners
    from fti.pipelines.runs import setup
    from fti.store.versions import FeatureStore

    s, project = setup(settings())
    moment = judging(now, s, project)
    with session_scope(s.db_url) as session:
        result = health(
            session,
            project,
            moment.at,
            nights,
            FeatureStore(s.store_path),
            realized_rules(s),
            moment.through,
        )
        result = with_owners(result, owners(session), owner)
    report = result.as_dict() | {"now_from": moment.how}
    run_problems: list[str] = []
    if s.airflow_api_url:  # the runs too, only where an Airflow API is configured
        from fti.monitoring.runs import project_runs

        try:
            runs = project_runs(s, result.now, nights)
        except FtiError as exc:
            run_problems.append(f"DAG runs not read: {exc}")
            report |= {"runs": None, "runs_error": str(exc)}
        else:
            run_problems += runs.problems()
            report |= {"runs": runs.as_dict(), "runs_error": None}
        report["healthy"] = result.healthy and not run_problems
    if as_json:
        output.emit(report, True)
    else:
        output.console.print(f"judged at {result.now:%Y-%m-%d %H:%M} UTC ({moment.describe()})")
        rows = [
            f.as_dict() | {"age_hours": None if f.age_hours is None else f"{f.age_hours:.1f}"}
            for f in result.freshness
        ]
        columns = [
            "kind",
            "name",
            "owner",
            "status",
            "newest_date",
            "expected_date",
            "due_at",
            "age_hours",
        ]
        output.emit(rows, False, columns)
        if result.failures:
            output.emit(
                [f.as_dict() for f in result.failures],
                False,
                ["kind", "name", "owner", "date", "reason"],
            )
        output.emit([r.row() for r in result.realized], False, list(REALIZED_COLUMNS))
        if report.get("runs"):
            _print_runs(report["runs"])
    hint = past_data_hint(moment, [f.days_behind for f in result.freshness])
    for line in result.problems() + run_problems + ([hint] if hint else []):
        typer.echo(line, err=True)
    if not result.healthy or run_problems:
        raise typer.Exit(1)


@monitor_app.command("runs")
def monitor_runs(
    nights: Annotated[int, typer.Option(min=1, help="Nights back from --now to list.")] = 7,
    now: NowOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The pipelines' DAG runs per night, from Airflow's REST API.

    The runs of the feature pipeline and of each model's training and inference, read from
    FTI_AIRFLOW_API_URL (with FTI_AIRFLOW_API_TOKEN, or FTI_AIRFLOW_API_USERNAME and
    FTI_AIRFLOW_API_PASSWORD): state, duration, retries, failed tasks and a link to each run's
    page. A failed run is resolved once a later run of the same DAG and night succeeded."""
    from fti.monitoring.runs import project_runs
    from fti.pipelines.runs import setup

    s, project = setup(settings())
    runs = project_runs(s, judging(now, s, project).at, nights).as_dict()
    if as_json:
        output.emit(runs, True)
        return
    _print_runs(runs)


def _failure_note(run: dict[str, Any]) -> str:
    """`` (resolved)``, `` (drift flagged)`` or `` (unresolved)`` after a failed run's state."""
    if run["resolved"] is None:
        return ""
    if run["resolved"]:
        return " (resolved)"
    return " (drift flagged)" if run["drift_flagged"] else " (unresolved)"


def _print_runs(runs: dict[str, Any]) -> None:
    """The runs of ``Runs.as_dict()`` as a table, one row per DAG run."""
    from fti.monitoring.runs import format_duration

    rows = [
        {
            "night": run["night"],
            "pipeline": run["dag_id"],
            "state": run["state"] + _failure_note(run),
            "duration": format_duration(run["duration_seconds"]),
            "retries": run["retries"],
            "failed tasks": ", ".join(run["failed_tasks"]),
            "link": run["link"],
        }
        for run in runs["runs"]
    ]
    if not rows:
        output.console.print(
            f"no DAG runs of {', '.join(runs['dags'])} for {runs['since']}..{runs['until']}"
        )
        return
    output.emit(rows, False)
