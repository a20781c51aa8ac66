"""Each DAG runs for real with dag.test() on tmp settings (SQLite metadata, real DVC store).

The churn demo: feature groups customer_activity and customer_profile, label groups
churned_30d and spend_next_30d (30-day horizon), models churn (binary) and spend (regression).
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import func, select

from tests.conftest import DEMO_END, DEMO_START, PARAMS, demo_settings
from tests.dags.conftest import run

FEATURE_GROUPS = ["customer_activity", "customer_profile"]
LABEL_GROUPS = {"churned_30d": 30, "spend_next_30d": 30}  # label group: horizon in days
MODELS = {
    "churn": ("binary", "roc_auc", "churned_30d"),
    "spend": ("regression", "neg_root_mean_squared_error", "spend_next_30d"),
}


def asset_events(after: int, dag_run=None) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Extras of the asset events recorded since event id ``after`` (of one run, if given)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    query = select(AssetEvent).where(AssetEvent.id > after).order_by(AssetEvent.id)
    if dag_run is not None:
        query = query.where(
            AssetEvent.source_dag_id == dag_run.dag_id,
            AssetEvent.source_run_id == dag_run.run_id,
        )
    with create_session() as session:
        return [dict(e.extra) for e in session.scalars(query)]


def last_event_id() -> int:
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return int(session.scalar(select(func.max(AssetEvent.id))) or 0)


def with_history(dags, tmp_path: Path, demo_raw: Path, monkeypatch, history_end: date):  # type: ignore[no-untyped-def]
    """A tmp FTI home whose groups' version 1 holds the demo history from the project's start
    to ``history_end``, loaded by one range run of the feature DAG; the DAG tasks read the
    home from the environment."""
    settings = demo_settings(tmp_path / "home", demo_raw)
    use_home(monkeypatch, settings)
    run(
        dags["churn_feature_pipeline"],
        history_end,
        start_date=DEMO_START.isoformat(),
        end_date=history_end.isoformat(),
    )
    return settings


def use_home(monkeypatch, settings) -> None:  # type: ignore[no-untyped-def]
    """The DAG tasks read the home, raw files and params from the environment."""
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    monkeypatch.setenv("FTI_RAW_PATH", str(settings.raw_path))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(PARAMS))


def train(dags, model: str, day: date, versions: dict[str, int] | None = None, **conf: Any):  # type: ignore[no-untyped-def]
    """A training run as the scheduler starts it: with the group versions that landed."""
    chosen = {f"{group}_version": str(v) for group, v in (versions or {}).items()}
    return run(dags[f"{model}_training"], day, **chosen, **conf)


def test_feature_training_and_inference_dags_end_to_end(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from fti.db.engine import session_scope
    from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun
    from fti.registry import aliases

    seen = last_event_id()
    history_end = DEMO_END - timedelta(days=1)
    settings = with_history(dags, tmp_path, demo_raw, monkeypatch, history_end)

    # The range run published version 1 of every group, label groups up to their horizon ago.
    history = asset_events(seen)
    label_end = (history_end - timedelta(days=30)).isoformat()
    assert sorted(history, key=lambda e: e["group"]) == sorted(
        [
            {
                "group": g,
                "version": 1,
                "new": True,
                "kind": "features",
                "first_date": DEMO_START.isoformat(),
                "last_date": history_end.isoformat(),
            }
            for g in FEATURE_GROUPS
        ]
        + [
            {
                "group": g,
                "version": 1,
                "new": True,
                "kind": "labels",
                "first_date": DEMO_START.isoformat(),
                "last_date": label_end,
            }
            for g in LABEL_GROUPS
        ],
        key=lambda e: e["group"],
    )
    with session_scope(settings.db_url) as session:
        catalog = {v.group_name: v for v in session.scalars(select(FeatureVersion))}
    assert set(catalog) == {*FEATURE_GROUPS, *LABEL_GROUPS}
    for group in FEATURE_GROUPS:
        row = catalog[group]
        assert (row.version, row.kind, row.min_date, row.max_date) == (
            1,
            "features",
            DEMO_START,
            history_end,
        )
    for group, horizon in LABEL_GROUPS.items():
        row = catalog[group]
        assert (row.version, row.kind, row.min_date) == (1, "labels", DEMO_START)
        assert row.max_date == history_end - timedelta(days=horizon), group
        assert row.row_count > 0

    # Each model trains through its own DAG, on the versions that landed (as the scheduler
    # hands them over); churn a second time with a form override.
    landed = {e["group"]: e["version"] for e in history}
    seen = last_event_id()
    trained = {model: train(dags, model, history_end, landed) for model in MODELS}
    second = train(dags, "churn", history_end, max_iter=20)
    promotions = {
        model: asset_events(seen, dag_run) for model, dag_run in [*trained.items(), ("", second)]
    }
    with session_scope(settings.db_url) as session:
        versions = {(v.name, v.version): v for v in session.scalars(select(ModelVersion))}
        champions = {m: aliases.current(session, m, aliases.CHAMPION) for m in MODELS}
    assert set(versions) == {("churn", 1), ("churn", 2), ("spend", 1)}
    assert versions[("churn", 2)].params["max_iter"] == 20
    assert versions[("churn", 1)].params["max_iter"] == 150  # params.yaml's train.churn
    for (model, _), row in versions.items():
        task, metric, label_group = MODELS[model]
        # The lineage names every group version the model read and its label version.
        assert (row.task, row.metric) == (task, metric)
        assert row.feature_versions == dict.fromkeys(FEATURE_GROUPS, 1)
        assert (row.feature_group, row.feature_version) == ("customer_activity", 1)
        assert (row.label_group, row.label_version) == (label_group, 1)
        assert {f["group"] for f in row.features} == set(FEATURE_GROUPS)
        assert isinstance(row.metrics[metric], float)
        assert row.run_id.startswith(f"{model}_training/")
        assert row.train_end <= history_end - timedelta(days=LABEL_GROUPS[label_group])
    assert champions["churn"] in (1, 2) and champions["spend"] == 1
    for model in MODELS:
        (event,) = promotions[model]
        assert event["model"] == model and event["model_version"] == 1
        assert event["promoted"] is True  # the first version of a model has no champion to beat
        assert event["feature_versions"] == dict.fromkeys(FEATURE_GROUPS, 1)
        assert event["label_version"] == 1 and event["as_of"] == history_end.isoformat()
    ((event,),) = [promotions[""]]
    assert (event["model"], event["model_version"]) == ("churn", 2)

    # The nightly run: its logical date only; matured labels publish a new label version too.
    seen = last_event_id()
    nightly = run(dags["churn_feature_pipeline"], DEMO_END)
    assert {e["group"]: (e["version"], e["new"]) for e in asset_events(seen, nightly)} == {
        group: (2, True) for group in [*FEATURE_GROUPS, *LABEL_GROUPS]
    }

    # churn's date is scored by 2 entity shards (two mapped tasks), spend's by one.
    params = yaml.safe_load(PARAMS.read_text())
    params["shards"] = params["shards"] | {"models": {"churn": 2}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(tmp_path / "params.yaml"))
    scored = {
        "churn": run(dags["churn_inference"], DEMO_END, model="1"),
        "spend": run(dags["spend_inference"], DEMO_END),
    }
    for model, shards in (("churn", 2), ("spend", 1)):
        tasks = [ti for ti in scored[model].get_task_instances() if ti.task_id == "score_shard"]
        assert sorted(ti.map_index for ti in tasks) == list(range(shards))
        assert {ti.rendered_map_index for ti in tasks} == {
            f"{DEMO_END}, shard {i + 1} of {shards}" for i in range(shards)
        }
    with session_scope(settings.db_url) as session:
        runs = {r.model_name: r for r in session.scalars(select(PredictionRun))}
        rows = {
            model: session.scalars(select(Prediction).where(Prediction.model_name == model)).all()
            for model in MODELS
        }
    assert set(runs) == set(MODELS)
    for model, dag_run in scored.items():
        run_row = runs[model]
        assert run_row.run_id == f"{model}_inference/{dag_run.run_id}"
        assert (run_row.status, run_row.model_version, run_row.as_of_date) == (
            "succeeded",
            1,
            DEMO_END,
        )
        # Scored from the nightly versions: the spine and the other feature group.
        assert (run_row.feature_group, run_row.feature_version) == ("customer_activity", 2)
        assert run_row.feature_versions == dict.fromkeys(FEATURE_GROUPS, 2)
        assert (run_row.airflow_run_id, run_row.logical_date) == (dag_run.run_id, DEMO_END)
        assert len(rows[model]) == run_row.row_count > 0
        assert {(p.airflow_run_id, p.logical_date, p.model_version) for p in rows[model]} == {
            (dag_run.run_id, DEMO_END, 1)
        }
    # What a score holds follows the model's task.
    assert {p.prediction for p in rows["churn"]} <= {0, 1}
    assert all(0.0 <= p.probability <= 1.0 and p.value is None for p in rows["churn"])
    assert all(
        p.value is not None and p.prediction is None and p.probability is None
        for p in rows["spend"]
    )
    assert len({p.value for p in rows["spend"]}) > 1


BACKFILL = [DEMO_END - timedelta(days=n) for n in (2, 1, 0)]


@pytest.fixture(scope="module")
def trained(dags, tmp_path_factory: pytest.TempPathFactory, demo_raw: Path):  # type: ignore[no-untyped-def]
    """A home with the history up to the night before BACKFILL and both models trained on it,
    shared by the dry runs (which must leave it as it is) and then the backfill."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        history_end = BACKFILL[0] - timedelta(days=1)
        home = tmp_path_factory.mktemp("trained")
        settings = with_history(dags, home, demo_raw, monkeypatch, history_end)
        for model in MODELS:
            train(dags, model, history_end)
        yield settings, history_end


def test_dry_runs_write_nothing_and_trigger_nothing(dags, trained, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The forms' dry-run switch: every DAG does its checks, then skips its writing task, so no
    group version, model version, prediction run or asset event appears."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun

    settings, history_end = trained
    use_home(monkeypatch, settings)

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
    dry = {"churn_feature_pipeline": run(dags["churn_feature_pipeline"], BACKFILL[0], dry_run=True)}
    for model in MODELS:
        dry[f"{model}_training"] = run(dags[f"{model}_training"], history_end, dry_run=True)
        dry[f"{model}_inference"] = run(dags[f"{model}_inference"], history_end, dry_run=True)
    assert state() == before
    skipped = {
        dag_id: {ti.task_id for ti in dag_run.get_task_instances() if ti.state == "skipped"}
        for dag_id, dag_run in dry.items()
    }
    assert skipped == {
        "churn_feature_pipeline": {f"publish__{g}" for g in [*FEATURE_GROUPS, *LABEL_GROUPS]},
        **{f"{m}_training": {"train_model", "promote_if_better"} for m in MODELS},
        **{f"{m}_inference": {"check_drift", "score_challenger"} for m in MODELS},
    }
    for model in MODELS:
        scored = next(
            ti
            for ti in dry[f"{model}_inference"].get_task_instances()
            if ti.task_id == "write_scores"
        )
        summary = scored.xcom_pull(task_ids="write_scores", map_indexes=0)  # one date: one write
        assert summary["dry_run"] and summary["rows"] > 0 and summary["model"] == model


def test_running_a_backfill_range_twice_changes_nothing(dags, trained, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A backfill runs each logical date of the range as a DAG run; here dag.test() does that
    (``airflow backfill create`` needs a running scheduler). The second pass over the same
    range must leave the same group versions, model versions and prediction table, and emit no
    group asset event (the publish tasks skip, saying why)."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    from fti.store.versions import FeatureStore

    backfill = BACKFILL
    settings, _ = trained
    use_home(monkeypatch, settings)

    def one_pass() -> tuple[dict[str, int], str, int, set[str]]:
        skipped = set()
        for day in backfill:
            features = run(dags["churn_feature_pipeline"], day)
            skipped |= {ti.task_id for ti in features.get_task_instances() if ti.state == "skipped"}
            # What the scheduler would start: each model's training on the versions that landed.
            for model in MODELS:
                train(dags, model, day)
        for day in backfill:
            for model in MODELS:
                run(dags[f"{model}_inference"], day)
        store = FeatureStore(settings.store_path)
        versions = {g: store.resolve(g, "latest") for g in [*FEATURE_GROUPS, *LABEL_GROUPS]}
        with create_session() as session:
            events = session.scalar(select(func.count()).select_from(AssetEvent))
        return versions, content_checksum(settings.db_url), events, skipped

    first_versions, first_predictions, first_events, first_skipped = one_pass()
    models_after_first = model_versions(settings.db_url)
    second_versions, second_predictions, second_events, second_skipped = one_pass()

    # One new version per group and night, and the re-run partitions equal the published
    # ones: no new group versions, no asset event for training, no new model version (an
    # identical training returns the existing one), the same predictions.
    assert first_versions == dict.fromkeys([*FEATURE_GROUPS, *LABEL_GROUPS], 1 + len(backfill))
    assert first_skipped == set()
    assert second_versions == first_versions
    assert second_skipped == {f"publish__{g}" for g in [*FEATURE_GROUPS, *LABEL_GROUPS]}
    assert model_versions(settings.db_url) == models_after_first
    # The second pass's asset events are the model asset events of its trainings only.
    assert second_events - first_events == len(backfill) * len(MODELS)
    assert second_predictions == first_predictions


def model_versions(db_url: str) -> list[tuple[str, int]]:
    from fti.db.engine import session_scope
    from fti.db.tables import ModelVersion

    with session_scope(db_url) as session:
        return sorted(session.execute(select(ModelVersion.name, ModelVersion.version)).tuples())


def test_a_run_before_the_projects_start_date_fails_saying_so(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch, caplog
) -> None:  # type: ignore[no-untyped-def]
    """A range whose first date is before the project's start fails, naming the start date:
    not a run that succeeds doing nothing."""
    from fti.db.engine import session_scope
    from fti.db.tables import FeatureVersion, ValidationRun

    settings = demo_settings(tmp_path / "home", demo_raw)
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    monkeypatch.setenv("FTI_RAW_PATH", str(demo_raw))
    early = DEMO_START - timedelta(days=1)
    failed = run(dags["churn_feature_pipeline"], DEMO_START, "failed", start_date=early.isoformat())
    states = {ti.task_id: ti.state for ti in failed.get_task_instances()}
    assert states["validate_raw_events"] == "failed"
    assert {s for t, s in states.items() if t != "validate_raw_events"} == {"upstream_failed"}
    message = next(r.getMessage() for r in caplog.records if "failed on try" in r.getMessage())
    assert "2025-12-31 is before the start date 2026-01-01 of project 'churn'" in message, message
    assert "`fti check`" in message, message
    with session_scope(settings.db_url) as session:
        for table in (FeatureVersion, ValidationRun):
            assert session.scalar(select(func.count()).select_from(table)) == 0


def test_a_run_with_a_logical_date_before_the_projects_start_fails(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A run whose logical date is before the project's start (the UI's or REST API's trigger)
    has its tasks, and fails saying why, in every DAG."""
    settings = demo_settings(tmp_path / "home", demo_raw)
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    monkeypatch.setenv("FTI_RAW_PATH", str(demo_raw))
    early = DEMO_START - timedelta(days=1)
    for dag_id in ("churn_feature_pipeline", "churn_training", "spend_inference"):
        failed = run(dags[dag_id], early, "failed")
        assert failed.get_task_instances(), dag_id


def content_checksum(db_url: str) -> str:
    """The predictions table without what differs by run: run ids and scoring times."""
    import hashlib

    from sqlalchemy import text

    from fti.db.engine import get_engine

    query = (
        "SELECT model_name, model_version, feature_group, feature_version, entity_id, as_of_date,"
        " prediction, probability, value, logical_date FROM predictions"
        " ORDER BY model_name, as_of_date, entity_id"
    )
    with get_engine(db_url).connect() as connection:
        rows = connection.execute(text(query)).all()
    assert {r.model_name for r in rows} == set(MODELS)
    return hashlib.sha256(repr([tuple(map(str, r)) for r in rows]).encode()).hexdigest()


def test_the_retention_dag_changes_nothing_on_a_dry_run_and_removes_on_a_run(
    dags, tmp_path: Path, demo_raw: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """What `fti gc` does, from Airflow: a dry run changes nothing, a run drops what the
    params file's retention section does not keep."""
    from fti.store.versions import FeatureStore
    from tests.integration import crashing_publisher

    settings = demo_settings(tmp_path / "home", demo_raw)
    params = yaml.safe_load(PARAMS.read_text())
    params["retention"] = {"keep_group_versions": 1}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    for key, value in {
        "FTI_HOME": settings.home,
        "FTI_RAW_PATH": demo_raw,
        "FTI_PARAMS_FILE": tmp_path / "params.yaml",
    }.items():
        monkeypatch.setenv(key, str(value))
    store = FeatureStore(settings.store_path)
    for value in (1, 2):
        day = {DEMO_START: crashing_publisher.partition(DEMO_START, value, rows=10)}
        crashing_publisher.publish(store, settings.db_url, day, f"v{value}", "activity")

    run(dags["churn_retention"], DEMO_START, dry_run=True)
    assert store.every_version() == {"activity": [1, 2]}
    run(dags["churn_retention"], DEMO_START)
    assert store.every_version() == {"activity": [2]}
