"""Deadlines of the nightly chain and failure alerts, through Airflow's own machinery, to a
local HTTP receiver.

A deadline (params.yaml ``deadlines``) is an Airflow deadline alert on the DAG. Three parts of
Airflow handle it, and dag.test() runs none of them as the scheduler does: (1) creating the
run's Deadline row (``create_dagrun``) and pruning it when the run succeeds in time
(``DagRun.update_state``): dag.test() would, but in Airflow 3.3.2 it then crashes at the end of
every successful run (apache/airflow#73428), so fti runs dag.test() without the alerts
(``without_deadline_alerts``) and the test calls those two functions itself on the DAG the
scheduler reads; (2) the scheduler loop's query for passed, unhandled deadlines and
``Deadline.handle_miss``; (3) the executor's ``ExecuteCallback`` workload, run by Airflow's
``supervise_callback`` in a subprocess with the in-process Execution API client that dag.test()
itself uses. The test only calls them in that order; every decision is Airflow's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml
from sqlalchemy import select

from tests.conftest import DEMO_END, DEMO_START, MANIFEST, PARAMS, REPO, demo_settings
from tests.webhook_receiver import Receiver

DAGS = REPO / "dags"
MANIFEST_PROJECT = json.loads(MANIFEST.read_text())["project"]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def closed_port_url() -> str:
    """A local URL nobody listens on (the port was free a moment ago)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def with_deadlines(tmp_path: Path, monkeypatch, **deadlines: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    """params.yaml with these ``deadlines`` sections, for the next parse of the DAG folder."""
    params = yaml.safe_load(PARAMS.read_text())
    params["deadlines"] = deadlines
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(path))


def feature_dag(tmp_path: Path, monkeypatch, raw: Path, webhook: str):  # type: ignore[no-untyped-def]
    """The feature DAG parsed now (deadlines from the params file set before), on a tmp home."""
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    db.initdb()
    settings = demo_settings(tmp_path / "home", raw)
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    monkeypatch.setenv("FTI_RAW_PATH", str(raw))
    monkeypatch.setenv("FTI_ALERT_WEBHOOK_URL", webhook)
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    assert bag.import_errors == {}
    dag = bag.dags["churn_feature_pipeline"]
    for task in dag.tasks:  # a failure fails the run now, not after retry delays
        task.retries = 0
    return dag


def test_run(dag, day: date, mark_success_pattern: str | None = None, **conf: Any):  # type: ignore[no-untyped-def]
    """dag.test() of ``dag`` for ``day``, then what the scheduler's create_dagrun and the
    run's update_state do with its deadline alerts (part 1 of the module's docstring)."""
    from airflow.models import DagRun, Deadline
    from airflow.serialization.serialized_objects import DagSerialization
    from airflow.utils.session import create_session
    from fti_common import without_deadline_alerts

    alerts = dag.deadline
    dag_run = without_deadline_alerts(dag).test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
        run_conf={**dag.params.dump(), **conf},
        mark_success_pattern=mark_success_pattern,
    )
    dag.deadline = alerts  # the DAG as its file declares it
    with create_session() as session:
        run = session.get(DagRun, dag_run.id)
        # What the scheduler holds: the parsed DAG, serialized with its alerts (dag.test() stored
        # the copy without them, and other tests' runs may have too).
        scheduler_dag = DagSerialization.from_dict(DagSerialization.to_dict(dag))
        if scheduler_dag.deadline:  # the alerts the scheduler reads (none declared: none)
            scheduler_dag._process_dagrun_deadline_alerts(run, session)  # create_dagrun's step
            session.flush()
        if run.state == "success":  # update_state's step for a run that succeeded
            Deadline.prune_deadlines(session=session, conditions={DagRun.id: run.id})
    return dag_run


test_run.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def scheduler_and_executor_round(dag_run) -> list[int]:  # type: ignore[no-untyped-def]
    """One round of what the scheduler and the executor do with this run's deadlines; the exit
    codes of the callbacks run."""
    from airflow._shared.timezones import timezone
    from airflow.executors import workloads
    from airflow.models import DagRun, Deadline
    from airflow.models.callback import ExecutorCallback
    from airflow.sdk.execution_time.callback_supervisor import supervise_callback
    from airflow.sdk.execution_time.supervisor import InProcessTestSupervisor
    from airflow.utils.session import create_session
    from airflow.utils.state import CallbackState

    with create_session() as session:
        # The scheduler's query (its loop, every round), kept to this run: other tests'
        # runs may have left deadlines of their own.
        passed = (
            select(Deadline)
            .where(Deadline.deadline_time < datetime.now(UTC))
            .where(~Deadline.missed)
            .where(Deadline.dagrun_id == dag_run.id)
        )
        for deadline in session.scalars(passed):
            deadline.handle_miss(session)
        session.flush()
        pending = [
            callback
            for callback in session.scalars(
                select(ExecutorCallback).where(ExecutorCallback.state == CallbackState.PENDING)
            )
            if callback.data.get("dag_run_id") == str(dag_run.id)
        ]
        codes = []
        for callback in pending:
            run = session.get(DagRun, dag_run.id)
            workload = workloads.ExecuteCallback.make(callback=callback, dag_run=run)
            codes.append(
                supervise_callback(
                    id=str(workload.callback.id),
                    callback_path=workload.callback.data["path"],
                    callback_kwargs=workload.callback.data["kwargs"],
                    dag_rel_path=workload.dag_rel_path,
                    bundle_info=workload.bundle_info,
                    client=InProcessTestSupervisor._api_client(),
                )
            )
            callback.state = CallbackState.SUCCESS
        assert timezone.utcnow()  # the same clock as the scheduler's
    return codes


def deadlines_of(dag_run) -> list[Any]:  # type: ignore[no-untyped-def]
    from airflow.models import Deadline
    from airflow.utils.session import create_session

    with create_session() as session:
        return list(session.scalars(select(Deadline).where(Deadline.dagrun_id == dag_run.id)))


def test_the_deadlines_come_from_params_yaml(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.sdk import DeadlineReference

    with_deadlines(
        tmp_path,
        monkeypatch,
        features={"by": "03:00"},
        inference={"by": "06:30", "within_hours": 4},
    )
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)  # puts the DAG folder on sys.path
    assert bag.import_errors == {}
    from fti_common import WebhookNotifier

    (features,) = bag.dags["churn_feature_pipeline"].deadline
    assert features.reference == DeadlineReference.DAGRUN_LOGICAL_DATE
    assert features.interval == timedelta(days=1, hours=3)
    assert features.callback.path == f"fti_common.{WebhookNotifier.__qualname__}"
    assert features.callback.kwargs["event"] == "deadline_missed"
    for model in ("churn", "spend"):
        by, within = bag.dags[f"{model}_inference"].deadline
        assert (by.interval, within.interval) == (
            timedelta(days=1, hours=6, minutes=30),
            timedelta(hours=4),
        )
        assert within.reference == DeadlineReference.DAGRUN_QUEUED_AT
        assert not bag.dags[f"{model}_training"].deadline  # none declared: none set

    with_deadlines(tmp_path, monkeypatch, features={"by": 180})  # YAML's reading of 03:00
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    (error,) = bag.import_errors.values()
    assert (
        'params.yaml deadlines.features.by: 180 is not a quoted UTC time of day such as "03:00"'
        in error
    )


def test_a_run_past_its_deadline_posts_one_alert(
    tmp_path: Path, monkeypatch, demo_raw: Path, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    """The feature run for a day of the demo history succeeds, long after 03:00 the next day."""
    with_deadlines(tmp_path, monkeypatch, features={"by": "03:00"})
    dag = feature_dag(tmp_path, monkeypatch, demo_raw, receiver.url)
    dag_run = test_run(dag, DEMO_START, dry_run=True)
    assert dag_run.state == "success"
    (deadline,) = deadlines_of(dag_run)  # not pruned: the run ended after it
    assert deadline.deadline_time == datetime(2026, 1, 2, 3, 0, tzinfo=UTC)
    assert not deadline.missed and receiver.received() == []  # dag.test() alone never fires it

    assert scheduler_and_executor_round(dag_run) == [0]
    alert = receiver.next()
    assert alert == {
        "event": "deadline_missed",
        "project": MANIFEST_PROJECT,
        "dag_id": "churn_feature_pipeline",
        "run_id": dag_run.run_id,
        "logical_date": "2026-01-01T00:00:00+00:00",
        "what": f"churn_feature_pipeline run {dag_run.run_id}",
        "reason": f"churn_feature_pipeline run {dag_run.run_id} had not finished by its deadline "
        "2026-01-02T03:00:00+00:00 (succeeded by 03:00 UTC the day after its logical date); "
        "it was success",
        "link": f"http://localhost:8080/dags/churn_feature_pipeline/runs/{dag_run.run_id.replace(':', '%3A').replace('+', '%2B')}",
        "deadline": "2026-01-02T03:00:00+00:00",
        "state": "success",
    }
    # Handled once: the next round finds nothing to do.
    assert scheduler_and_executor_round(dag_run) == []
    assert receiver.received() == []
    assert [d.missed for d in deadlines_of(dag_run)] == [True]


def test_a_run_within_its_deadline_posts_nothing(
    tmp_path: Path, monkeypatch, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    """Today's run, due by 03:00 tomorrow: it succeeds in time, its deadline is pruned. (Its
    label groups' tasks are marked done: their labels need the events of 30 days back.)"""
    from churn_demo.generate import generate

    today = datetime.now(UTC).date()
    raw = tmp_path / "raw"
    generate(raw, today, today, customers=50, seed=5)
    with_deadlines(tmp_path, monkeypatch, features={"by": "03:00"})
    dag = feature_dag(tmp_path, monkeypatch, raw, receiver.url)
    labels = "|".join(
        f"(build|publish)__{g['name']}" for g in json.loads(MANIFEST.read_text())["labels"]
    )
    dag_run = test_run(dag, today, mark_success_pattern=labels, dry_run=True)
    assert dag_run.state == "success"
    assert deadlines_of(dag_run) == []  # Airflow pruned it: the run succeeded before it
    assert scheduler_and_executor_round(dag_run) == []
    assert receiver.received() == []


def test_a_failed_task_posts_its_one_line_reason(
    tmp_path: Path, monkeypatch, demo_raw: Path, receiver: Receiver
) -> None:  # type: ignore[no-untyped-def]
    """A day without raw files fails validate_raw_events: one alert, with the task's reason;
    the tasks that did not run (upstream failed) send none."""
    with_deadlines(tmp_path, monkeypatch)  # no deadlines: only the failure alert
    dag = feature_dag(tmp_path, monkeypatch, demo_raw, receiver.url)
    missing = DEMO_END + timedelta(days=5)
    dag_run = test_run(dag, missing)
    assert dag_run.state == "failed"
    alert = receiver.next()
    assert receiver.received() == []
    assert {k: alert[k] for k in ("event", "dag_id", "run_id", "task_id", "try_number")} == {
        "event": "task_failed",
        "dag_id": "churn_feature_pipeline",
        "run_id": dag_run.run_id,
        "task_id": "validate_raw_events",
        "try_number": 1,
    }
    assert alert["what"] == "task validate_raw_events of churn_feature_pipeline"
    assert alert["logical_date"].startswith(missing.isoformat())
    assert missing.isoformat() in alert["reason"] and "\n" not in alert["reason"]
    assert alert["link"].startswith("http://localhost:8080/dags/churn_feature_pipeline/runs/")


def test_an_unreachable_receiver_is_logged_and_fails_nothing(
    tmp_path: Path, monkeypatch, demo_raw: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.execution_time.callback_supervisor import execute_callback

    url = closed_port_url()
    with_deadlines(tmp_path, monkeypatch)
    dag = feature_dag(tmp_path, monkeypatch, demo_raw, url)
    # The task fails for its own reason; the lost alert changes nothing in the run.
    dag_run = test_run(dag, DEMO_END + timedelta(days=5))
    assert dag_run.state == "failed"
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert states["validate_raw_events"] == "failed"

    # A deadline callback as the executor's callback subprocess runs it: still a success.
    caplog.clear()
    context = {
        "dag_run": {
            "dag_id": "churn_feature_pipeline",
            "dag_run_id": "scheduled__2026-01-01T00:00:00+00:00",
            "logical_date": "2026-01-01T00:00:00Z",
            "state": "running",
        },
        "deadline": {"id": "x", "deadline_time": "2026-01-02T03:00:00Z"},
    }
    ok, error = execute_callback(
        "fti_common.WebhookNotifier",
        {"event": "deadline_missed", "expected": "by 03:00", "context": context},
        dag_rel_path=Path("feature_pipeline.py"),
        bundle_path=DAGS,
        log=__import__("structlog").get_logger(),
    )
    assert (ok, error) == (True, None)
    assert "could not send the deadline_missed alert for churn_feature_pipeline run" in caplog.text
    assert url.rsplit("/", 1)[0] in caplog.text and "/hook" not in caplog.text
