"""Migration 0007 (several models, tasks, label groups) on a database that 0006's fti filled."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from alembic import command
from sqlalchemy import inspect, select, text

from fti.db.engine import get_engine, session_scope
from fti.db.migrate import alembic_config, upgrade
from fti.db.tables import FeatureVersion, ModelVersion, Prediction, PredictionRun
from fti.errors import FtiError
from fti.inference.write import Slice, class_probabilities_json, write_slice

MODEL, GROUP = "churn", "churn_features"
DAYS = (date(2026, 3, 1), date(2026, 3, 2))
FEATURES = [{"name": "tenure_days", "dtype": "int64"}, {"name": "spend_30d", "dtype": "float64"}]
# (day, version, entity, prediction, probability) as 0006's fti scored them; v2 is champion.
SCORES = [
    (DAYS[0], 2, "a", 1, 0.9),
    (DAYS[0], 2, "b", 0, 0.2),
    (DAYS[0], 2, "c", 0, 0.4),
    (DAYS[1], 2, "a", 1, 0.8),
    (DAYS[1], 2, "b", 1, 0.6),
]
SCORES_V1 = [(date(2026, 3, 3), 1, "a", 0, 0.1)]  # newer, but not the champion's


@pytest.fixture(params=["sqlite", "postgresql"])
def db_at_0006(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fti.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url, "0006")
    fill_as_0006_did(url)
    return url


def fill_as_0006_did(url: str) -> None:
    """A catalog row, two model versions, the champion alias, runs and their scores, in SQL."""
    created = "2026-03-01 00:00:00"
    with get_engine(url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO feature_versions (group_name, version, git_tag, git_rev, dvc_md5,"
                " schema, schema_hash, row_count, partitions, min_date, max_date, statistics,"
                " partition_statistics, changed_dates, run_id, created_at) VALUES"
                " (:g, 3, 'features/churn_features/v3', 'abc', 'md5', :schema, 'h', 10, 2,"
                " '2026-02-01', '2026-03-02', '{}', NULL, '[\"2026-03-02\"]', 'r', :at)"
            ),
            {"g": GROUP, "schema": json.dumps({"tenure_days": "int64"}), "at": created},
        )
        for version in (1, 2):
            connection.execute(
                text(
                    "INSERT INTO model_versions (name, version, artifact_uri, artifact_sha256,"
                    " estimator, params, metrics, feature_group, feature_version, features,"
                    " label, train_start, train_end, n_train, n_holdout, library_versions,"
                    " code_version, run_id, promotion, training_statistics, drift_reference,"
                    " created_at) VALUES (:m, :v, '/a.skops', 'sha', 'LogisticRegression',"
                    " '{\"C\": 1.0}', '{\"roc_auc\": 0.71}', :g, 3, :features, 'churned',"
                    " '2026-01-01', '2026-02-01', 100, 20, '{}', 'test', 'r', NULL, NULL, NULL,"
                    " :at)"
                ),
                {
                    "m": MODEL,
                    "v": version,
                    "g": GROUP,
                    "features": json.dumps(FEATURES),
                    "at": created,
                },
            )
        connection.execute(
            text(
                "INSERT INTO model_aliases (name, alias, version, updated_at)"
                " VALUES (:m, 'champion', 2, :at)"
            ),
            {"m": MODEL, "at": created},
        )
        connection.execute(
            text(
                "INSERT INTO prediction_runs (run_id, model_name, model_version, feature_group,"
                " feature_version, as_of_date, status, row_count, started_at, finished_at)"
                " VALUES (:run, :m, :v, :g, :fv, :d, :status, :n, :at, :at)"
            ),
            [
                {"run": f"run-{d}", "m": MODEL, "v": 2, "g": GROUP, "fv": 3, "d": d}
                | {"status": "succeeded", "n": 3, "at": created}
                for d in DAYS
            ]
            + [  # failed before its versions were known
                {"run": "failed", "m": MODEL, "v": None, "g": None, "fv": None, "d": DAYS[1]}
                | {"status": "failed", "n": 0, "at": created}
            ],
        )
        postgresql = connection.dialect.name == "postgresql"
        for day in sorted({s[0] for s in SCORES + SCORES_V1}):
            # PostgreSQL: the way 0006's writer made a slice, through the server's functions.
            table = "predictions"
            if postgresql:
                key = {"m": MODEL, "d": day}
                table = connection.execute(text("SELECT fti_slice_stage(:m, :d)"), key).scalar_one()
            connection.execute(
                text(
                    f'INSERT INTO "{table}" (model_name, model_version, feature_group,'
                    " feature_version, entity_id, as_of_date, prediction, probability, run_id,"
                    " scored_at) VALUES (:m, :v, :g, 3, :e, :d, :p, :prob, :run, :at)"
                ),
                [
                    {"m": MODEL, "v": v, "g": GROUP, "e": e, "d": d, "p": p, "prob": prob}
                    | {"run": f"run-{d}", "at": created}
                    for d, v, e, p, prob in SCORES + SCORES_V1
                    if d == day
                ],
            )
            if postgresql:
                connection.execute(text("SELECT fti_slice_index(:m, :d)"), key)
                connection.execute(text("SELECT fti_slice_swap(:m, :d)"), key)


def stored_scores(url: str) -> list[tuple[date, int, str, int | None, float | None]]:
    with session_scope(url) as session:
        rows = session.scalars(
            select(Prediction).order_by(Prediction.as_of_date, Prediction.entity_id)
        ).all()
    return [(p.as_of_date, p.model_version, p.entity_id, p.prediction, p.probability) for p in rows]


def latest(url: str) -> list[tuple[str, str, int, float | None]]:
    with get_engine(url).connect() as connection:
        rows = connection.execute(
            text(
                "SELECT entity_id, as_of_date, model_version, probability FROM latest_predictions"
                " ORDER BY entity_id"
            )
        ).all()
    return [(e, str(d)[:10], v, p) for e, d, v, p in rows]


LATEST = [("a", "2026-03-02", 2, 0.8), ("b", "2026-03-02", 2, 0.6), ("c", "2026-03-01", 2, 0.4)]


def check_upgraded(url: str) -> None:
    with session_scope(url) as session:
        catalog = session.scalars(select(FeatureVersion)).one()
        models = session.scalars(select(ModelVersion).order_by(ModelVersion.version)).all()
        runs = {r.run_id: r for r in session.scalars(select(PredictionRun))}
        scores = session.scalars(select(Prediction)).all()
    assert (catalog.group_name, catalog.version, catalog.kind) == (GROUP, 3, "features")
    for model in models:
        assert (model.task, model.metric) == ("binary", "roc_auc")
        assert model.feature_versions == {GROUP: 3}
        assert (model.feature_group, model.feature_version) == (GROUP, 3)
        assert model.features == [f | {"group": GROUP} for f in FEATURES]
        assert (model.label, model.label_group, model.label_version) == ("churned", None, None)
        assert model.metrics == {"roc_auc": 0.71}
    assert runs[f"run-{DAYS[0]}"].feature_versions == {GROUP: 3}
    assert runs["failed"].feature_versions is None
    assert stored_scores(url) == sorted(
        (d, v, e, p, prob) for d, v, e, p, prob in SCORES + SCORES_V1
    )
    assert {(s.value, s.predicted_class, s.class_probabilities) for s in scores} == {
        (None, None, None)
    }
    assert latest(url) == LATEST


def multiclass(url: str, day: date, entities: list[str]) -> int:
    """A multiclass model's slice, as the new fti writes it."""
    probabilities = [[0.7, 0.3] if i % 2 == 0 else [0.1, 0.9] for i in range(len(entities))]
    batch = pa.record_batch(
        {
            "entity_id": entities,
            "probability": [max(p) for p in probabilities],
            "predicted_class": ["stay" if p[0] > p[1] else "leave" for p in probabilities],
            "class_probabilities": class_probabilities_json(["stay", "leave"], probabilities),
        }
    )
    piece = Slice(MODEL, 3, GROUP, 3, day, f"multiclass-{day}", datetime(2026, 3, 5, tzinfo=UTC))
    return write_slice(url, piece, [batch])


def test_0007_keeps_what_0006_wrote_readable_and_goes_back_and_forth(db_at_0006: str) -> None:
    url = db_at_0006
    before = stored_scores_0006(url)
    upgrade(url)
    check_upgraded(url)

    # New scores go into migrated slices (PostgreSQL: their old partitions are swapped out).
    assert multiclass(url, DAYS[1], ["a", "b", "d"]) == 3
    with session_scope(url) as session:
        new = session.scalars(
            select(Prediction)
            .where(Prediction.as_of_date == DAYS[1])
            .order_by(Prediction.entity_id)
        ).all()
    assert [(p.entity_id, p.prediction, p.predicted_class, p.probability) for p in new] == [
        ("a", None, "stay", 0.7),
        ("b", None, "leave", 0.9),
        ("d", None, "stay", 0.7),
    ]
    assert new[1].class_probabilities == {"stay": 0.1, "leave": 0.9}

    # 0006 has no room for multiclass scores: the downgrade says so and changes nothing.
    with pytest.raises(FtiError, match="cannot downgrade below 0007.* 3 score"):
        command.downgrade(alembic_config(url), "0006")
    assert latest(url)[:1] == [("a", "2026-03-01", 2, 0.9)]  # v3 is not the champion
    with get_engine(url).begin() as connection:
        connection.execute(text("DELETE FROM predictions WHERE model_version = 3"))
    # (the multiclass slice replaced the day's binary scores: those are gone)
    remaining = [s for s in before if s[0] != DAYS[1]]
    assert stored_scores(url) == remaining

    command.downgrade(alembic_config(url), "0006")
    columns = {c["name"]: c for c in inspect(get_engine(url)).get_columns("predictions")}
    assert "class_probabilities" not in columns and not columns["probability"]["nullable"]
    assert "kind" not in {
        c["name"] for c in inspect(get_engine(url)).get_columns("feature_versions")
    }
    with get_engine(url).connect() as connection:
        features = connection.execute(text("SELECT features FROM model_versions")).scalars().all()
    assert [json.loads(f) if isinstance(f, str) else f for f in features] == [FEATURES, FEATURES]
    assert stored_scores_0006(url) == remaining

    upgrade(url)
    with session_scope(url) as session:
        models = session.scalars(select(ModelVersion)).all()
    assert [m.features for m in models] == [[f | {"group": GROUP} for f in FEATURES]] * 2
    assert stored_scores(url) == remaining
    assert latest(url) == [("a", "2026-03-01", 2, 0.9), ("b", "2026-03-01", 2, 0.2)] + [
        ("c", "2026-03-01", 2, 0.4)
    ]


def stored_scores_0006(url: str) -> list[tuple[date, int, str, int | None, float | None]]:
    """The scores read with plain SQL (the table no longer matches fti's definitions)."""
    with get_engine(url).connect() as connection:
        rows = connection.execute(
            text(
                "SELECT as_of_date, model_version, entity_id, prediction, probability"
                " FROM predictions ORDER BY as_of_date, entity_id"
            )
        ).all()
    return [(date.fromisoformat(str(d)[:10]), v, e, p, prob) for d, v, e, p, prob in rows]


def test_0007_on_postgresql_keeps_new_slices_attachable(postgres_url: str) -> None:
    """Migrated partitions and partitions staged after 0007 have the parent's columns."""
    upgrade(postgres_url, "0006")
    fill_as_0006_did(postgres_url)
    upgrade(postgres_url)
    assert multiclass(postgres_url, date(2026, 3, 9), ["x"]) == 1  # a new partition
    assert multiclass(postgres_url, DAYS[0], ["a"]) == 1  # a migrated one, replaced
    with get_engine(postgres_url).connect() as connection:
        partitions = connection.execute(
            text(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " WHERE i.inhparent = 'predictions'::regclass"
            )
        ).scalars()
        parent = columns_of(connection, "predictions")
        for partition in partitions:
            assert columns_of(connection, partition) == parent
    assert parent[-3:] == [
        ("value", "double precision", False),
        ("predicted_class", "character varying", False),
        ("class_probabilities", "json", False),
    ]
    assert ("prediction", "integer", False) in parent


def columns_of(connection, table: str) -> list[tuple[str, str, bool]]:  # type: ignore[no-untyped-def]
    return [
        tuple(row)  # type: ignore[misc]
        for row in connection.execute(
            text(
                "SELECT attname, format_type(atttypid, NULL), attnotnull FROM pg_attribute"
                " WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
                " ORDER BY attnum"
            ),
            {"t": f'"{table}"'},
        )
    ]
