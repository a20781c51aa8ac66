"""A project's DAGs through Airflow, from the project's folder: `fti run` and `fti airflow`.

`fti run`: the history up to ``end - nights`` is loaded by one range run of the feature DAG
(two with a backtest, see :func:`plan`); then each of the last ``nights`` days gets its
feature, training and inference runs, as the scheduler would start them. The DAGs run with
``dag.test()`` in one process (``dags/range_runner.py``) against Airflow's metadata in
``FTI_HOME/airflow``: real parsing, task instances, XComs and asset events. The terminal shows
a line per DAG run (a progress bar on a terminal), a failed or drift-flagged run with fti's
one-line reason; Airflow's own output goes to a log file (:func:`run_log`).

`fti airflow`: the same DAGs in the Airflow UI, ``airflow standalone`` on that metadata, once
:func:`prepare_airflow` has made it ready (fti's home, the manifest, Airflow's database, the
publish pool).

Any project works: the DAG files are generated from its manifest (beside the other projects'
of the deployment, if any; only this project's DAGs run), and the Airflow processes import the
project from the folder it was found in (:func:`airflow_variables`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import func, select

from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion, ModelVersion, Prediction
from fti.definitions import Project, load_project
from fti.deployment import project_folder, publish_manifest
from fti.errors import ConfigError, FtiError
from fti.registry import aliases
from fti.registry.versions import get_version
from fti.settings import ENV_PREFIX, SECRETS, Settings
from fti.setup import initialise

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"

PREDICTIONS_QUERY = (
    "SELECT entity_id, {column}, model_version, feature_version, run_id "
    "FROM predictions WHERE model_name = '{model}' AND as_of_date = '{day}' "
    "ORDER BY {column} DESC LIMIT 10;"
)
SCORE_COLUMN = {"binary": "probability", "multiclass": "probability", "regression": "value"}
# The one-slot pool the publish tasks run in (dags/fti_common.PUBLISH_POOL): one publisher at a time.
PUBLISH_POOL = "fti_feature_store"
POOL_DESCRIPTION = "one feature-store publisher at a time"
AIRFLOW_PORT = 8080  # Airflow's own default
# Where Airflow's simple auth manager (the embedded default) writes the generated admin password.
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"


def airflow_variables(settings: Settings, port: int | None = None) -> dict[str, str]:
    """What Airflow processes need to run this project's DAGs on the embedded default (SQLite
    in FTI_HOME/airflow), whatever folder they start in: every fti setting (``FTI_*``, paths
    absolute, so a value that came from the project's ``.env`` reaches them too), Airflow's home
    in FTI_HOME/airflow, fti's DAG and plugin folders, and the project's folder first on
    PYTHONPATH (then the current PYTHONPATH's entries, made absolute) so every task imports the
    same definitions the CLI loaded.

    With ``port``, the API server listens there and the task supervisor calls the execution
    API there too (it derives that URL from the base URL; left alone it calls port 8080).
    """
    served = (
        {"AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://localhost:{port}"}
        if port
        else {}
    )
    folder = project_folder(settings.project)
    paths = [str(folder)] if folder else []
    for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep):
        absolute = str(Path(entry).resolve()) if entry else ""
        if absolute and absolute not in paths:
            paths.append(absolute)
    return (
        served
        | fti_variables(settings)
        | dict(
            AIRFLOW_HOME=str(settings.airflow_home),
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
        )
        | ({"PYTHONPATH": os.pathsep.join(paths)} if paths else {})
    )


def fti_variables(settings: Settings) -> dict[str, str]:
    """Every setting as its ``FTI_*`` variable, paths absolute (None: left out), except the
    credentials of Airflow's own REST API (``SECRETS``): no task reads them, so they stay out
    of Airflow's processes and of the env files written for them."""
    variables = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is None or name in SECRETS:
            continue
        if isinstance(value, Path):
            text = str(value.resolve())
        elif isinstance(value, str | int | float):  # bool is an int
            text = str(value)
        elif hasattr(value, "get_secret_value"):
            text = str(value.get_secret_value())
        else:
            text = json.dumps(value, default=str)  # pydantic-settings reads complex values as JSON
        variables[f"{ENV_PREFIX}{name.upper()}"] = text
    return variables


def shell_lines(variables: dict[str, str]) -> list[str]:
    """``KEY='value'`` lines a POSIX shell can source (``set -a; . ./airflow.env; set +a``)."""
    return [f"{key}={shlex.quote(value)}" for key, value in variables.items()]


def require_dags() -> None:
    """Refuse to go on when fti's DAG folder is not there (fti installed from a wheel).

    Raises:
        FtiError: the folder and how to install fti so that it is there.
    """
    if not (DAGS / "range_runner.py").exists():
        raise FtiError(
            f"fti runs the DAGs in {DAGS}, which is not there: install fti from its "
            "repository with `pip install -e .` (make demo does)"
        )


def airflow_executable() -> str:
    """The ``airflow`` command of fti's environment (beside this Python), else the PATH's.

    Raises:
        FtiError: there is none.
    """
    beside = Path(sys.executable).parent / "airflow"
    found = str(beside) if beside.exists() else shutil.which("airflow")
    if found is None:
        raise FtiError(
            f"the airflow command is not installed beside {sys.executable} nor on PATH: "
            "install fti with `pip install -e .` (it brings Airflow)"
        )
    return found


def airflow_process_env(variables: dict[str, str]) -> dict[str, str]:
    """The environment the ``airflow`` commands run in: this one, ``variables`` over it, and
    fti's environment first on PATH (airflow standalone starts its components by name)."""
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        **variables,
        "PATH": os.pathsep.join([bin_dir, os.environ.get("PATH", "")]),
    }


def prepare_airflow(
    settings: Settings, port: int | None = None, say: Callable[[str], None] = print
) -> dict[str, str]:
    """Make Airflow ready to serve the project's DAGs on the embedded default, from any
    project folder: what `fti init` does (FTI_HOME, the manifest the DAG files read), Airflow's
    metadata database in FTI_HOME/airflow migrated, and the publish pool (one slot) created.
    Idempotent. ``say`` gets a line per step.

    Returns:
        The variables Airflow needs (:func:`airflow_variables`, with ``port``).

    Raises:
        ConfigError, DefinitionError: the project does not load.
        FtiError: the DAG folder or the airflow command is missing, or a step failed (its
            command, exit code and last line of output).
    """
    project = load_project(settings.project)
    require_dags()
    airflow = airflow_executable()
    with contextlib.redirect_stdout(sys.stderr):  # DVC's "Initialized" note: stdout is the caller's
        initialise(settings)
    path = publish_manifest(project, settings)
    say(f"fti home ready at {settings.home}; manifest of {settings.project} written to {path}")
    variables = airflow_variables(settings, port)
    env = airflow_process_env(variables)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    steps = [
        (f"Airflow's database in {settings.airflow_home} migrated", ["db", "migrate"]),
        (
            f"pool {PUBLISH_POOL} ready (1 slot)",
            ["pools", "set", PUBLISH_POOL, "1", POOL_DESCRIPTION],
        ),
    ]
    for done_message, args in steps:
        done = subprocess.run(
            [airflow, *args], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
            raise FtiError(
                f"`airflow {' '.join(args[:2])}` failed (exit {done.returncode}) with "
                f"AIRFLOW_HOME={settings.airflow_home}: {lines[-1] if lines else 'no output'}"
            )
        say(done_message)
    return variables


def airflow_banner(settings: Settings, port: int | None = None) -> str:
    """Where the UI will be and how to log in, for the lines before ``airflow standalone``."""
    url = f"http://localhost:{port or AIRFLOW_PORT}"
    return (
        f"Airflow UI: {url} (fti pages: {url}/fti/); user admin, password in "
        f"{settings.airflow_home / PASSWORDS_FILE} (written on first start); Ctrl-C stops it"
    )


def start_airflow(variables: dict[str, str]) -> NoReturn:
    """Replace this process with ``airflow standalone`` in ``variables`` (what
    :func:`prepare_airflow` returned), so Ctrl-C stops Airflow itself."""
    airflow = airflow_executable()
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(airflow, [airflow, "standalone"], airflow_process_env(variables))


def plan(start: date, end: date, nights: int, past_weeks: int = 0) -> dict[str, Any]:
    """One range run for the history [start, end - nights], then one feature/training/inference
    cycle per night up to ``end``. Each step names its phase: ``history`` or ``night``.

    ``past_weeks`` > 0 backtests the models as the nights would have: the history is loaded as
    two range runs, the second holding its last ``past_weeks`` weeks; after that second run's
    features land, and before its training, each model's inference DAG scores one date a week
    of those weeks with the champion trained by the first run, which never saw their labels
    (phase ``backtest``). The dates whose labels have landed get their realized metrics at once.

    Raises:
        ConfigError: the past weeks reach back before ``start``.
    """
    history_end = end - timedelta(days=nights)
    steps: list[dict[str, Any]] = []
    past = [history_end - timedelta(weeks=n) for n in range(past_weeks, 0, -1)]
    if past:
        backtest_start = past[0] - timedelta(days=1)  # the first range run ends the day before
        if backtest_start < start:
            raise ConfigError(
                f"--past-weeks {past_weeks} reaches back before {start}: ask for fewer weeks "
                "or start earlier"
            )
        steps.append(_range_step(start, backtest_start))
    steps.append(_range_step(past[0] if past else start, history_end))
    steps[-1]["past_dates"] = [day.isoformat() for day in past]
    for offset in range(1, nights + 1):
        day = history_end + timedelta(days=offset)
        steps.append({"date": f"{day.isoformat()}T00:00:00+00:00", "phase": "night"})
    return {"first_day": start.isoformat(), "last_day": end.isoformat(), "steps": steps}


def _range_step(first: date, last: date) -> dict[str, Any]:
    return {
        "date": f"{last.isoformat()}T00:00:00+00:00",
        "phase": "history",
        "feature_conf": {"start_date": first.isoformat(), "end_date": last.isoformat()},
    }


def planned_runs(steps: list[dict[str, Any]], models: int, feature_runs: bool = True) -> int:
    """How many DAG runs ``steps`` make: per step a feature run (``feature_runs`` False: the
    project builds no group, so it has none), and per model a training and an inference run
    and a backtest run per past date (a training the runner skips counts)."""
    per_step = 1 if feature_runs else 0
    return sum(per_step + models * (2 + len(step.get("past_dates", []))) for step in steps)


def check_range(project: Project, start: date, end: date, nights: int) -> None:
    """Refuse a range the DAGs would refuse, before Airflow starts."""
    from fti.pipelines.runs import check_dates

    check_dates(project, start, end)
    if nights < 0 or end - timedelta(days=nights) < start:
        raise ConfigError(
            f"--nights {nights} does not fit in {start}..{end}: the history needs at least its "
            "first day before the nights"
        )


def run_nights(
    settings: Settings,
    start: date,
    end: date,
    nights: int,
    past_weeks: int = 0,
    console: Console | None = None,
) -> dict[str, Any]:
    """Run the project's DAGs through Airflow for [start, end]; return what they left: the
    ``seconds`` it took, the ``last_day``, the ``log`` file holding Airflow's output, and the
    DAG runs' ``outcomes`` (see ``dags/range_runner.py``). ``past_weeks``: see :func:`plan`.
    ``console`` gets a line per DAG run, or a progress bar when it is a terminal.

    Raises:
        ConfigError: the range does not fit the project.
        FtiError: a DAG run failed: which, for which date, fti's one-line reason, and the log.
    """
    project = load_project(settings.project)
    check_range(project, start, end, nights)
    planned = plan(start, end, nights, past_weeks) | {"project": project.name}
    require_dags()
    console = console or Console()
    clock = time.perf_counter()
    log = run_log(settings)
    with log.open("w") as airflow_log:
        with contextlib.redirect_stdout(airflow_log):  # DVC's "Initialized" note
            initialise(settings)
        publish_manifest(project, settings)
        total = planned_runs(planned["steps"], len(project.models), bool(project.groups))
        say(
            console,
            f"running {total} DAG runs through Airflow (AIRFLOW_HOME={settings.airflow_home}); "
            f"Airflow's log: {log}",
        )
        env = {**os.environ, **airflow_variables(settings)}
        env.setdefault("PYTHONWARNINGS", "ignore")  # Airflow 3's deprecation notices
        with subprocess.Popen(
            [sys.executable, str(DAGS / "range_runner.py"), json.dumps(planned)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=airflow_log,
            text=True,
        ) as runner:
            assert runner.stdout is not None  # stdout=PIPE
            outcomes = show_runs((json.loads(line) for line in runner.stdout), total, console)
    compact_airflow_db(settings)
    if runner.returncode != 0:
        raise FtiError(stopped(outcomes, runner.returncode, log))
    seconds = time.perf_counter() - clock
    return {"seconds": seconds, "last_day": end, "log": log, "outcomes": outcomes}


def run_log(settings: Settings) -> Path:
    """A new file for the Airflow output of one `fti run` or `fti demo`, in Airflow's log
    folder: ``FTI_HOME/airflow/logs/fti-run-<UTC time>.log``."""
    folder = settings.airflow_home / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"fti-run-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.log"


def say(console: Console, text: str) -> None:
    """Print ``text`` as it is: no markup, no highlighting, long lines not wrapped."""
    console.print(text, soft_wrap=True, markup=False, highlight=False)


def run_line(outcome: dict[str, Any]) -> str:
    """One DAG run's outcome in a line: DAG, date, state, seconds, and why when it was not a
    success."""
    line = f"  {outcome['dag']:<26} {outcome['date']}  {outcome['state']:<7} "
    line += f"{outcome['seconds']:5.1f}s"
    return line + (f"  {outcome['reason']}" if outcome.get("reason") else "")


def show_runs(
    outcomes: Iterable[dict[str, Any]], total: int, console: Console
) -> list[dict[str, Any]]:
    """Show each DAG run as it ends and return the outcomes: on a terminal, a progress bar
    with a line for each run that was not a success; elsewhere (a pipe, a file, CI) a line
    per run. A ``stop`` (the runner could not start the runs) is kept, not shown."""
    seen: list[dict[str, Any]] = []
    if not console.is_terminal:
        for outcome in outcomes:
            seen.append(outcome)
            if "dag" in outcome:
                say(console, run_line(outcome))
        return seen
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("DAG runs", total=total)
        for outcome in outcomes:
            seen.append(outcome)
            if "dag" not in outcome:
                continue
            if outcome["state"] in ("failed", "flagged"):
                say(progress.console, run_line(outcome))
            progress.update(
                bar,
                advance=1,
                description=f"{outcome['dag']} {outcome['date']} ({outcome['phase']})",
            )
    return seen


def phase_times(outcomes: list[dict[str, Any]]) -> str:
    """DAG runs and their seconds per phase, in the order the phases came."""
    phases: dict[str, list[float]] = {}
    for outcome in outcomes:
        if "dag" in outcome and outcome["state"] != "skipped":
            phases.setdefault(outcome["phase"], []).append(outcome["seconds"])
    return ", ".join(f"{name} {len(s)} runs {sum(s):.0f}s" for name, s in phases.items())


def stopped(outcomes: list[dict[str, Any]], code: int, log: Path) -> str:
    """Why the DAG runner stopped, in one line, with the log that holds the rest."""
    failed = [o for o in outcomes if o.get("state") == "failed" or "stop" in o]
    if failed and "stop" in failed[-1]:
        return f"{failed[-1]['stop']}; Airflow's log: {log}"
    if failed:
        run = failed[-1]
        reason = str(run["reason"]).rstrip(".")
        return f"{run['dag']} run for {run['date']} failed: {reason}; Airflow's log: {log}"
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return (
        f"the DAG runner stopped (exit {code}) with {lines[-1].strip() if lines else 'no output'}"
        f"; Airflow's log: {log}"
    )


def compact_airflow_db(settings: Settings) -> None:
    """Fold Airflow's SQLite write-ahead log into airflow.db: range_runner.py ends with os._exit,
    so no connection closes and SQLite leaves its WAL (4.2 MB after the tutorial's run, four
    times the database). Nothing to do when Airflow uses another database."""
    database = settings.airflow_home / "airflow.db"
    if database.with_name("airflow.db-wal").exists():
        with contextlib.closing(sqlite3.connect(database, timeout=60)) as connection:
            connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def summary(
    settings: Settings,
    day: date,
    seconds: float,
    what: str = "fti run",
    done: dict[str, Any] | None = None,
) -> str:
    """What the run left behind, per group and per model, named by the project's own names;
    with ``done`` (what :func:`run_nights` returned), its DAG runs per phase and its log."""
    # pandas & co: only once a run is done
    from fti.monitoring.realized import LabelReader, RealizedRules, realized_rules, realized_windows
    from fti.store.versions import FeatureStore

    project = load_project(settings.project)
    try:
        window_days = realized_rules(settings).window_days
    except ConfigError:  # a malformed monitor.realized: the run stands, its alerts said why
        window_days = RealizedRules.from_params({}).window_days
    labels = LabelReader.from_project(FeatureStore(settings.store_path), project)
    lines = ["", f"{what} finished in {seconds:.0f}s"]
    if done is not None:
        flagged = sum(o.get("state") == "flagged" for o in done["outcomes"])
        lines += [
            f"  DAG runs: {phase_times(done['outcomes'])}"
            + (f"; {flagged} flagged for drift (`fti monitor report`)" if flagged else ""),
            f"  Airflow's log of every run: {done['log']}",
        ]
    with session_scope(settings.db_url) as session:
        for group in project.groups:
            count = session.scalar(
                select(func.count())
                .select_from(FeatureVersion)
                .where(FeatureVersion.group_name == group.name, FeatureVersion.tagged)
            )
            lines.append(f"  {group.noun} {group.name}: {count or 0} version(s)")
        for model in project.models:
            versions = session.scalar(
                select(func.count())
                .select_from(ModelVersion)
                .where(ModelVersion.name == model.name)
            )
            champion = aliases.current(session, model.name, aliases.CHAMPION)
            rows = session.scalar(
                select(func.count())
                .select_from(Prediction)
                .where(Prediction.model_name == model.name, Prediction.as_of_date == day)
            )
            if champion is None:
                lines.append(f"  model {model.name}: {versions} version(s), no champion")
                continue
            row = get_version(session, model.name, champion)
            metric = row.metrics.get(model.metric)
            lines.append(
                f"  model {model.name} ({model.task}): {versions} version(s); champion v{champion} "
                f"(holdout {model.metric} {metric if metric is None else round(metric, 3)}, "
                f"label {row.label_group} v{row.label_version}, features "
                + ", ".join(f"{g} v{v}" for g, v in row.feature_versions.items())
                + f"); predictions for {day}: {rows} rows"
            )
            for window in realized_windows(session, model.name, window_days, labels):
                figure = (
                    f"{window.value:.3f}" if window.value is not None else f"none: {window.reason}"
                )
                lines.append(
                    f"    realized {window.metric} of v{window.model_version} once labels "
                    f"landed: {figure} over the {window.rows} rows of {window.dates} scored "
                    f"date(s) {window.first_date}..{window.last_date} "
                    f"(`fti monitor realized --model {model.name}`)"
                )
    first = project.models[0]
    lines += [
        "",
        "Is everything fresh? `fti monitor health` (exit 1 when not); the same page in "
        "Airflow: `fti airflow` (in this folder), then Browse -> fti health.",
        "",
        f"See the top {first.name} scores:",
        '  fti sql "'
        + PREDICTIONS_QUERY.format(model=first.name, day=day, column=SCORE_COLUMN[first.task])
        + '"',
    ]
    return "\n".join(lines)
