"""The whole loop through fti.pipelines (what each Airflow task calls), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fti import pipelines
from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun, ValidationRun
from fti.errors import ArtifactIntegrityError, RegistryError, SkewError, VersionNotFoundError
from fti.registry import aliases
from fti.registry.versions import get_version
from fti.store.versions import FeatureStore
from tests.conftest import DEMO_END, demo_settings


def publish_history(settings, start: date, end: date) -> int:  # type: ignore[no-untyped-def]
    """The feature pipeline as one range run over [start, end]: validate, build, publish."""
    pipelines.validate_raw_events(start, end, "r", settings)
    return pipelines.publish_features(
        pipelines.build_features(start, end, "r", settings), "r", settings
    )


@pytest.fixture
def loop_settings(tmp_path: Path, db_url: str, demo_raw: Path):  # type: ignore[no-untyped-def]
    return demo_settings(tmp_path / "home", demo_raw, db_url)


def test_feature_training_inference_loop(loop_settings, history_start: date) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    last_history = DEMO_END - timedelta(days=2)

    # Feature pipeline: history in one range run, then one night.
    validated = pipelines.validate_raw_events(history_start, last_history, "r1", s)
    assert validated["rows_read"] == validated["rows_accepted"] + validated["rows_quarantined"] > 0
    v1 = pipelines.publish_features(
        pipelines.build_features(history_start, last_history, "r1", s), "r1", s
    )
    night = last_history + timedelta(days=1)
    pipelines.validate_raw_events(night, night, "r2", s)
    v2 = pipelines.publish_features(pipelines.build_features(night, night, "r2", s), "r2", s)
    assert (v1, v2) == (1, 2)
    store = FeatureStore(s.store_path)
    assert night not in store.partition_dates("customer_activity", 1)
    assert store.partition_dates("customer_activity", 2)[-1] == night

    # Training pipeline: the first version becomes champion with its lineage recorded.
    training_set = pipelines.build_training_set("latest", None, "t1", s)
    m1 = pipelines.train_model(training_set, "t1", settings=s)
    decision = pipelines.promote_if_better(training_set, m1, "t1", s)
    assert decision["promoted"] and 0.5 < decision["candidate"] <= 1.0
    # A worse candidate (one boosting step) on the same holdout is not promoted.
    m2 = pipelines.train_model(training_set, "t2", {"max_iter": 1, "learning_rate": 0.01}, s)
    assert not pipelines.promote_if_better(training_set, m2, "t2", s)["promoted"]

    # Inference: one prediction per active customer, rerun replaces the slice.
    first = pipelines.score_batch(night, "i1", settings=s)
    again = pipelines.score_batch(night, "i2", settings=s)
    active = store.read("customer_activity", 2, dates=[night]).num_rows
    assert first["rows"] == again["rows"] == active > 0
    assert first["model_version"] == m1 and first["feature_version"] == 2

    with session_scope(s.db_url) as session:
        model = session.scalar(select(ModelVersion).where(ModelVersion.version == m1))
        assert model.feature_group == "customer_activity" and model.feature_version == 2
        assert [f["name"] for f in model.features][:2] == ["logins_7d", "logins_30d"]
        assert model.train_start < model.train_end <= DEMO_END - timedelta(days=30)
        assert aliases.current(session, "churn", aliases.CHAMPION) == m1
        assert session.scalar(select(func.count()).select_from(FeatureVersion)) == 2
        assert (
            session.scalar(select(func.count()).select_from(ValidationRun))
            == (night - history_start).days + 1
        )
        duplicates = session.execute(
            select(Prediction.entity_id)
            .group_by(Prediction.model_name, Prediction.entity_id, Prediction.as_of_date)
            .having(func.count() > 1)
        ).all()
        assert duplicates == []
        statuses = dict(session.execute(select(PredictionRun.run_id, PredictionRun.status)).all())
        assert statuses == {"i1": "succeeded", "i2": "succeeded"}

    # Skew guard: a model whose recorded dtype differs from the store refuses to score.
    with session_scope(s.db_url) as session:
        row = session.scalar(select(ModelVersion).where(ModelVersion.version == m1))
        row.features = [
            dict(f, dtype="double") if f["name"] == "logins_7d" else f for f in row.features
        ]
    with pytest.raises(SkewError, match="logins_7d"):
        pipelines.score_batch(night, "i3", settings=s)
    with session_scope(s.db_url) as session:
        failed = session.get(PredictionRun, "i3")
        assert failed.status == "failed" and "logins_7d" in failed.error
        assert (
            session.scalar(select(func.count()).select_from(Prediction)) == active
        )  # slice intact


def test_rollback_rescores_the_dates_the_replaced_version_scored(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    end = DEMO_END - timedelta(days=1)
    publish_history(s, history_start, end)
    training_set = pipelines.build_training_set("latest", None, "t", s)
    m1 = pipelines.train_model(training_set, "t1", settings=s)
    pipelines.promote_if_better(training_set, m1, "t1", s)
    m2 = pipelines.train_model(training_set, "t2", {"max_depth": 2}, s)
    with session_scope(s.db_url) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, m2, "test", "try v2")
    days = [end - timedelta(days=1), end]
    for day in days:
        pipelines.score_batch(day, f"score-{day}", settings=s)

    result = pipelines.rollback_model("churn", aliases.CHAMPION, "test", "v2 regressed", True, s)

    assert (result["from_version"], result["to_version"]) == (m2, m1)
    assert result["rescored"] == [d.isoformat() for d in days]
    with session_scope(s.db_url) as session:
        versions = dict(
            session.execute(
                select(Prediction.model_version, func.count()).group_by(Prediction.model_version)
            ).all()
        )
        assert list(versions) == [m1]


def test_each_version_scores_with_its_own_features_from_the_same_store(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    publish_history(s, history_start, DEMO_END)
    training_set = pipelines.build_training_set("latest", None, "t", s)
    first = ["logins_7d", "logins_30d", "purchases_30d"]
    second = ["logins_30d", "purchases_30d", "tickets_30d", "plan"]
    v1 = pipelines.train_model(training_set, "t1", {"features": first}, s)
    v2 = pipelines.train_model(training_set, "t2", {"features": second}, s)
    decision = pipelines.promote_if_better(training_set, v1, "t1", s)
    assert decision["promoted"]
    decision = pipelines.promote_if_better(training_set, v2, "t2", s)
    assert (
        decision["champion_version"] == v1 and decision["champion"] is not None
    )  # same holdout rows

    scores = {
        v: pipelines.score_batch(DEMO_END, f"s{v}", model=str(v), settings=s) for v in (v1, v2)
    }
    assert scores[v1]["rows"] == scores[v2]["rows"] > 0
    with session_scope(s.db_url) as session:
        features = {
            r.version: [f["name"] for f in r.features]
            for r in session.scalars(select(ModelVersion))
        }
        assert features == {v1: first, v2: second}
        model = session.scalar(select(ModelVersion).where(ModelVersion.version == v2))
        assert (
            model.promotion["candidate_version"] == v2
            and "same holdout" in model.promotion["reason"]
        )
        assert model.library_versions["scikit-learn"] and model.code_version.startswith("0.1.0")
        assert model.label.startswith("cancels_within_30d")


def test_bad_states_are_recorded_as_failed_runs_and_the_next_run_works(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    end = DEMO_END - timedelta(days=1)
    publish_history(s, history_start, end)

    with pytest.raises(RegistryError, match="no alias 'champion'"):
        pipelines.score_batch(end, "no-champion", settings=s)
    training_set = pipelines.build_training_set("latest", None, "t", s)
    m1 = pipelines.train_model(training_set, "t1", settings=s)
    pipelines.promote_if_better(training_set, m1, "t1", s)
    with pytest.raises(VersionNotFoundError, match=f"features for {DEMO_END}"):
        pipelines.score_batch(DEMO_END, "no-features", settings=s)
    good = pipelines.score_batch(end, "good", settings=s)
    assert good["rows"] > 0 and good["warnings"] == []

    with session_scope(s.db_url) as session:
        artifact = Path(get_version(session, "churn", m1).artifact_uri)
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(ArtifactIntegrityError):
        pipelines.score_batch(end, "tampered", settings=s)
    artifact.write_bytes(original)

    with session_scope(s.db_url) as session:
        runs = {r.run_id: r for r in session.scalars(select(PredictionRun))}
        assert {k: r.status for k, r in runs.items()} == {
            "no-champion": "failed",
            "no-features": "failed",
            "good": "succeeded",
            "tampered": "failed",
        }
        assert runs["no-champion"].model_version is None and "champion" in runs["no-champion"].error
        assert (runs["no-features"].model_version, runs["no-features"].feature_version) == (
            m1,
            None,
        )
        assert runs["tampered"].feature_version == 1 and runs["tampered"].error
        assert all(r.finished_at is not None for r in runs.values())
        written = session.scalars(select(Prediction.run_id).distinct()).all()
        assert written == ["good"]  # the failed runs left the good slice as it was

        # Skew guard on statistics: pretend training only ever saw logins_7d between 0 and 1.
        row = get_version(session, "churn", m1)
        row.training_statistics = dict(
            row.training_statistics, logins_7d={"nulls": 0, "count": 10, "min": 0, "max": 1}
        )
    warned = pipelines.score_batch(end, "after", settings=s)
    assert warned["rows"] == good["rows"]
    assert len(warned["warnings"]) == 1 and warned["warnings"][0].startswith("logins_7d:")
    with session_scope(s.db_url) as session:
        run = session.get(PredictionRun, "after")
        assert run.status == "succeeded"
        assert [(w["feature"], w["rule"]) for w in run.warnings] == [
            ("logins_7d", "far_out_of_range")
        ]
