"""Run the fti DAGs through real Airflow, in one process, for `fti run` (and `fti demo`).

Usage: python dags/range_runner.py '<json plan>'   (fti.runner builds the plan and the environment)

Each DAG run goes through ``dag.test()`` against Airflow's SQLite metadata database in
AIRFLOW_HOME: real DAG parsing, serialization, task instances, XComs and asset events. What the
scheduler would do between runs (start the training DAG when a feature version lands) is done
here by reading the asset event Airflow recorded and passing its version to the run.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

DAGS = Path(__file__).resolve().parent


def main(plan: dict) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*httpx.*")
    import pendulum
    from airflow import settings
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils import db
    from sqlalchemy import select

    db.initdb()
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    if bag.import_errors:
        print(f"DAG import errors: {bag.import_errors}", file=sys.stderr)
        return 1

    # Fail fast: a run from a terminal should not sit out retry delays.
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0
    # dag.test() merges run_conf into the DAG's params in place: start every run from defaults.
    defaults = {dag_id: dag.params.dump() for dag_id, dag in bag.dags.items()}

    def run(dag_id: str, logical_date: str, conf: dict) -> object:
        clock = time.perf_counter()
        from fti_common import without_deadline_alerts  # apache/airflow#73428

        dag_run = without_deadline_alerts(bag.dags[dag_id]).test(
            logical_date=pendulum.parse(logical_date), run_conf={**defaults[dag_id], **conf}
        )
        seconds = time.perf_counter() - clock
        print(f"  {dag_id:<26} {logical_date[:10]}  {dag_run.state}  {seconds:5.1f}s", flush=True)
        if dag_run.state != "success":
            failed = {
                ti.task_id: ti.state
                for ti in dag_run.get_task_instances()
                if ti.state not in ("success", "skipped")
            }
            if set(failed) == {"check_drift"}:  # predictions written; the run is flagged
                print(f"  {'':<26} drift over the threshold: see `fti monitor report`", flush=True)
                return dag_run
            raise SystemExit(
                f"{dag_id} run {dag_run.run_id} failed: task states {failed}; see the log above"
            )
        return dag_run

    def landed_versions(dag_run) -> dict[str, int]:  # the asset events the feature run emitted
        with settings.Session() as session:
            events = session.scalars(
                select(AssetEvent)
                .where(AssetEvent.source_run_id == dag_run.run_id)
                .order_by(AssetEvent.id)
            ).all()
        return {event.extra["group"]: int(event.extra["version"]) for event in events}

    from fti_common import MANIFEST

    for step in plan["steps"]:
        day = step["date"]
        features = run("feature_pipeline", day, step.get("feature_conf", {}))
        landed = landed_versions(features)
        for model in MANIFEST["models"]:
            for past in step.get("past_dates", []):  # with the champion trained before them
                run(f"{model['name']}_inference", f"{past}T00:00:00+00:00", {"as_of_date": past})
            reads = [*model["groups"], model["label"]]
            if not all(group in landed for group in reads):  # the scheduler would wait too
                print(
                    f"  {model['name']}: not every group it reads landed; no training", flush=True
                )
            else:
                conf = {f"{group}_version": str(landed[group]) for group in reads}
                run(f"{model['name']}_training", day, conf)
            run(f"{model['name']}_inference", day, {"as_of_date": step.get("score_date", day)[:10]})
    return 0


if __name__ == "__main__":
    code = main(json.loads(sys.argv[1]))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip a slow interpreter teardown of Airflow's in-process API server
