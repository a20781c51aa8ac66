"""`fti demo`: generate the churn demo's raw data and run the nightly DAGs through Airflow."""

from __future__ import annotations

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
from fti.definitions import load_project
from fti.errors import FtiError
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


def airflow_variables(settings: Settings, port: int | None = None) -> dict[str, str]:
    """What Airflow processes need on the embedded default (SQLite in FTI_HOME/airflow).

    With ``port``, the API server listens there and the task supervisor calls the execution
    API there too (it derives that URL from the base URL; left alone it calls port 8080).
    """
    served = (
        {"AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://localhost:{port}"}
        if port
        else {}
    )
    return served | dict(
        FTI_HOME=str(settings.home),
        FTI_PROJECT=settings.project,
        FTI_MANIFEST_PATH=str(settings.manifest_path),
        FTI_DB_URL=settings.db_url,
        FTI_PARAMS_FILE=str(settings.params_file.resolve()),
        AIRFLOW_HOME=str(settings.airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )


def airflow_environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, **airflow_variables(settings)}


def demo_plan(start: date, end: date, nightly_days: int) -> dict[str, Any]:
    """One range run for the history from ``start`` (the project's start date), then one
    feature/training/inference cycle per night up to ``end``."""
    history_end = end - timedelta(days=nightly_days)
    history_start = start
    steps = [
        {
            "date": f"{history_end.isoformat()}T00:00:00+00:00",
            "feature_conf": {
                "start_date": history_start.isoformat(),
                "end_date": history_end.isoformat(),
            },
        }
    ]
    for offset in range(1, nightly_days + 1):
        day = history_end + timedelta(days=offset)
        steps.append({"date": f"{day.isoformat()}T00:00:00+00:00"})
    return {"first_day": history_start.isoformat(), "last_day": end.isoformat(), "steps": steps}


def run_demo(
    settings: Settings,
    nightly_days: int,
    customers: int,
    end: date,
    drift_after: date | None,
) -> None:
    from churn_demo.generate import generate

    project = load_project(settings.project)
    if nightly_days < 1 or (end - project.first_date).days - nightly_days < 90:
        raise FtiError(
            f"the demo needs --days >= 1 and at least 90 days of history from the project's "
            f"start date {project.first_date} before the nights (labels mature after 30 days): "
            "move --end later"
        )
    if not (DAGS / "demo_runner.py").exists():
        raise FtiError(
            f"fti demo runs the DAGs in {DAGS}, which is not there: run it from a clone of the "
            "fti repository installed with `pip install -e .` (make demo does)"
        )
    plan = demo_plan(project.first_date, end, nightly_days)
    clock = time.perf_counter()
    initialise(settings)
    write_manifest(project, settings.project, settings.manifest_path)
    first = date.fromisoformat(plan["first_day"])
    print(f"generating raw events for {customers} customers, {first} .. {end}", flush=True)
    generate(settings.raw_path, first, end, customers=customers, drift_after=drift_after)
    print(f"running the DAGs through Airflow (AIRFLOW_HOME={settings.airflow_home})", flush=True)
    env = airflow_environment(settings)
    # Airflow 3's deprecation notices and dag.test()'s once-a-second idle notices drown the
    # demo's own output; task errors are still logged.
    env.setdefault("PYTHONWARNINGS", "ignore")
    env.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "ERROR")
    done = subprocess.run(
        [sys.executable, str(DAGS / "demo_runner.py"), json.dumps(plan)],
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise FtiError(f"a DAG run failed (exit {done.returncode}); see the Airflow log above")
    print(summary(settings, end, time.perf_counter() - clock))


def summary(settings: Settings, day: date, seconds: float) -> str:
    """What the run left behind, per group and per model, named by the project's own names."""
    project = load_project(settings.project)
    lines = ["", f"fti demo finished in {seconds:.0f}s"]
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
