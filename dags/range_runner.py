"""Run the fti DAGs through real Airflow, in one process, for `fti run` (and `fti demo`).

Usage: python dags/range_runner.py '<json plan>'   (fti.runner builds the plan and the environment)

The plan names its project (``project``): the DAG folder may hold several projects' DAGs (one
manifest each); only that project's DAGs run.

Each DAG run goes through ``dag.test()`` against Airflow's SQLite metadata database in
AIRFLOW_HOME: real DAG parsing, serialization, task instances, XComs and asset events. What the
scheduler would do between runs (start the training DAG when a feature version lands) is done
here by reading the asset event Airflow recorded and passing its version to the run.

Standard output carries one JSON object a line, nothing else: a DAG run's outcome (``dag``,
``date``, ``phase``, ``state``: success, flagged (drift only), failed or skipped, ``seconds``,
``reason``: fti's one-line message when not a success) or why the runner stopped (``stop``).
Airflow's own output (task logs, tracebacks) goes to standard error, which fti.runner writes
to the log file its summary names.
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from datetime import date
from pathlib import Path
from typing import IO, Any

DAGS = Path(__file__).resolve().parent


class RunFailed(Exception):
    """A DAG run failed (its outcome is reported): no later run would find what it needs."""


def reporter() -> IO[str]:
    """The stream the outcomes go to (the standard output this process was given); from now on
    anything else printed to standard output goes to standard error, Airflow's log."""
    stream = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    return stream


def reason_of(exception: BaseException | None) -> str | None:
    """A failed task's reason in one line: fti's own message (an FtiError, or the
    AirflowFailException of a task failed on purpose), else the exception's type and text."""
    if exception is None:
        return None
    from airflow.sdk.exceptions import AirflowFailException

    from fti.errors import FtiError

    text = str(exception).strip()
    if not isinstance(exception, FtiError | AirflowFailException):
        text = f"{type(exception).__name__}: {text}"
    return text.splitlines()[0] if text else type(exception).__name__


def main(plan: dict, out: IO[str]) -> int:
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", message=".*httpx.*")

    def report(**outcome: Any) -> None:
        out.write(json.dumps(outcome) + "\n")

    import pendulum
    from airflow import settings
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.models.asset import AssetEvent
    from airflow.utils import db
    from sqlalchemy import select

    db.initdb()
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    if bag.import_errors:
        errors = "; ".join(
            f"{Path(f).name}: {e.strip().splitlines()[-1]}" for f, e in bag.import_errors.items()
        )
        report(stop=f"the DAG files do not import: {errors}")
        return 1

    reasons: dict[str, str] = {}  # task id -> why it failed, in the run going on

    def remember(context: dict[str, Any]) -> None:
        reason = reason_of(context.get("exception"))
        if reason:
            reasons.setdefault(context["task_instance"].task_id, reason)

    # Fail fast: a run from a terminal should not sit out retry delays. Each failed task's
    # reason is kept for its run's outcome.
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0
            callbacks = task.on_failure_callback
            task.on_failure_callback = [
                *(callbacks if isinstance(callbacks, list) else [callbacks] if callbacks else []),
                remember,
            ]
    # dag.test() merges run_conf into the DAG's params in place: start every run from defaults.
    defaults = {dag_id: dag.params.dump() for dag_id, dag in bag.dags.items()}

    def run(dag_id: str, logical_date: str, conf: dict, phase: str) -> Any:
        from fti_common import without_deadline_alerts  # apache/airflow#73428

        clock = time.perf_counter()
        reasons.clear()
        dag_run = without_deadline_alerts(bag.dags[dag_id]).test(
            logical_date=pendulum.parse(logical_date), run_conf={**defaults[dag_id], **conf}
        )
        failed = {
            ti.task_id: ti.state
            for ti in dag_run.get_task_instances()
            if ti.state not in ("success", "skipped")
        }
        state = "success" if dag_run.state == "success" else "failed"
        if state == "failed" and set(failed) == {"check_drift"}:  # predictions written: a flag
            state = "flagged"
        why = "; ".join(dict.fromkeys(reasons[t] for t in failed if t in reasons))
        report(
            dag=dag_id,
            date=logical_date[:10],
            phase=phase,
            state=state,
            seconds=round(time.perf_counter() - clock, 1),
            reason=(why or f"task states {failed}") if state != "success" else None,
        )
        if state == "failed":
            raise RunFailed(dag_id)
        return dag_run

    def landed_versions(dag_run: Any) -> dict[str, int]:  # the feature run's asset events
        with settings.Session() as session:
            events = session.scalars(
                select(AssetEvent)
                .where(AssetEvent.source_run_id == dag_run.run_id)
                .order_by(AssetEvent.id)
            ).all()
        return {event.extra["group"]: int(event.extra["version"]) for event in events}

    from fti_common import MANIFESTS, dag_id

    from fti.manifest import builds_groups

    manifest = next((m for m in MANIFESTS if m["project"] == plan["project"]), None)
    if manifest is None:
        report(stop=f"no manifest of project {plan['project']!r} among the DAG folder's")
        return 1

    def run_step(step: dict[str, Any]) -> None:
        """A feature run; then, per model, the backtest's past dates, the training its new
        versions start and the scoring of the step's date."""
        day, phase = step["date"], step["phase"]
        features = dag_id(manifest, "feature_pipeline")
        landed = (  # a project that builds no group has no feature pipeline: nothing lands
            landed_versions(run(features, day, step.get("feature_conf", {}), phase))
            if builds_groups(manifest)
            else {}
        )
        for model in manifest["models"]:
            for past in step.get("past_dates", []):  # with the champion trained before them
                score(model["name"], past, "backtest")
            reads = [*model["groups"], model["label"]]
            if all(group in landed for group in reads):
                conf = {f"{group}_version": str(landed[group]) for group in reads}
                run(f"{model['name']}_training", day, conf, phase)
            else:  # the scheduler would wait too
                report(
                    dag=f"{model['name']}_training",
                    date=day[:10],
                    phase=phase,
                    state="skipped",
                    seconds=0.0,
                    reason="not every group it reads landed a version",
                )
            score(model["name"], day[:10], phase)

    def score(model: str, day: str, phase: str) -> None:
        """The model's inference run for ``day``, unless what it needs is missing: its sensor
        would wait hours for it, and nothing later in this plan brings it."""
        from fti.pipelines.inference import scoring_waits_for

        waits = scoring_waits_for(model, date.fromisoformat(day))
        if not waits:
            run(f"{model}_inference", f"{day}T00:00:00+00:00", {"as_of_date": day}, phase)
            return
        report(
            dag=f"{model}_inference",
            date=day,
            phase=phase,
            state="failed",
            seconds=0.0,
            reason=f"{'; '.join(waits)}: its sensor would wait for it, and nothing in this run "
            f"brings it (train one first: `fti train --model {model}`)",
        )
        raise RunFailed(model)

    try:
        for step in plan["steps"]:
            run_step(step)
    except RunFailed:
        return 1
    return 0


if __name__ == "__main__":
    outcomes = reporter()
    code = main(json.loads(sys.argv[1]), outcomes)
    outcomes.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # skip a slow interpreter teardown of Airflow's in-process API server
