"""The project's top-level commands: `fti init`, `check`, `demo`, `new`, `run`, `airflow-env`,
`airflow` and `sql` (registered on the root app in ``fti/cli/__init__.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

from fti.cli import output
from fti.cli.options import DateArg, JsonFlag, parse_date, settings
from fti.errors import FtiError


# ---- set-up -----------------------------------------------------------------------------------
def init() -> None:
    """Create FTI_HOME: migrated database, feature-store repo and its DVC remote."""
    from fti.settings import hide_password
    from fti.setup import initialise

    s = settings()
    initialise(s)
    output.console.print(
        f"fti home ready at {s.home} (database {hide_password(s.db_url)}, store {s.store_path}, "
        f"remote {s.dvc_remote})"
    )
    _write_manifest(s)


def _write_manifest(s: Any, quiet: bool = False) -> None:
    """Write the project's manifest (what the DAG files read)."""
    from fti.definitions import load_project
    from fti.deployment import publish_manifest

    path = publish_manifest(load_project(s.project), s)
    if not quiet:
        output.console.print(f"manifest of {s.project} written to {path}")


def check(
    as_json: JsonFlag = False,
    remove: Annotated[
        bool,
        typer.Option(
            "--remove",
            help="Delete this project's manifest instead: its DAGs disappear at the next parse "
            "of the DAG folder; its data, versions and registry rows stay.",
        ),
    ] = False,
) -> None:
    """Validate the project definition (FTI_PROJECT), list what it defines, write its manifest.

    Beyond the definition's own rules: params.yaml's train section against the models (a
    section per model, hyper-parameters the estimator reads and accepts), the start date
    against the first raw file of each source, and that file validated as a run would (its
    schema, the entity keys' type). Exit code 1 with one line per problem. The manifest goes
    to FTI_MANIFESTS/<project>.json, beside the deployment's other projects' (refused when one
    builds a group, source or model of the same name), or to FTI_MANIFEST_PATH when set.
    """
    from fti.checks import check_files
    from fti.definitions import load_project
    from fti.errors import DefinitionError
    from fti.manifest import manifest_of

    s = settings()
    if remove:
        from fti.deployment import remove_manifest

        name, path = remove_manifest(s)
        output.console.print(
            f"removed {path}: the DAGs of project {name} disappear at the next parse of the DAG "
            "folder; its data, feature and model versions and registry rows stay",
            soft_wrap=True,
        )
        return
    try:
        project = load_project(s.project)
    except DefinitionError as exc:
        for line in str(exc).splitlines()[1:] or [str(exc)]:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1) from None
    except FtiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    found = check_files(project, s)
    for line in found.problems:
        typer.echo(f"error: {line}", err=True)
    if found.problems:
        raise typer.Exit(1)
    for line in found.notes:
        typer.echo(f"note: {line}", err=True)
    data = manifest_of(project, s.project)
    _write_manifest(s, quiet=as_json)
    if as_json:
        output.emit(data, True)
        return
    say = output.console.print
    say(f"[bold]project[/] {project.name} ({s.project}), start date {data['start_date']}")
    say("entities: " + ", ".join(f"{e.name} ({e.key}: {e.dtype})" for e in project.entities))
    for source in project.sources:
        window = source.unique_within_days
        within = "" if window is None or source.id_column is None else f" (within {window} days)"
        say(
            f"source {source.name}: {source.format}, time {source.time_column} ({source.timezone}), "
            f"id {source.id_column or '-'}{within}, missing day: {source.missing_day}; "
            f"{found.files[source.name]}"
        )
    by_month = {"month": ", stored a file a month", "day": ""}
    for group in project.feature_groups:
        say(
            f"feature group {group.name}: {len(group.features)} features from "
            f"{', '.join(x.name for x in group.sources)}, look-back {group.lookback_days} day(s)"
            + by_month.get(group.partition, "")
        )
    for label in project.labels:
        say(
            f"label group {label.name}: from {', '.join(x.name for x in label.sources)}, "
            f"horizon {label.horizon_days} day(s)" + by_month.get(label.partition, "")
        )
    for read in project.reads:
        typed = len(read.declared)
        say(f"read {read.noun} {read.name}: from project {read.owner}, {typed} typed column(s)")
    for model in data["models"]:
        say(
            f"model {model['name']}: {model['task']}, metric {model['metric']}, label "
            f"{model['label']}, {len(model['features'])} features from {', '.join(model['groups'])}"
        )


def new(
    folder: Annotated[
        str,
        typer.Argument(
            help="Folder to create, or an empty one (. for the current folder); its name is "
            "the project's package name."
        ),
    ],
    reads: Annotated[
        list[str] | None,
        typer.Option(
            "--reads",
            metavar="OWNER.GROUP",
            help="A feature group another project publishes, for the new project's model to "
            "read (its columns and types from the catalog's newest version; FTI_DB_URL the "
            "shared database). Repeatable.",
        ),
    ] = None,
) -> None:
    """Write a small, working project package to start from.

    It holds the definitions, params.yaml, a sample of raw files, a test of its feature
    function, and the .env that points fti at it. fti commands run in that folder find the
    project there. With --reads, its model reads those groups of another project instead of
    a feature group of its own (its README says what is left to write)."""
    import shlex
    from pathlib import Path

    from fti.scaffold import SAMPLE, create_project, read_specs

    target = Path(folder).resolve()
    specs = read_specs(settings().db_url, reads) if reads else []
    path = create_project(target.name, target.parent, specs)
    steps = [] if path == Path.cwd().resolve() else [f"cd {shlex.quote(folder)}"]
    steps += [
        "python -m pytest tests",
        "fti check",
        f"fti run --start {SAMPLE.start} --end {SAMPLE.end}",
        "fti airflow",
    ]
    typer.echo(f"created {path}\nnext, in that folder:\n" + "\n".join(f"  {s}" for s in steps))


# ---- running the project through Airflow ------------------------------------------------------
PastWeeks = Annotated[
    int,
    typer.Option(
        help="Backtest: load the history's last N weeks apart and score one date a week of them "
        "with the champion trained before them, so realized metrics exist at once (out of sample)."
    ),
]


def demo(
    days: Annotated[int, typer.Option(help="Nightly runs to simulate, one per day.")] = 2,
    customers: Annotated[int, typer.Option(help="Customers in the generated business.")] = 2000,
    end: Annotated[
        str | None, typer.Option(help="Last simulated day (YYYY-MM-DD; default: yesterday, UTC).")
    ] = None,
    drift_after: Annotated[str | None, typer.Option(help="Shift the data after this date.")] = None,
    past_weeks: PastWeeks = 6,
) -> None:
    """Generate the churn demo's raw data and run the nightly DAGs through Airflow.

    The DAGs run 90 days of history, --past-weeks weeks (scored one date a week by the champion
    the history trained), then --days nights, ending --end: the same length whatever the date.
    A line per DAG run (a progress bar on a terminal); Airflow's own log goes to a file the
    summary names."""
    from fti.demo import run_demo

    run_demo(
        settings(),
        nightly_days=days,
        customers=customers,
        end=parse_date(end) if end else datetime.now(UTC).date() - timedelta(days=1),
        drift_after=parse_date(drift_after) if drift_after else None,
        past_weeks=past_weeks,
        console=output.console,
    )


def run(
    start: DateArg,
    end: DateArg,
    nights: Annotated[
        int, typer.Option(help="Last days to run night by night (the rest is one range run).")
    ] = 3,
    past_weeks: PastWeeks = 0,
) -> None:
    """Run the project's nightly DAGs through Airflow from --start to --end.

    The history as one range run of the feature DAG (two with --past-weeks), then the last
    --nights days one by one (features, training, scoring), as the scheduler would; a line per
    DAG run (a progress bar on a terminal), Airflow's own log in a file; ends with what the
    runs left."""
    from fti.runner import run_nights, say, summary

    s = settings()
    done = run_nights(s, start, end, nights, past_weeks, output.console)
    say(output.console, summary(s, end, done["seconds"], done=done))


def airflow_env(
    port: Annotated[
        int | None, typer.Option(help="The port the Airflow API server and UI listen on.")
    ] = None,
) -> None:
    """Print the environment (KEY='value' lines) for running Airflow on the embedded default.

    It holds fti's settings as absolute paths, fti's DAG and plugin folders, and the project on
    PYTHONPATH."""
    from fti.runner import airflow_variables, shell_lines

    for line in shell_lines(airflow_variables(settings(), port)):
        typer.echo(line)


def airflow(
    port: Annotated[int, typer.Option(help="The port the Airflow UI listens on.")] = 8080,
    prepare_only: Annotated[
        bool,
        typer.Option(
            help="Prepare, print the environment (as airflow-env) and stop: no airflow standalone."
        ),
    ] = False,
) -> None:
    """The Airflow UI on this project's DAGs and the fti pages (embedded default).

    Prepares them (fti init, Airflow's database migrated, the feature-store pool), then runs
    `airflow standalone` until Ctrl-C."""
    from fti.runner import airflow_banner, prepare_airflow, shell_lines, start_airflow

    s = settings()
    variables = prepare_airflow(s, port, say=lambda line: typer.echo(line, err=True))
    if prepare_only:
        for line in shell_lines(variables):
            typer.echo(line)
        return
    typer.echo(airflow_banner(s, port))
    start_airflow(variables)


# ---- sql --------------------------------------------------------------------------------------
def sql(query: str, as_json: JsonFlag = False) -> None:
    """Run a read-only query against fti's database."""
    from fti.sql import run_read_only

    columns, rows = run_read_only(settings().db_url, query)
    output.emit([dict(zip(columns, r, strict=True)) for r in rows], as_json, columns)
