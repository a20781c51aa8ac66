"""fti's SQL tables on SQLite and PostgreSQL: migrations, registry, prediction slices, read-only SQL."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import inspect

from fti.db.engine import get_engine, session_scope
from fti.db.migrate import upgrade
from fti.errors import ReadOnlyQueryError, RegistryError
from fti.registry import aliases
from fti.registry.versions import get_version, register_version
from fti.sql import run_read_only
from tests.integration.slices import write

TABLES = {
    "feature_versions",
    "validation_runs",
    "quarantined_rows",
    "model_versions",
    "model_aliases",
    "alias_events",
    "prediction_runs",
    "predictions",
    "online_rows",
    "online_state",
    "served_predictions",
    "realized_metrics",
    "shadow_predictions",
}


def lineage(**extra: object) -> dict[str, object]:
    return {
        "artifact_uri": "/tmp/a.skops",
        "artifact_sha256": "0" * 64,
        "estimator": "LogisticRegression",
        "params": {"C": 1.0},
        "task": "binary",
        "metric": "roc_auc",
        "metrics": {"roc_auc": 0.7},
        "feature_group": "g",
        "feature_version": 1,
        "feature_versions": {"g": 1},
        "features": [{"name": "x", "dtype": "int64", "group": "g"}],
        "label": "y",
        "train_start": date(2026, 1, 1),
        "train_end": date(2026, 2, 1),
        "n_train": 10,
        "n_holdout": 5,
        "library_versions": {},
        "code_version": "test",
        "run_id": "r",
        "promotion": None,
        **extra,
    }


def test_migrations_create_every_table_and_are_idempotent(db_url: str) -> None:
    upgrade(db_url)  # second time: nothing to do
    assert TABLES <= set(inspect(get_engine(db_url)).get_table_names())
    assert "latest_predictions" in inspect(get_engine(db_url)).get_view_names()


def test_migrations_match_the_table_definitions(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from fti.db.migrate import comparison_filter
    from fti.db.tables import Base

    write(db_url, date(2026, 3, 1), 1, 10)  # on PostgreSQL: a slice partition, not compared
    with get_engine(db_url).connect() as connection:
        include = comparison_filter(connection.dialect.name)
        context = MigrationContext.configure(connection, opts={"include_object": include})
        assert compare_metadata(context, Base.metadata) == []


def test_latest_predictions_is_the_champions_newest_score_per_entity(db_url: str) -> None:
    with session_scope(db_url, write=True) as session:
        for _ in range(2):
            register_version(session, "m", **lineage())
        aliases.set_alias(session, "m", "champion", 2, "t", "t")
    for day, version, n in [
        (date(2026, 3, 1), 2, 3),
        (date(2026, 3, 2), 2, 2),
        (date(2026, 3, 3), 1, 3),
    ]:
        write(db_url, day, version, n)
    _, rows = run_read_only(
        db_url,
        "SELECT entity_id, as_of_date, model_version FROM latest_predictions ORDER BY entity_id",
    )
    assert [(r[0], str(r[1])[:10], r[2]) for r in rows] == [
        ("0", "2026-03-02", 2),
        ("1", "2026-03-02", 2),
        ("2", "2026-03-01", 2),
    ]


def test_versions_count_up_and_aliases_keep_their_history(db_url: str) -> None:
    with session_scope(db_url) as session:
        assert [register_version(session, "m", **lineage()).version for _ in range(3)] == [1, 2, 3]
    with session_scope(db_url) as session:
        aliases.set_alias(session, "m", "champion", 1, "alice", "first")
    with session_scope(db_url) as session:
        aliases.set_alias(session, "m", "champion", 3, "bob", "better")
    with session_scope(db_url) as session:
        assert aliases.resolve(session, "m", "champion") == 3
        assert aliases.resolve(session, "m", "v2") == 2
        event = aliases.rollback(session, "m", "champion", "carol", "v3 misbehaves")
        assert (event.from_version, event.to_version) == (3, 1)
    with session_scope(db_url) as session:
        history = aliases.history(session, "m", "champion")
        assert [(e.from_version, e.to_version, e.actor) for e in history] == [
            (None, 1, "alice"),
            (1, 3, "bob"),
            (3, 1, "carol"),
        ]
        at_second = aliases.history(session, "m", "champion", at=history[1].created_at)
        assert at_second[-1].to_version == 3  # who held it then


def test_unknown_versions_and_aliases_are_clear_errors(db_url: str) -> None:
    with session_scope(db_url) as session:
        register_version(session, "m", **lineage())
        with pytest.raises(RegistryError, match="no version 9"):
            get_version(session, "m", 9)
        with pytest.raises(RegistryError, match="no alias 'champion'"):
            aliases.resolve(session, "m", "champion")
        with pytest.raises(RegistryError, match="no version 4"):
            aliases.set_alias(session, "m", "champion", 4, "x", "y")
        with pytest.raises(RegistryError, match="no earlier version"):
            aliases.rollback(session, "m", "champion", "x", "y")


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO model_aliases (name, alias, version, updated_at) VALUES ('m', 'a', 1, '2026-01-01')",
        "DELETE FROM predictions",
        "UPDATE predictions SET probability = 0",
        "DROP TABLE predictions",
        "CREATE TABLE evil (x integer)",
    ],
)
def test_sql_refuses_writes(db_url: str, statement: str) -> None:
    with pytest.raises(ReadOnlyQueryError, match="read-only"):
        run_read_only(db_url, statement)
    assert "predictions" in inspect(get_engine(db_url)).get_table_names()


def test_sql_reads(db_url: str) -> None:
    write(db_url, date(2026, 3, 1), 1, 5)
    columns, rows = run_read_only(db_url, "SELECT count(*) AS n FROM predictions")
    assert columns == ["n"] and rows == [(5,)]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_at_0005(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    from fti.db.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fti.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url, "0005")
    return url


def test_0006_moves_every_prediction_into_its_slice_and_back(db_at_0005: str) -> None:
    """Upgrading a database that holds predictions keeps each row (PostgreSQL: in the
    partition of its slice); downgrading restores the 0005 table with the same rows."""
    from alembic import command
    from sqlalchemy import text

    from fti.db.migrate import alembic_config, upgrade

    columns = (
        "model_name, model_version, feature_group, feature_version, entity_id, as_of_date,"
        " prediction, probability, run_id, scored_at"
    )
    rows = [
        {"m": model, "d": day, "e": str(e), "p": e / 10}
        for model in ("churn", "o'brien model")  # a quote in a name is data, not SQL
        for day in (date(2026, 3, 1), date(2026, 3, 2))
        for e in range(5)
    ]
    with get_engine(db_at_0005).begin() as connection:
        connection.execute(
            text(
                f"INSERT INTO predictions ({columns}) VALUES"
                " (:m, 1, 'g', 1, :e, :d, 0, :p, 'r', '2026-03-03 00:00:00')"
            ),
            rows,
        )
    query = text(
        "SELECT model_name, as_of_date, entity_id, probability FROM predictions"
        " ORDER BY model_name, as_of_date, entity_id"
    )

    def stored() -> list[tuple[str, str, str, float]]:
        with get_engine(db_at_0005).connect() as connection:
            return [(m, str(d), e, p) for m, d, e, p in connection.execute(query)]

    expected = sorted((r["m"], str(r["d"]), r["e"], r["p"]) for r in rows)
    upgrade(db_at_0005)
    assert stored() == expected
    if db_at_0005.startswith("postgresql"):
        with get_engine(db_at_0005).connect() as connection:
            partitions = connection.execute(
                text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'predictions'::regclass")
            ).scalar()
        assert partitions == 4
    write(db_at_0005, date(2026, 3, 2), 2, 3, model_name="churn")  # replaces a migrated slice
    assert len(stored()) == len(expected) - 5 + 3

    command.downgrade(alembic_config(db_at_0005), "0005")
    assert len(stored()) == len(expected) - 5 + 3
    assert inspect(get_engine(db_at_0005)).get_pk_constraint("predictions")[
        "constrained_columns"
    ] == ["id"]
    upgrade(db_at_0005)
    assert len(stored()) == len(expected) - 5 + 3
