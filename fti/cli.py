"""`fti`: the command line every pipeline step, listing and registry action is reachable from."""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from fti.errors import FtiError, InputFileError

DEBUG_HINT = "rerun with --debug (or FTI_DEBUG=1) to see the traceback"


class OneLineErrors(TyperGroup):
    """The `fti` command group: an error ends as one line per problem on stderr, exit code 1.

    Every command runs inside :meth:`invoke`, so this is the one place errors are turned into
    messages (see :func:`explain`); ``--debug`` or ``FTI_DEBUG=1`` lets the traceback through.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exit codes, Ctrl-C and usage errors (exit code 2) are typer's to print
        except Exception as exc:
            if ctx.params.get("debug"):  # --debug, or FTI_DEBUG through the option's envvar
                raise
            fail(exc)


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as `error:` lines on stderr (see :func:`explain`) and exit with code 1."""
    for line in explain(exc):
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(1) from None


def explain(exc: Exception) -> list[str]:
    """What went wrong, as one line per problem that names the setting or file and what to do.

    fti's own errors carry their message; a bad setting, an unreachable database and a file
    that cannot be opened are a user's to fix, so they get a message too; anything else is
    a bug or a case fti does not handle yet, and says how to get the traceback.
    """
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from fti.settings import setting_problems

    if isinstance(exc, FtiError):
        return [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return setting_problems(exc)
    if isinstance(exc, DBAPIError):
        return [_database_problem(exc)]
    if isinstance(exc, OSError) and exc.filename is not None:
        return [_file_problem(exc)]
    return [
        f"unexpected {type(exc).__name__}: {_first_line(exc)} (a bug in fti, or a case it does "
        f"not handle yet: {DEBUG_HINT} and report it)"
    ]


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _database_problem(exc: Any) -> str:
    """A failed connection or statement, with the database it was for (password hidden)."""
    url = _configured_database()
    reason = _first_line(exc.orig if exc.orig is not None else exc)
    sqlite = url.startswith("sqlite")
    if exc.statement is None:  # SQLAlchemy raised it while connecting
        hint = (
            "run `fti init` to create FTI_HOME and its database, or set FTI_DB_URL"
            if sqlite
            else "check that the server is running and FTI_DB_URL's host, port, user and database"
        )
        return f"cannot connect to the database FTI_DB_URL={url}: {reason}; {hint}"
    if "no such table" in reason or getattr(exc.orig, "sqlstate", None) == "42P01":
        return f"the database FTI_DB_URL={url} lacks fti's tables ({reason}); run `fti init`"
    return f"database error at FTI_DB_URL={url}: {reason} ({DEBUG_HINT})"


def _configured_database() -> str:
    """FTI_DB_URL as it may be printed (password hidden)."""
    from fti.settings import get_settings, hide_password

    try:
        return hide_password(get_settings().db_url)
    except FtiError:
        return "(see FTI_DB_URL)"


_FILE_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.EROFS: "choose a writable place",
    errno.ENOSPC: "free some space",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "move it out of the way",
}


def _file_problem(exc: OSError) -> str:
    """A file or folder that could not be opened or written, by name, with what to do."""
    names = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    reason = (exc.strerror or type(exc).__name__).lower()
    hint = _FILE_HINTS.get(exc.errno or 0, DEBUG_HINT)
    return f"{names}: {reason}; {hint}"


app = typer.Typer(
    cls=OneLineErrors,
    help="fti: nightly feature, training and batch-inference pipelines.",
    no_args_is_help=True,
)
features_app = typer.Typer(
    help="Feature pipeline and the feature-store catalog.", no_args_is_help=True
)
models_app = typer.Typer(
    help="The model registry: versions, aliases, promotion, rollback.", no_args_is_help=True
)
predictions_app = typer.Typer(help="Prediction runs and tables.", no_args_is_help=True)
quarantine_app = typer.Typer(help="Raw rows set aside by validation.", no_args_is_help=True)
monitor_app = typer.Typer(
    help="Drift, model-quality reports, gaps and platform health.", no_args_is_help=True
)
app.add_typer(features_app, name="features")
app.add_typer(models_app, name="models")
app.add_typer(predictions_app, name="predictions")
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(monitor_app, name="monitor")

console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def cli_run_id(kind: str) -> str:
    return f"cli__{kind}__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from exc


DateArg = Annotated[date, typer.Option(parser=parse_date, metavar="YYYY-MM-DD")]


def emit(
    rows: Sequence[dict[str, Any]] | dict[str, Any], as_json: bool, columns: list[str] | None = None
) -> None:
    """Print JSON (array, or one object) or a table of ``columns``."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if isinstance(rows, dict):
        for key, value in rows.items():
            console.print(
                f"[bold]{key}[/]: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}"
            )
        return
    if not rows:
        console.print("(none)")
        return
    columns = columns or list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if _table_width(columns, cells) > console.width:
        _print_records(columns, cells)
        return
    table = Table(*columns)
    for line in cells:
        table.add_row(*line)
    console.print(table)


def _table_width(columns: list[str], cells: list[list[str]]) -> int:
    """Characters a rich table of these cells needs without shrinking any column: the widest
    value (or header) of each column, plus a border and a space either side of each."""
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + 1


def _print_records(columns: list[str], cells: list[list[str]]) -> None:
    """One block per row, one line per column (psql's expanded display, `\\x`): what a table
    too wide for the terminal prints instead of headers shrunk to `┃ as_… ┃`."""
    width = max(len(name) for name in columns)
    for number, line in enumerate(cells, 1):
        console.print(f"-[ RECORD {number} ]" + "-" * max(0, width - 10), highlight=False)
        for name, value in zip(columns, line, strict=True):
            console.print(f"{name:<{width}} | {value}", highlight=False, soft_wrap=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


@app.callback()
def options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            envvar="FTI_DEBUG",
            help="Show the full traceback of an error (for bug reports) instead of one line.",
        ),
    ] = False,
) -> None:
    """Options of every command. An error prints one line per problem on stderr and exits
    with code 1; --debug (or FTI_DEBUG=1) prints its traceback instead."""


def settings():  # type: ignore[no-untyped-def]
    from fti.settings import get_settings

    return get_settings()


# ---- set-up -----------------------------------------------------------------------------------
@app.command()
def init() -> None:
    """Create FTI_HOME: migrated database, feature-store repo and its DVC remote."""
    from fti.settings import hide_password
    from fti.setup import initialise

    s = settings()
    initialise(s)
    console.print(
        f"fti home ready at {s.home} (database {hide_password(s.db_url)}, store {s.store_path}, "
        f"remote {s.dvc_remote})"
    )
    _write_manifest(s)


def _write_manifest(s: Any, quiet: bool = False) -> None:
    """Write the project's manifest (what the DAG files read)."""
    from fti.definitions import load_project
    from fti.manifest import write_manifest

    path = write_manifest(load_project(s.project), s.project, s.manifest_path)
    if not quiet:
        console.print(f"manifest of {s.project} written to {path}")


@app.command()
def check(as_json: JsonFlag = False) -> None:
    """Validate the project definition (FTI_PROJECT), list what it defines, write its manifest.

    Exit code 1 with one line per problem when the definition breaks a rule.
    """
    from fti.definitions import data_problems, load_project
    from fti.errors import DefinitionError
    from fti.manifest import manifest_of

    s = settings()
    try:
        project = load_project(s.project)
    except DefinitionError as exc:
        for line in str(exc).splitlines()[1:] or [str(exc)]:
            typer.echo(f"error: {line}", err=True)
        raise typer.Exit(1) from None
    except FtiError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    problems = data_problems(project, s.raw_path)
    for line in problems:
        typer.echo(f"error: {line}", err=True)
    if problems:
        raise typer.Exit(1)
    data = manifest_of(project, s.project)
    _write_manifest(s, quiet=as_json)
    if as_json:
        emit(data, True)
        return
    console.print(f"[bold]project[/] {project.name} ({s.project}), start date {data['start_date']}")
    console.print(
        "entities: " + ", ".join(f"{e.name} ({e.key}: {e.dtype})" for e in project.entities)
    )
    for source in project.sources:
        console.print(
            f"source {source.name}: {source.format}, time {source.time_column} ({source.timezone}), "
            f"id {source.id_column or '-'}, missing day: {source.missing_day}"
        )
    for group in project.feature_groups:
        console.print(
            f"feature group {group.name}: {len(group.features)} features from "
            f"{', '.join(x.name for x in group.sources)}, look-back {group.lookback_days} day(s)"
        )
    for label in project.labels:
        console.print(
            f"label group {label.name}: from {', '.join(x.name for x in label.sources)}, "
            f"horizon {label.horizon_days} day(s)"
        )
    for model in data["models"]:
        console.print(
            f"model {model['name']}: {model['task']}, metric {model['metric']}, label "
            f"{model['label']}, {len(model['features'])} features from {', '.join(model['groups'])}"
        )


@app.command()
def demo(
    days: Annotated[int, typer.Option(help="Nightly runs to simulate, one per day.")] = 5,
    customers: Annotated[int, typer.Option(help="Customers in the generated business.")] = 2000,
    end: Annotated[
        str | None, typer.Option(help="Last simulated day (YYYY-MM-DD; default: yesterday, UTC).")
    ] = None,
    drift_after: Annotated[str | None, typer.Option(help="Shift the data after this date.")] = None,
    past_weeks: Annotated[
        int,
        typer.Option(
            help="Backtest: load the history's last N weeks apart and score one date a week of "
            "them with the champion trained before them (realized metrics out of sample)."
        ),
    ] = 16,
) -> None:
    """Generate the churn demo's raw data and run the nightly DAGs through Airflow: the history
    from the project's start date in two range runs (the second, ``--past-weeks`` weeks long,
    scored one date a week by the champion the first trained), then one run per night up to
    ``--end``."""
    from datetime import timedelta

    from fti.demo import run_demo

    run_demo(
        settings(),
        nightly_days=days,
        customers=customers,
        end=parse_date(end) if end else datetime.now(UTC).date() - timedelta(days=1),
        drift_after=parse_date(drift_after) if drift_after else None,
        past_weeks=past_weeks,
    )


@app.command()
def new(
    folder: Annotated[
        str, typer.Argument(help="Folder to create; its name is the project's package name.")
    ],
) -> None:
    """Write a small, working project package to start from: definitions, params.yaml, a
    sample of raw files, a test of its feature function, and the .env that points fti at it."""
    from pathlib import Path

    from fti.scaffold import SAMPLE, create_project

    target = Path(folder)
    path = create_project(target.name, target.parent)
    typer.echo(
        f"created {path}\nnext:\n  cd {folder}\n  pip install -e .\n  python -m pytest tests\n"
        f"  fti check\n  fti run --start {SAMPLE.start} --end {SAMPLE.end}"
    )


@app.command()
def run(
    start: DateArg,
    end: DateArg,
    nights: Annotated[
        int, typer.Option(help="Last days to run night by night (the rest is one range run).")
    ] = 3,
) -> None:
    """Run the project's nightly DAGs through Airflow for [start, end]: the history as one range
    run of the feature DAG, then the last NIGHTS days one by one (features, training, scoring),
    as the scheduler would; ends with what the runs left."""
    from fti.runner import run_nights, summary

    s = settings()
    done = run_nights(s, start, end, nights)
    typer.echo(summary(s, end, done["seconds"]))


@app.command("airflow-env")
def airflow_env(
    port: Annotated[
        int | None, typer.Option(help="The port the Airflow API server and UI listen on.")
    ] = None,
) -> None:
    """Print the environment (KEY='value' lines) for running Airflow on the embedded default:
    fti's settings as absolute paths, fti's DAG and plugin folders, the project on PYTHONPATH."""
    from fti.runner import airflow_variables, shell_lines

    for line in shell_lines(airflow_variables(settings(), port)):
        typer.echo(line)


@app.command("airflow")
def airflow(
    port: Annotated[int, typer.Option(help="The port the Airflow UI listens on.")] = 8080,
    prepare_only: Annotated[
        bool,
        typer.Option(
            help="Prepare, print the environment (as airflow-env) and stop: no airflow standalone."
        ),
    ] = False,
) -> None:
    """The Airflow UI on this project's DAGs and the fti pages (embedded default): fti init,
    Airflow's database migrated, the feature-store pool, then `airflow standalone` until Ctrl-C."""
    from fti.runner import airflow_banner, prepare_airflow, shell_lines, start_airflow

    s = settings()
    variables = prepare_airflow(s, port, say=lambda line: typer.echo(line, err=True))
    if prepare_only:
        for line in shell_lines(variables):
            typer.echo(line)
        return
    typer.echo(airflow_banner(s, port))
    start_airflow(variables)


# ---- features ---------------------------------------------------------------------------------
@features_app.command("run")
def features_run(
    date_: Annotated[str | None, typer.Option("--date", help="Logical date (YYYY-MM-DD).")] = None,
    start: Annotated[str | None, typer.Option(help="First date of a range run.")] = None,
    end: Annotated[str | None, typer.Option(help="Last date of a range run.")] = None,
    group: Annotated[
        list[str] | None,
        typer.Option(help="Only this feature or label group (repeat for more). Default: all."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Feature pipeline for one date (or a range) -> a new version of each feature and label group."""
    from fti import pipelines

    s = settings()
    if date_:
        first = last = parse_date(date_)
    elif start and end:
        first, last = parse_date(start), parse_date(end)
    else:
        raise typer.BadParameter("give --date D, or --start S and --end E")

    def run() -> dict[str, Any]:
        run_id = cli_run_id("features")
        return {"run_id": run_id, **pipelines.run_features(first, last, run_id, s, group)}

    emit(run(), as_json)


@features_app.command("versions")
def features_versions(group: str, as_json: JsonFlag = False) -> None:
    """The catalog of a feature group: version, rows, time range, DVC hash, git tag."""
    from fti.db.engine import session_scope
    from fti.definitions import load_project
    from fti.store.catalog import as_dict, list_versions
    from fti.store.versions import FeatureStore

    s = settings()
    load_project(s.project).group(group)  # a typo names the known groups
    with session_scope(s.db_url) as session:
        rows = [as_dict(r) for r in list_versions(session, group, FeatureStore(s.store_path))]
    emit(
        rows,
        as_json,
        [
            "version",
            "kind",
            "rows",
            "partitions",
            "min_date",
            "max_date",
            "dvc_md5",
            "git_tag",
            "created_at",
        ],
    )


@features_app.command("show")
def features_show(
    group: str,
    version: Annotated[str, typer.Option(help="Version number or 'latest'.")] = "latest",
    as_json: JsonFlag = False,
) -> None:
    """Schema, statistics and lineage of one feature version."""
    from fti.db.engine import session_scope
    from fti.store.catalog import as_dict, get_version
    from fti.store.versions import FeatureStore

    def run() -> dict[str, Any]:
        s = settings()
        store = FeatureStore(s.store_path)
        with session_scope(s.db_url) as session:
            return as_dict(get_version(session, group, store.resolve(group, version)), full=True)

    emit(run(), as_json)


@features_app.command("diff")
def features_diff(
    group: str,
    from_version: Annotated[str, typer.Argument(help="Older version (number, vN or 'latest').")],
    to_version: Annotated[str, typer.Argument(help="Newer version (number, vN or 'latest').")],
    as_json: JsonFlag = False,
) -> None:
    """Schema changes, row-count change and statistic shifts between two feature versions."""
    from fti.db.engine import session_scope
    from fti.store.catalog import diff_versions, get_version
    from fti.store.versions import FeatureStore

    def run() -> dict[str, Any]:
        s = settings()
        store = FeatureStore(s.store_path)
        with session_scope(s.db_url) as session:
            a, b = (
                get_version(session, group, store.resolve(group, v))
                for v in (from_version, to_version)
            )
            return diff_versions(a, b)

    emit(run(), as_json)


@features_app.command("get")
def features_get(
    group: str,
    entities: Annotated[list[str], typer.Argument(help="Entity keys, e.g. 494 17.")],
    as_json: JsonFlag = False,
) -> None:
    """Rows from the online store: each entity's newest row of the group's version online."""
    from fti.definitions import load_project
    from fti.online.store import online_records

    s = settings()
    chosen = load_project(s.project).group(group)  # a typo names the known groups
    if chosen.kind != "features":
        raise FtiError(f"{group!r} is a {chosen.noun}: only feature groups are served online")
    version, records = online_records(s.db_url, group, entities)
    if version is None:
        raise FtiError(
            f"no version of {group} is online: publish one (`fti features run`) or run "
            f"`fti features materialise --group {group}`"
        )
    if as_json:
        emit(records, as_json)
        return
    emit([r for r in records if r["found"]], as_json)
    missing = [r["entity"] for r in records if not r["found"]]
    if missing:
        typer.echo(f"not online in {group} v{version}: {' '.join(missing)}", err=True)


@features_app.command("materialise")
def features_materialise(
    group: Annotated[
        list[str] | None, typer.Option(help="Only this feature group (repeat for more).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Put the newest version of each feature group into the online store (idempotent)."""
    from fti.online.materialise import materialise_latest

    done = materialise_latest(settings(), group or None)
    emit([m.as_dict() for m in done], as_json)


# ---- training ---------------------------------------------------------------------------------
@app.command()
def train(
    model: Annotated[str, typer.Option(help="Model name from the project.")],
    version: Annotated[
        list[str] | None,
        typer.Option(
            help="GROUP=VERSION for a feature or label group (repeat); others read 'latest'."
        ),
    ] = None,
    feature: Annotated[
        list[str] | None,
        typer.Option(help="Train on these features ('group.column', 'group.*'; repeat)."),
    ] = None,
    as_of: Annotated[
        str | None, typer.Option(help="Train as of this date (default: newest features).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Training pipeline -> a new model version, promoted to champion only if better."""
    from fti import pipelines

    s = settings()
    versions = {}
    for pair in version or []:
        group, sep, ref = pair.partition("=")
        if not sep or not group or not ref:
            raise typer.BadParameter(f"{pair!r} is not GROUP=VERSION")
        versions[group] = ref

    def run() -> dict[str, Any]:
        run_id = cli_run_id("train")
        path = pipelines.build_training_set(
            model, versions, parse_date(as_of) if as_of else None, run_id, s, feature
        )
        number = pipelines.train_model(path, run_id, settings=s)
        return pipelines.promote_if_better(path, number, run_id, s)

    emit(run(), as_json)


# ---- models -----------------------------------------------------------------------------------
@models_app.command("list")
def models_list(as_json: JsonFlag = False) -> None:
    """Model versions with metrics, aliases, feature group/version and features."""
    from fti.db.engine import session_scope
    from fti.registry.versions import aliases_by_version, as_dict, list_versions

    with session_scope(settings().db_url) as session:
        tags = aliases_by_version(session)
        rows = [as_dict(r, tags.get((r.name, r.version))) for r in list_versions(session)]
    emit(
        rows,
        as_json,
        [
            "name",
            "version",
            "aliases",
            "task",
            "metric",
            "metric_value",
            "label_version",
            "train_end",
        ],
    )


@models_app.command("show")
def models_show(
    model: str,
    version: Annotated[str, typer.Option(help="Version number or alias.")] = "champion",
    as_json: JsonFlag = False,
) -> None:
    """One version's full lineage, artifact path and sha256."""
    from fti.db.engine import session_scope
    from fti.registry import aliases
    from fti.registry.versions import aliases_by_version, as_dict, get_version

    def run() -> dict[str, Any]:
        with session_scope(settings().db_url) as session:
            row = get_version(session, model, aliases.resolve(session, model, version))
            return as_dict(
                row, aliases_by_version(session, model).get((model, row.version)), full=True
            )

    emit(run(), as_json)


@models_app.command("compare")
def models_compare(
    model: str,
    first: str,
    second: str,
    as_json: JsonFlag = False,
    realized: Annotated[
        bool,
        typer.Option(
            "--realized",
            help="Realized metric of both versions on each as-of date both scored, once labels landed.",
        ),
    ] = False,
) -> None:
    """Two versions side by side: metrics, feature sets, training windows, parameters."""
    from fti.db.engine import session_scope
    from fti.monitoring.realized import compare_realized
    from fti.registry import aliases
    from fti.registry.versions import compare, get_version

    if realized:
        with session_scope(settings().db_url) as session:
            a, b = (aliases.resolve(session, model, ref) for ref in (first, second))
            emit(compare_realized(session, model, a, b), as_json)
        return

    def run() -> dict[str, Any]:
        with session_scope(settings().db_url) as session:
            a, b = (
                get_version(session, model, aliases.resolve(session, model, ref))
                for ref in (first, second)
            )
            return compare(a, b)

    emit(run(), as_json)


@models_app.command("promote")
def models_promote(
    model: str,
    version: int,
    alias: Annotated[str, typer.Option(help="Alias to point at the version.")] = "champion",
    reason: Annotated[
        str, typer.Option(help="Why; recorded in the alias history.")
    ] = "manual promotion",
) -> None:
    """Point an alias at a version (recorded with who and why)."""
    from fti.db.engine import session_scope
    from fti.registry import aliases

    def run() -> None:
        with session_scope(settings().db_url, write=True) as session:
            event = aliases.set_alias(session, model, alias, version, _actor(), reason)
            console.print(f"{model} {alias}: v{event.from_version} -> v{event.to_version}")

    run()


@models_app.command("rollback")
def models_rollback(
    model: str,
    alias: Annotated[str, typer.Option(help="Alias to roll back.")] = "champion",
    reason: Annotated[str, typer.Option(help="Why; recorded in the alias history.")] = "rollback",
    rescore: Annotated[
        bool,
        typer.Option(
            "--rescore/--no-rescore", help="Re-score the dates the rolled-back version scored."
        ),
    ] = True,
) -> None:
    """Re-point the alias to its previous holder; re-score what the replaced version scored."""
    from fti import pipelines

    def run() -> None:
        result = pipelines.rollback_model(model, alias, _actor(), reason, rescore, settings())
        console.print(
            f"{model} {alias}: v{result['from_version']} -> v{result['to_version']}; "
            f"re-scored {len(result['rescored'])} date(s): {', '.join(result['rescored']) or 'none'}"
        )

    run()


@models_app.command("history")
def models_history(
    model: str,
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    at: Annotated[
        str | None, typer.Option(help="Only changes up to this date (end of day, UTC) or ISO time.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Every alias change, oldest first; with --at, also which version held the alias then."""
    from fti.db.engine import session_scope
    from fti.registry import aliases

    when = None
    if at:
        try:
            when = datetime.fromisoformat(at if "T" in at else f"{at}T23:59:59.999999")
        except ValueError as exc:
            raise typer.BadParameter(f"{at!r} is not an ISO date or time") from exc
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    with session_scope(settings().db_url) as session:
        rows = [aliases.event_as_dict(e) for e in aliases.history(session, model, alias, when)]
    emit(rows, as_json)
    if when is not None and not as_json:
        for name in sorted({r["alias"] for r in rows}):
            held = [r for r in rows if r["alias"] == name][-1]["to_version"]
            console.print(f"at {when.isoformat()}: {model} {name} was v{held}")


def _actor() -> str:
    import getpass

    return getpass.getuser()


# ---- inference --------------------------------------------------------------------------------
@app.command()
def infer(
    model: Annotated[str, typer.Option(help="Model name from the project.")],
    date_: Annotated[str, typer.Option("--date", help="As-of date (YYYY-MM-DD).")],
    version: Annotated[str, typer.Option(help="Model version or alias.")] = "champion",
    feature_version: Annotated[
        str, typer.Option(help="Version of the model's first feature group, or 'latest'.")
    ] = "latest",
    as_json: JsonFlag = False,
) -> None:
    """Batch inference for one date -> a prediction run (replaces that date's slice)."""
    from fti import pipelines

    s = settings()

    def run() -> dict[str, Any]:
        return pipelines.score_batch(
            model, parse_date(date_), cli_run_id("infer"), version, feature_version, s
        )

    emit(run(), as_json)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="TCP port to listen on.")] = 8000,
    insecure_no_token: Annotated[
        bool,
        typer.Option(
            "--insecure-no-token",
            help="Serve without authentication when FTI_SERVE_TOKEN is not set (trusted networks only).",
        ),
    ] = False,
) -> None:
    """Real-time scoring service: POST /models/{name}/predict with the alias's model (champion
    by default), following promotions and rollbacks; /health, /ready, /metrics."""
    # One OpenMP thread per request, before scikit-learn loads its runtime: a one-row
    # predict_proba across every core waits for busy cores (p99 876 ms vs 44 ms with one thread,
    # benchmarks/bench_serving.py); more throughput comes from more processes (--scale).
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import uvicorn

    from fti.serve.app import create_app
    from fti.serve.config import serve_config

    config = serve_config()
    if config.token is None and not insecure_no_token:
        raise FtiError(
            "FTI_SERVE_TOKEN is not set: set it to a long random secret (e.g. `openssl rand "
            "-hex 32`), or pass --insecure-no-token to serve without authentication"
        )
    import logging

    logging.basicConfig(level=logging.INFO, format="%(levelname)s:     %(name)s: %(message)s")
    uvicorn.run(create_app(settings(), config), host=host, port=port, log_level="info")


@predictions_app.command("runs")
def predictions_runs(as_json: JsonFlag = False, limit: int = 50) -> None:
    """Prediction runs with model and feature versions and row counts, newest first."""
    from fti.db.engine import session_scope
    from fti.inference.runs import list_runs

    with session_scope(settings().db_url) as session:
        rows = list_runs(session, limit)
    emit(
        rows,
        as_json,
        [
            "run_id",
            "model_name",
            "model_version",
            "feature_version",
            "as_of_date",
            "status",
            "row_count",
            "finished_at",
            "warnings",
        ],
    )


# ---- quarantine --------------------------------------------------------------------------------
@quarantine_app.command("list")
def quarantine_list(as_json: JsonFlag = False, limit: int = 100) -> None:
    """Quarantined raw rows: file, line, column, rule and the original values."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import list_rows

    with session_scope(settings().db_url) as session:
        rows = list_rows(session, limit)
    emit(rows, as_json, ["id", "file", "row_number", "column", "rule", "file_status"])


@quarantine_app.command("show")
def quarantine_show(row_id: int, as_json: JsonFlag = False) -> None:
    """One quarantined row: file, line, column, rule, original values and the file's accounting."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import show_row

    def run() -> dict[str, Any]:
        with session_scope(settings().db_url) as session:
            return show_row(session, row_id)

    emit(run(), as_json)


@quarantine_app.command("export")
def quarantine_export(
    date_: Annotated[str, typer.Option("--date", help="Logical date (YYYY-MM-DD).")],
    source: Annotated[
        str | None, typer.Option(help="Source name (default: the project's first source).")
    ] = None,
    out: Annotated[str | None, typer.Option(help="CSV file to write (default: stdout).")] = None,
) -> None:
    """A day's quarantined rows as CSV (quarantine_id, line, rule, columns), to fix and readmit."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import export_rows

    s = settings()
    chosen = _source(s, source)
    with session_scope(s.db_url) as session:
        rows = export_rows(session, chosen, parse_date(date_))
    text = rows.to_csv(index=False)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
        console.print(f"{len(rows)} quarantined row(s) written to {out}")
    else:
        typer.echo(text, nl=False)


@quarantine_app.command("readmit")
def quarantine_readmit(
    fixed: Annotated[str, typer.Argument(help="CSV from `fti quarantine export`, rows fixed.")],
    source: Annotated[
        str | None, typer.Option(help="Source name (default: the project's first source).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate fixed rows again and move those that pass into their day's accepted events."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import readmit
    from fti.pipelines import quarantine_root

    s = settings()

    def run() -> dict[str, Any]:
        rows = _read_fixed_rows(fixed)
        with session_scope(s.db_url, write=True) as session:
            result = readmit(session, _source(s, source), rows, s.staging_path, quarantine_root(s))
        if result["readmitted"]:
            result["next"] = "rerun the feature pipeline for those dates to publish the rows"
        return result

    emit(run(), as_json)


def _read_fixed_rows(path: str) -> Any:
    """The rows of a CSV written by `fti quarantine export` and fixed by hand, all as text."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise InputFileError(
            f"{path}: no such file; give the CSV that `fti quarantine export --out FILE` wrote, "
            "with its rows fixed"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(
            f"{path}: not a CSV from `fti quarantine export` ({_first_line(exc)}); export the "
            "rows again with `fti quarantine export --out FILE` and fix them there"
        ) from exc


def _source(s: Any, name: str | None) -> Any:
    from fti.definitions import load_project

    project = load_project(s.project)
    return project.source(name) if name else project.sources[0]


# ---- monitoring -------------------------------------------------------------------------------
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
    """Write a run's drift report, its model's metrics-over-versions chart and its model's
    realized performance (metric over dates per version, reliability or error bands) as HTML."""
    from pathlib import Path

    from fti.monitoring.publish import write_reports

    s = settings()
    folder = Path(out) if out else s.home / "reports"
    emit(write_reports(s, folder, run), as_json)


@monitor_app.command("gaps")
def monitor_gaps(
    through: Annotated[
        str | None, typer.Option(help="Last day expected (default: yesterday, UTC).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Days no run processed since the project's start: groups without their partition, models
    without their predictions, with the command that fills each. Exit 1 when there are any."""
    from datetime import timedelta

    from fti import pipelines

    day = parse_date(through) if through else datetime.now(UTC).date() - timedelta(days=1)
    gaps: list[dict[str, Any]] = [gap.as_dict() for gap in pipelines.find_gaps(day, settings())]
    if as_json:
        emit(gaps, True)
    elif not gaps:
        console.print(f"no gaps up to {day}")
    for gap in [] if as_json else gaps:
        ranges = ", ".join(a if a == b else f"{a}..{b}" for a, b in gap["ranges"])
        console.print(f"{gap['kind']} {gap['name']}: {gap['days']} day(s) missing: {ranges}")
        for command in gap["fill"][:5]:
            console.print(f"  {command}")
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
    """Realized performance: each version's metric per as-of date once its labels landed, with
    the holdout figure, rows joined, and calibration (classifiers) or errors (regressors)."""
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
    ]
    emit(rows, as_json, columns)


NowOption = Annotated[
    str | None,
    typer.Option(help="The moment to judge at, ISO (default: now; without offset: UTC)."),
]


def _moment(now: str | None) -> datetime:
    """``--now`` as a datetime (the current time when not given)."""
    try:
        return datetime.fromisoformat(now) if now else datetime.now(UTC)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{now!r} is not an ISO date and time", param_hint="--now"
        ) from exc


@monitor_app.command("health")
def monitor_health(
    as_json: JsonFlag = False,
    now: NowOption = None,
    nights: Annotated[int, typer.Option(min=1, help="Nights of failures to list.")] = 7,
) -> None:
    """Freshness of every feature group, label group and model against its fresh_by, and the
    failed runs of the last nights. With FTI_AIRFLOW_API_URL set, also the pipelines' DAG runs
    from Airflow's REST API (a failed one counts until a later run of its night succeeded).
    Exit 1 when something is stale, never published or failed."""
    from fti import pipelines
    from fti.db.engine import session_scope
    from fti.monitoring.health import REALIZED_COLUMNS, health
    from fti.monitoring.realized import realized_rules
    from fti.store.versions import FeatureStore

    moment = _moment(now)
    s, project = pipelines.setup(settings())
    with session_scope(s.db_url) as session:
        result = health(
            session, project, moment, nights, FeatureStore(s.store_path), realized_rules(s)
        )
    report = result.as_dict()
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
        emit(report, True)
    else:
        rows = [
            f.as_dict() | {"age_hours": None if f.age_hours is None else f"{f.age_hours:.1f}"}
            for f in result.freshness
        ]
        columns = ["kind", "name", "status", "newest_date", "expected_date", "due_at", "age_hours"]
        emit(rows, False, columns)
        if result.failures:
            emit([f.as_dict() for f in result.failures], False, ["kind", "name", "date", "reason"])
        emit([r.row() for r in result.realized], False, list(REALIZED_COLUMNS))
        if report.get("runs"):
            _print_runs(report["runs"])
    for line in result.problems() + run_problems:
        typer.echo(line, err=True)
    if not result.healthy or run_problems:
        raise typer.Exit(1)


@monitor_app.command("runs")
def monitor_runs(
    nights: Annotated[int, typer.Option(min=1, help="Nights back from --now to list.")] = 7,
    now: NowOption = None,
    as_json: JsonFlag = False,
) -> None:
    """The DAG runs of the pipelines (feature, each model's training and inference) per night,
    from Airflow's REST API at FTI_AIRFLOW_API_URL (with FTI_AIRFLOW_API_TOKEN, or
    FTI_AIRFLOW_API_USERNAME and FTI_AIRFLOW_API_PASSWORD): state, duration, retries, failed
    tasks and a link to each run's page. A failed run is resolved once a later run of the same
    DAG and night succeeded."""
    from fti.monitoring.runs import project_runs

    runs = project_runs(settings(), _moment(now), nights).as_dict()
    if as_json:
        emit(runs, True)
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
        console.print(
            f"no DAG runs of {', '.join(runs['dags'])} for {runs['since']}..{runs['until']}"
        )
        return
    emit(rows, False)


# ---- sql --------------------------------------------------------------------------------------
@app.command()
def sql(query: str, as_json: JsonFlag = False) -> None:
    """Run a read-only query against fti's database."""
    from fti.sql import run_read_only

    columns, rows = run_read_only(settings().db_url, query)
    emit([dict(zip(columns, r, strict=True)) for r in rows], as_json, columns)


def main() -> None:  # pragma: no cover - console entry
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
