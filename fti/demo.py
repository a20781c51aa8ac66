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
from fti.errors import FtiError
from fti.project import load_project
from fti.registry import aliases
from fti.registry.versions import get_version
from fti.settings import Settings
from fti.setup import initialise

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"
PLUGINS = REPO / "plugins"

PREDICTIONS_QUERY = (
    "SELECT entity_id, probability, model_version, feature_version, run_id "
    "FROM predictions WHERE model_name = '{model}' AND as_of_date = '{day}' "
    "ORDER BY probability DESC LIMIT 10;"
)


def airflow_variables(settings: Settings) -> dict[str, str]:
    """What Airflow processes need on the embedded default (SQLite in FTI_HOME/airflow)."""
    return dict(
        FTI_HOME=str(settings.home),
        FTI_DB_URL=settings.db_url,
        FTI_PARAMS_FILE=str(settings.params_file.resolve()),
        AIRFLOW_HOME=str(settings.airflow_home),
        AIRFLOW__CORE__DAGS_FOLDER=str(DAGS),
        AIRFLOW__CORE__PLUGINS_FOLDER=str(PLUGINS),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
    )


def airflow_environment(settings: Settings) -> dict[str, str]:
    return {**os.environ, **airflow_variables(settings)}


def demo_plan(end: date, history_days: int, nightly_days: int) -> dict[str, Any]:
    """One range run for the history, then one feature/training/inference cycle per night."""
    history_end = end - timedelta(days=nightly_days)
    history_start = history_end - timedelta(days=history_days - 1)
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
    history_days: int,
    customers: int,
    end: date,
    drift_after: date | None,
) -> None:
    from churn_demo.generate import generate

    if nightly_days < 1 or history_days < 60:
        raise FtiError(
            "the demo needs --days >= 1 and --history-days >= 60 (labels mature after 30 days)"
        )
    if not (DAGS / "demo_runner.py").exists():
        raise FtiError(
            f"fti demo runs the DAGs in {DAGS}, which is not there: run it from a clone of the "
            "fti repository installed with `pip install -e .` (make demo does)"
        )
    plan = demo_plan(end, history_days, nightly_days)
    clock = time.perf_counter()
    initialise(settings)
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
    """What the run left behind, named by the project's own feature group, model and metric."""
    project = load_project(settings.project)
    model, metric_name = project.model.name, project.model.metric
    with session_scope(settings.db_url) as session:
        versions = session.scalar(select(func.count()).select_from(FeatureVersion)) or 0
        latest = session.scalar(select(func.max(FeatureVersion.version)))
        models = session.scalar(select(func.count()).select_from(ModelVersion)) or 0
        champion = aliases.current(session, model, aliases.CHAMPION)
        metric = None
        if champion is not None:
            metric = get_version(session, model, champion).metrics.get(metric_name)
        rows = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.as_of_date == day)
        )
    return "\n".join(
        [
            "",
            f"fti demo finished in {seconds:.0f}s",
            f"  feature versions published: {versions} "
            f"(latest: {project.feature_group.name} v{latest})",
            f"  model versions: {models}; champion: {model} v{champion} "
            f"(holdout {metric_name} {metric:.3f})"
            if metric is not None
            else f"  model versions: {models}; no champion",
            f"  predictions for {day}: {rows} rows",
            "",
            "See the riskiest customers:",
            f'  fti sql "{PREDICTIONS_QUERY.format(model=model, day=day)}"',
        ]
    )
