"""The whole loop through fti.pipelines (what each Airflow task calls), on SQLite and PostgreSQL.

The churn demo's project: sources ``events`` and ``crm``, feature groups ``customer_activity``
and ``customer_profile``, label groups ``churned_30d`` and ``spend_next_30d``, models ``churn``
(binary, roc_auc) and ``spend`` (regression, neg_root_mean_squared_error).
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from churn_demo import project as demo
from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun, ValidationRun
from fti.errors import (
    ArtifactIntegrityError,
    FtiError,
    RegistryError,
    SkewError,
    VersionNotFoundError,
)
from fti.pipelines.features import build_group, run_features, validate_raw_events
from fti.pipelines.inference import rollback_model, score_batch, scoring_waits_for
from fti.pipelines.training import (
    build_training_set,
    load_training_set,
    promote_if_better,
    train_model,
)
from fti.registry import aliases
from fti.registry.versions import compare, get_version
from fti.store.versions import FeatureStore
from tests.conftest import DEMO_END, demo_settings

FEATURE_GROUPS = ["customer_activity", "customer_profile"]
LABEL_GROUPS = ["churned_30d", "spend_next_30d"]
GROUPS = [*FEATURE_GROUPS, *LABEL_GROUPS]
MODELS = {  # name: (task, metric, label group)
    "churn": ("binary", "roc_auc", "churned_30d"),
    "spend": ("regression", "neg_root_mean_squared_error", "spend_next_30d"),
}
HORIZON = timedelta(days=30)

# The demo project with a churn model that needs more training rows than any window yields.
STRICT_PROJECT = replace(
    demo.project, models=[replace(demo.churn, min_train_rows=100_000), demo.spend]
)


def publish_history(settings, start: date, end: date) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The feature pipeline as one range run over [start, end]: validate every source, build
    and publish every feature and label group. Returns the run's summary."""
    return run_features(start, end, "r", settings)


def days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def versions_of(summary: dict[str, Any]) -> dict[str, tuple[int, bool]]:
    return {g: (p["version"], p["new"]) for g, p in summary["published"].items()}


def train_and_promote(settings, model: str, run_id: str, **build: Any) -> tuple[str, int, dict]:  # type: ignore[no-untyped-def,type-arg]
    training_set = build_training_set(model, None, None, run_id, settings, **build)
    version = train_model(training_set, run_id, settings=settings)
    return (
        training_set,
        version,
        promote_if_better(training_set, version, run_id, settings),
    )


@pytest.fixture
def loop_settings(tmp_path: Path, db_url: str, demo_raw: Path):  # type: ignore[no-untyped-def]
    return demo_settings(tmp_path / "home", demo_raw, db_url)


def test_feature_training_inference_loop_of_both_models(loop_settings, history_start: date) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    last_history = DEMO_END - timedelta(days=2)
    night = last_history + timedelta(days=1)

    # Feature pipeline: every source validated, with its own accounting...
    validated = validate_raw_events(history_start, last_history, "r1", s)
    assert set(validated["sources"]) == {"events", "crm"}
    for counts in validated["sources"].values():
        assert counts["files"] == (last_history - history_start).days + 1
        assert counts["rows_read"] == counts["rows_accepted"] + counts["rows_quarantined"] > 0
    assert validated["rows_read"] == sum(c["rows_read"] for c in validated["sources"].values())
    # ... then history in one range run and one night: a version of every group each.
    history = run_features(history_start, last_history, "r1", s)
    nightly = run_features(night, night, "r2", s)
    assert versions_of(history) == dict.fromkeys(GROUPS, (1, True))
    assert versions_of(nightly) == dict.fromkeys(GROUPS, (2, True))
    assert {g: p["kind"] for g, p in nightly["published"].items()} == {
        "customer_activity": "features",
        "customer_profile": "features",
        "churned_30d": "labels",
        "spend_next_30d": "labels",
    }
    # Rerunning the night publishes nothing new: every group keeps its version.
    assert versions_of(run_features(night, night, "r3", s)) == dict.fromkeys(GROUPS, (2, False))

    store = FeatureStore(s.store_path)
    for group in FEATURE_GROUPS:
        assert store.partition_dates(group, 1) == days(history_start, last_history)
        assert store.partition_dates(group, 2) == days(history_start, night)
    # Labels are published only for dates whose 30-day horizon has ended by the run's date.
    for group in LABEL_GROUPS:
        assert store.partition_dates(group, 1) == days(history_start, last_history - HORIZON)
        assert store.partition_dates(group, 2) == days(history_start, night - HORIZON)
        assert store.schema(group, 2).names == ["customer_id", "feature_date", "label"]
    churned = store.read("churned_30d", 2).column("label").to_pylist()
    assert set(churned) == {0, 1}
    assert min(store.read("spend_next_30d", 2).column("label").to_pylist()) >= 0
    assert build_group("churned_30d", history_start, history_start, "early", s) is None

    # Training pipeline: both models, each from its label group and both feature groups; the
    # first version of each becomes champion.
    trained = {name: train_and_promote(s, name, f"t-{name}") for name in MODELS}
    for name, (_, version, decision) in trained.items():
        assert version == 1 and decision["promoted"] and decision["model"] == name
        assert decision["metric"] == MODELS[name][1]
        assert decision["feature_versions"] == dict.fromkeys(FEATURE_GROUPS, 2)
        assert decision["label_version"] == 2
    assert 0.5 < trained["churn"][2]["candidate"] <= 1.0
    assert trained["spend"][2]["candidate"] < 0  # a negated error: higher is better
    # A worse candidate (one small boosting step) on the same holdout is not promoted, by its
    # model's own metric.
    for name, (training_set, _, _) in trained.items():
        worse = train_model(training_set, f"w-{name}", {"max_iter": 1, "learning_rate": 0.01}, s)
        decision = promote_if_better(training_set, worse, f"w-{name}", s)
        assert (decision["promoted"], decision["champion_version"]) == (False, 1)
        assert decision["metric"] == MODELS[name][1]

    # Inference: one prediction per active customer for each model; a rerun replaces the slice.
    active = store.read("customer_activity", 2, dates=[night]).num_rows
    for name in MODELS:
        first = score_batch(name, night, f"i1-{name}", settings=s)
        again = score_batch(name, night, f"i2-{name}", settings=s)
        assert first["rows"] == again["rows"] == active > 0
        assert (first["model_version"], first["task"]) == (1, MODELS[name][0])
        assert first["feature_versions"] == dict.fromkeys(FEATURE_GROUPS, 2)

    project = demo.project
    with session_scope(s.db_url) as session:
        for name, (task, metric, label_group) in MODELS.items():
            for row in session.scalars(select(ModelVersion).where(ModelVersion.name == name)):
                # Each version names every group version it read and the label version.
                assert (row.task, row.metric) == (task, metric)
                if row.version == 1:
                    assert row.metrics[metric] == pytest.approx(trained[name][2]["candidate"])
                assert row.feature_versions == dict.fromkeys(FEATURE_GROUPS, 2)
                assert (row.feature_group, row.feature_version) == ("customer_activity", 2)
                assert (row.label_group, row.label_version) == (label_group, 2)
                assert row.label.startswith(f"{label_group} v2")
                declared = project.model_features(project.model(name))
                assert [(f["group"], f["name"]) for f in row.features] == [
                    (f.group, f.name) for f in declared
                ]
                assert {f["group"]: f["ttl_days"] for f in row.features} == {
                    "customer_activity": 0,
                    "customer_profile": 7,
                }
                assert all(f["dtype"] for f in row.features)
                assert row.train_start < row.train_end <= night - HORIZON
            assert aliases.current(session, name, aliases.CHAMPION) == 1
        catalog = dict(
            session.execute(
                select(FeatureVersion.group_name, FeatureVersion.kind).where(
                    FeatureVersion.version == 2
                )
            ).all()
        )
        assert catalog == {g: p["kind"] for g, p in nightly["published"].items()}
        assert session.scalar(select(func.count()).select_from(FeatureVersion)) == 2 * len(GROUPS)
        assert (
            session.scalar(select(func.count()).select_from(ValidationRun))
            == 2 * ((night - history_start).days + 1)  # one per source per day, reruns replace
        )
        duplicates = session.execute(
            select(Prediction.entity_id)
            .group_by(Prediction.model_name, Prediction.entity_id, Prediction.as_of_date)
            .having(func.count() > 1)
        ).all()
        assert duplicates == []
        columns = (
            Prediction.prediction,
            Prediction.probability,
            Prediction.value,
            Prediction.predicted_class,
            Prediction.class_probabilities,
        )
        churn = session.execute(select(*columns).where(Prediction.model_name == "churn")).all()
        assert len(churn) == active
        assert {r.prediction for r in churn} <= {0, 1}
        assert all(0.0 <= r.probability <= 1.0 for r in churn)
        assert {(r.value, r.predicted_class, r.class_probabilities) for r in churn} == {
            (None, None, None)
        }
        spend = session.execute(select(*columns).where(Prediction.model_name == "spend")).all()
        assert len(spend) == active
        assert all(isinstance(r.value, float) for r in spend)
        assert {(r.prediction, r.probability, r.predicted_class) for r in spend} == {
            (None, None, None)
        }
        statuses = dict(session.execute(select(PredictionRun.run_id, PredictionRun.status)).all())
        assert statuses == {f"i{i}-{m}": "succeeded" for i in (1, 2) for m in MODELS}

    # Skew guard: a model whose recorded dtype of a feature (here one of its second group)
    # differs from the store refuses to score.
    with session_scope(s.db_url) as session:
        row = get_version(session, "churn", 1)
        row.features = [
            dict(f, dtype="double") if f["name"] == "tenure_days" else f for f in row.features
        ]
    with pytest.raises(SkewError, match="tenure_days"):
        score_batch("churn", night, "i3", settings=s)
    with session_scope(s.db_url) as session:
        failed = session.get(PredictionRun, "i3")
        assert failed.status == "failed" and "tenure_days" in failed.error
        counts = dict(
            session.execute(
                select(Prediction.model_name, func.count()).group_by(Prediction.model_name)
            ).all()
        )
        assert counts == {"churn": active, "spend": active}  # both slices intact


def test_rollback_rescores_the_dates_the_replaced_version_scored(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    end = DEMO_END - timedelta(days=1)
    publish_history(s, history_start, end)
    training_set, m1, _ = train_and_promote(s, "churn", "t1")
    m2 = train_model(training_set, "t2", {"max_depth": 2}, s)
    train_and_promote(s, "spend", "t-spend")
    with session_scope(s.db_url, write=True) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, m2, "test", "try v2")
    scored_days = [end - timedelta(days=1), end]
    for day in scored_days:
        for name in MODELS:
            score_batch(name, day, f"score-{name}-{day}", settings=s)

    result = rollback_model("churn", aliases.CHAMPION, "test", "v2 regressed", True, s)

    assert (result["from_version"], result["to_version"]) == (m2, m1)
    assert result["rescored"] == [d.isoformat() for d in scored_days]
    with session_scope(s.db_url) as session:
        versions = dict(
            session.execute(
                select(Prediction.model_version, func.count())
                .where(Prediction.model_name == "churn")
                .group_by(Prediction.model_version)
            ).all()
        )
        assert list(versions) == [m1]
        assert aliases.current(session, "churn", aliases.CHAMPION) == m1
        # The other model's slices are not touched by churn's rollback.
        spend_runs = set(
            session.scalars(select(Prediction.run_id).where(Prediction.model_name == "spend"))
        )
        assert spend_runs == {f"score-spend-{d}" for d in scored_days}


# Which features each version scores with is decided before any write: PostgreSQL only (the
# loop above writes both models' predictions on both databases).
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_each_version_scores_with_its_own_features_across_groups(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    """v1 uses F1-F3, v2 uses F2-F4, picked from both feature groups of the same store."""
    s = loop_settings
    publish_history(s, history_start, DEMO_END)
    f1, f2 = "customer_activity.logins_7d", "customer_activity.tickets_30d"
    f3, f4 = "customer_profile.plan", "customer_profile.tenure_days"
    first, second = [f1, f2, f3], [f2, f3, f4]
    _, v1, decision = train_and_promote(s, "churn", "t1", features=first)
    assert decision["promoted"]
    _, v2, decision = train_and_promote(s, "churn", "t2", features=second)
    # Scored on the same holdout rows, each on its own features.
    assert decision["champion_version"] == v1 and decision["champion"] is not None
    # Bare names in the overrides pick among the training set's features, from either group.
    training_set = build_training_set("churn", None, None, "t3", s, features=second)
    v3 = train_model(training_set, "t3", {"features": ["tickets_30d", "plan"]}, s)

    scores = {
        v: score_batch("churn", DEMO_END, f"s{v}", model=str(v), settings=s) for v in (v1, v2, v3)
    }
    assert scores[v1]["rows"] == scores[v2]["rows"] == scores[v3]["rows"] > 0
    assert {r["model_version"] for r in scores.values()} == {v1, v2, v3}
    with session_scope(s.db_url) as session:
        features = {
            r.version: [f"{f['group']}.{f['name']}" for f in r.features]
            for r in session.scalars(select(ModelVersion).where(ModelVersion.name == "churn"))
        }
        assert features == {v1: first, v2: second, v3: [f2, f3]}
        rows = {v: get_version(session, "churn", v) for v in (v1, v2)}
        for row in rows.values():
            assert row.feature_versions == dict.fromkeys(FEATURE_GROUPS, 1)
            assert (row.label_group, row.label_version) == ("churned_30d", 1)
            assert {f["group"] for f in row.features} == set(FEATURE_GROUPS)
        assert compare(rows[v1], rows[v2])["features"] == {
            "common": [f2, f3],
            f"only_v{v1}": [f1],
            f"only_v{v2}": [f4],
            "dtype_changed": [],
        }
        model = rows[v2]
        assert (
            model.promotion["candidate_version"] == v2
            and "same holdout" in model.promotion["reason"]
        )
        assert model.library_versions["scikit-learn"] and model.code_version.startswith("0.1.0")
        assert model.label.startswith("churned_30d v1")
        runs = {r.run_id: r for r in session.scalars(select(PredictionRun))}
        assert {r.model_version for r in runs.values()} == {v1, v2, v3}
        assert all(r.status == "succeeded" for r in runs.values())
        # The slice holds the last version scored, side by side in the run history.
        assert set(session.scalars(select(Prediction.model_version).distinct())) == {v3}


# The refusal comes from the training set, before the registry: on the embedded default.
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_window_too_small_to_train_on_is_an_error_naming_the_numbers(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    publish_history(s, history_start, DEMO_END)
    training, _ = load_training_set(build_training_set("churn", None, None, "fits", s))
    strict = s.model_copy(update={"project": "tests.integration.test_pipelines:STRICT_PROJECT"})
    with pytest.raises(FtiError) as refused:
        build_training_set("churn", None, None, "strict", strict)
    message = str(refused.value)
    assert (
        f"yields {len(training.train)} training row(s) over {len(training.train_dates)} label "
        f"date(s) and {len(training.holdout)} holdout row(s) over {len(training.holdout_dates)}"
    ) in message
    assert "at least 100000 and 20 are needed" in message and "min_train_rows" in message
    # The demo's raw files hold bad rows: the message says how many went to quarantine.
    assert re.search(
        r"Validation set aside [1-9]\d* of the \d+ rows read from crm, events up to "
        r"\d{4}-\d\d-\d\d \(0 file\(s\) rejected\): see `fti quarantine list`\.$",
        message,
    ), message
    # Too early an as-of date: no label date is both matured and past the warm-up.
    with pytest.raises(FtiError, match=r"holds 0 label date\(s\) usable as of 2026-02-15"):
        build_training_set("churn", None, date(2026, 2, 15), "early", s)
    with session_scope(s.db_url) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0


def test_dates_before_the_project_start_are_refused(loop_settings) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    before = "2025-12-31 is before the start date 2026-01-01 of project 'churn'"
    with pytest.raises(FtiError, match=before):
        run_features(date(2025, 12, 31), date(2026, 1, 2), "early", s)
    with pytest.raises(FtiError, match=before):
        validate_raw_events(date(2025, 12, 31), date(2025, 12, 31), "early", s)
    with pytest.raises(FtiError, match=before):
        build_group("customer_profile", date(2025, 12, 31), date(2026, 1, 1), "e", s)
    with pytest.raises(FtiError, match=before):
        scoring_waits_for("churn", date(2025, 12, 31), settings=s)
    with pytest.raises(FtiError, match=before):
        score_batch("churn", date(2025, 12, 31), "early", settings=s)
    with pytest.raises(FtiError, match="defines no model 'fraud'; it has: churn, spend"):
        build_training_set("fraud", None, None, "x", s)
    with session_scope(s.db_url) as session:
        assert session.scalar(select(func.count()).select_from(ValidationRun)) == 0


def test_bad_states_are_recorded_as_failed_runs_and_the_next_run_works(
    loop_settings, history_start: date
) -> None:  # type: ignore[no-untyped-def]
    s = loop_settings
    end = DEMO_END - timedelta(days=1)
    publish_history(s, history_start, end)

    assert scoring_waits_for("churn", end, settings=s) == ["model 'churn' has no champion yet"]
    with pytest.raises(RegistryError, match="no alias 'champion'"):
        score_batch("churn", end, "no-champion", settings=s)
    _, m1, _ = train_and_promote(s, "churn", "t1")
    assert scoring_waits_for("churn", end, settings=s) == []
    waiting = scoring_waits_for("churn", DEMO_END, settings=s)
    assert len(waiting) == 1 and f"customer_activity holds features for {DEMO_END}" in waiting[0]
    with pytest.raises(VersionNotFoundError, match=f"features for {DEMO_END}"):
        score_batch("churn", DEMO_END, "no-features", settings=s)
    good = score_batch("churn", end, "good", settings=s)
    assert good["rows"] > 0 and good["warnings"] == []

    with session_scope(s.db_url) as session:
        artifact = Path(get_version(session, "churn", m1).artifact_uri)
    original = artifact.read_bytes()
    artifact.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(ArtifactIntegrityError):
        score_batch("churn", end, "tampered", settings=s)
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
        assert runs["tampered"].feature_versions == dict.fromkeys(FEATURE_GROUPS, 1)
        assert all(r.finished_at is not None for r in runs.values())
        written = session.scalars(select(Prediction.run_id).distinct()).all()
        assert written == ["good"]  # the failed runs left the good slice as it was

        # Skew guard on statistics: pretend training only ever saw logins_7d between 0 and 1.
        row = get_version(session, "churn", m1)
        row.training_statistics = dict(
            row.training_statistics, logins_7d={"nulls": 0, "count": 10, "min": 0, "max": 1}
        )
    warned = score_batch("churn", end, "after", settings=s)
    assert warned["rows"] == good["rows"]
    assert len(warned["warnings"]) == 1 and warned["warnings"][0].startswith("logins_7d:")
    with session_scope(s.db_url) as session:
        run = session.get(PredictionRun, "after")
        assert run.status == "succeeded"
        assert [(w["feature"], w["rule"]) for w in run.warnings] == [
            ("logins_7d", "far_out_of_range")
        ]
