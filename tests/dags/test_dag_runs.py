"""Each DAG runs for real with dag.test() on tmp settings (SQLite metadata, real DVC store)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pendulum
import pytest
from sqlalchemy import func, select

from tests.conftest import DEMO_DAYS, DEMO_END, PARAMS, REPO, demo_settings


@pytest.fixture(scope="module")
def dags():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    db.initdb()
    bag = BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")
    for dag in bag.dags.values():  # a failing task should fail the test now, not after retry delays
        for task in dag.tasks:
            task.retries = 0
    return bag.dags


def run(dag, day, **conf):  # type: ignore[no-untyped-def]
    defaults = dag.params.dump()  # dag.test() merges conf into the DAG's params in place
    dag_run = dag.test(
        logical_date=pendulum.datetime(day.year, day.month, day.day, tz="UTC"),
        run_conf={**defaults, **conf},
    )
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == "success", states
    return dag_run


def with_history(dags, tmp_path: Path, demo_raw: Path, monkeypatch, history_end):  # type: ignore[no-untyped-def]
    """A tmp FTI home whose feature version 1 holds the demo history up to ``history_end``,
    loaded by one range run of the feature DAG; the DAG tasks read it from the environment."""
    settings = demo_settings(tmp_path / "home", demo_raw)
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    monkeypatch.setenv("FTI_RAW_PATH", str(demo_raw))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(PARAMS))
    first = DEMO_END - timedelta(days=DEMO_DAYS - 1)
    run(
        dags["feature_pipeline"],
        history_end,
        start_date=first.isoformat(),
        end_date=history_end.isoformat(),
    )
    return settings


def test_feature_training_and_inference_dags_end_to_end(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    history_end = DEMO_END - timedelta(days=1)
    settings = with_history(dags, tmp_path, demo_raw, monkeypatch, history_end)
    run(dags["training_pipeline"], history_end, feature_version="latest")
    run(
        dags["training_pipeline"],
        history_end,
        feature_version="1",
        max_iter=20,
    )
    run(dags["feature_pipeline"], DEMO_END)  # the nightly run: its logical date only
    scored = run(dags["batch_inference_pipeline"], DEMO_END, model="1")

    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from fti.db.engine import session_scope
    from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun

    with create_session() as session:
        extras = [e.extra for e in session.scalars(select(AssetEvent).order_by(AssetEvent.id))]
    assert {"feature_version": 2} in extras and any("model_version" in e for e in extras)
    with session_scope(settings.db_url) as session:
        assert [v.version for v in session.scalars(select(FeatureVersion))] == [1, 2]
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 2
        run_row = session.scalar(select(PredictionRun))
        assert run_row.run_id == f"batch_inference_pipeline/{scored.run_id}"
        assert (run_row.status, run_row.model_version, run_row.feature_version) == (
            "succeeded",
            1,
            2,
        )
        assert run_row.as_of_date == DEMO_END
        assert (run_row.airflow_run_id, run_row.logical_date) == (scored.run_id, DEMO_END)
        rows = session.scalars(select(Prediction)).all()
        assert {(p.airflow_run_id, p.logical_date, p.model_version) for p in rows} == {
            (scored.run_id, DEMO_END, 1)
        }
        assert session.scalar(select(func.count()).select_from(Prediction)) == run_row.row_count > 0


def test_running_a_backfill_range_twice_changes_nothing(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A backfill runs each logical date of the range as a DAG run; here dag.test() does that
    (``airflow backfill create`` needs a running scheduler). The second pass over the same
    range must leave the same feature versions and the same prediction table."""
    from fti.store.versions import FeatureStore

    backfill = [DEMO_END - timedelta(days=n) for n in (2, 1, 0)]
    history_end = backfill[0] - timedelta(days=1)
    settings = with_history(dags, tmp_path, demo_raw, monkeypatch, history_end)
    run(dags["training_pipeline"], history_end)

    def one_pass() -> tuple[int, str]:
        for day in backfill:
            run(dags["feature_pipeline"], day)
        for day in backfill:
            run(dags["batch_inference_pipeline"], day)
        store = FeatureStore(settings.store_path)
        return store.resolve("customer_activity", "latest"), content_checksum(settings.db_url)

    first_version, first_predictions = one_pass()
    second_version, second_predictions = one_pass()

    # The re-run partitions equal the published ones: no new versions, the same predictions.
    assert second_version == first_version
    assert second_predictions == first_predictions


def test_dry_runs_write_nothing_and_trigger_nothing(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The forms' dry-run switch: every DAG does its checks, then skips its writing task, so no
    feature version, model version, prediction run or asset event appears."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun

    history_end = DEMO_END - timedelta(days=1)
    settings = with_history(dags, tmp_path, demo_raw, monkeypatch, history_end)
    run(dags["training_pipeline"], history_end)

    def state() -> tuple[int, ...]:
        from fti.db.engine import session_scope

        with create_session() as session:
            events = session.scalar(select(func.count()).select_from(AssetEvent))
        with session_scope(settings.db_url) as session:
            counts = tuple(
                session.scalar(select(func.count()).select_from(table))
                for table in (FeatureVersion, ModelVersion, PredictionRun, Prediction)
            )
        return (events, *counts)

    before = state()
    dry = {
        "feature_pipeline": run(dags["feature_pipeline"], DEMO_END, dry_run=True),
        "training_pipeline": run(dags["training_pipeline"], history_end, dry_run=True),
        "batch_inference_pipeline": run(
            dags["batch_inference_pipeline"], history_end, dry_run=True
        ),
    }
    assert state() == before
    skipped = {
        dag_id: {ti.task_id for ti in dag_run.get_task_instances() if ti.state == "skipped"}
        for dag_id, dag_run in dry.items()
    }
    assert skipped == {
        "feature_pipeline": {"publish_feature_version"},
        "training_pipeline": {"train_model", "promote_if_better"},
        "batch_inference_pipeline": {"check_drift"},
    }
    scored = next(
        ti
        for ti in dry["batch_inference_pipeline"].get_task_instances()
        if ti.task_id == "score_batch"
    )
    summary = scored.xcom_pull(task_ids="score_batch")
    assert summary["dry_run"] and summary["rows"] > 0


def content_checksum(db_url: str) -> str:
    """The predictions table without what differs by run: run ids and scoring times."""
    import hashlib

    from sqlalchemy import text

    from fti.db.engine import get_engine

    query = (
        "SELECT model_name, model_version, feature_group, feature_version, entity_id, as_of_date,"
        " prediction, probability, logical_date FROM predictions"
        " ORDER BY model_name, as_of_date, entity_id"
    )
    with get_engine(db_url).connect() as connection:
        rows = connection.execute(text(query)).all()
    assert rows
    return hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()
