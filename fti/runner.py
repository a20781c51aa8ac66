"""`fti run`: a project's nightly DAGs through Airflow over a range of dates.

The history up to ``end - nights`` is loaded by one range run of the feature DAG; then each of
the last ``nights`` days gets its feature, training and inference runs, as the scheduler would
start them. The DAGs run with ``dag.test()`` in one process (``dags/range_runner.py``) against
Airflow's metadata in ``FTI_HOME/airflow``: real parsing, task instances, XComs and asset
events. Any project works: the DAG files are generated from its manifest, and the Airflow
processes import the project from the folder it was found in.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion, ModelVersion, Prediction
from fti.definitions import Project, load_project
from fti.errors import ConfigError, FtiError
from fti.manifest import write_manifest
from fti.registry import aliases
from fti.registry.versions import get_version
from fti.settings import Settings
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


def project_folder(reference: str) -> Path | None:
    """The folder to put on PYTHONPATH so ``reference`` (``package.module:attribute``) imports:
    the parent of its top-level package, or None for a module that is not a file."""
    module = reference.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module.split(".", 1)[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    package = origin.parent if origin.name == "__init__.py" else origin
    return package.parent.resolve()


def airflow_variables(settings: Settings, port: int | None = None) -> dict[str, str]:
    """What Airflow processes need to run this project's DAGs on the embedded default (SQLite
    in FTI_HOME/airflow): fti's settings as absolute paths, and the project's folder on
    PYTHONPATH so every task imports the same definitions the CLI loaded.

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
    paths += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in paths]
    return (
        served
        | dict(
            FTI_HOME=str(settings.home),
            FTI_PROJECT=settings.project,
            FTI_MANIFEST_PATH=str(settings.manifest_path.resolve()),
            FTI_DB_URL=settings.db_url,
            FTI_RAW_PATH=str(settings.raw_path.resolve()),
            FTI_PARAMS_FILE=str(settings.params_file.resolve()),
            AIRFLOW_HOME=str(settings.airflow_home),
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
        )
        | ({"PYTHONPATH": os.pathsep.join(paths)} if paths else {})
    )


def plan(start: date, end: date, nights: int) -> dict[str, Any]:
    """One range run for the history [start, end - nights], then one feature/training/inference
    cycle per night up to ``end``."""
    history_end = end - timedelta(days=nights)
    steps: list[dict[str, Any]] = [
        {
            "date": f"{history_end.isoformat()}T00:00:00+00:00",
            "feature_conf": {"start_date": start.isoformat(), "end_date": history_end.isoformat()},
        }
    ]
    for offset in range(1, nights + 1):
        day = history_end + timedelta(days=offset)
        steps.append({"date": f"{day.isoformat()}T00:00:00+00:00"})
    return {"first_day": start.isoformat(), "last_day": end.isoformat(), "steps": steps}


def check_range(project: Project, start: date, end: date, nights: int) -> None:
    """Refuse a range the DAGs would refuse, before Airflow starts."""
    from fti.pipelines import check_dates

    check_dates(project, start, end)
    if nights < 0 or end - timedelta(days=nights) < start:
        raise ConfigError(
            f"--nights {nights} does not fit in {start}..{end}: the history needs at least its "
            "first day before the nights"
        )


def run_nights(settings: Settings, start: date, end: date, nights: int) -> dict[str, Any]:
    """Run the project's DAGs through Airflow for [start, end]; return what they left.

    Raises:
        ConfigError: the range does not fit the project.
        FtiError: a DAG run failed (its log is above).
    """
    project = load_project(settings.project)
    check_range(project, start, end, nights)
    if not (DAGS / "range_runner.py").exists():
        raise FtiError(
            f"fti run runs the DAGs in {DAGS}, which is not there: install fti from its "
            "repository with `pip install -e .` (make demo does)"
        )
    clock = time.perf_counter()
    initialise(settings)
    write_manifest(project, settings.project, settings.manifest_path)
    print(f"running the DAGs through Airflow (AIRFLOW_HOME={settings.airflow_home})", flush=True)
    env = {**os.environ, **airflow_variables(settings)}
    # Airflow 3's deprecation notices and dag.test()'s once-a-second idle notices drown the
    # run's own output; task errors are still logged.
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    done = subprocess.run(
        [sys.executable, str(DAGS / "range_runner.py"), json.dumps(plan(start, end, nights))],
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise FtiError(f"a DAG run failed (exit {done.returncode}); see the Airflow log above")
    return {"seconds": time.perf_counter() - clock, "last_day": end}


def summary(settings: Settings, day: date, seconds: float, what: str = "fti run") -> str:
    """What the run left behind, per group and per model, named by the project's own names."""
    project = load_project(settings.project)
    lines = ["", f"{what} finished in {seconds:.0f}s"]
    with session_scope(settings.db_url) as session:
        for group in project.groups:
            count = session.scalar(
                select(func.count())
                .select_from(FeatureVersion)
                .where(FeatureVersion.group_name == group.name)
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
    first = project.models[0]
    lines += [
        "",
        f"See the top {first.name} scores:",
        '  fti sql "'
        + PREDICTIONS_QUERY.format(model=first.name, day=day, column=SCORE_COLUMN[first.task])
        + '"',
    ]
    return "\n".join(lines)
