"""Ownership (issue 29): a project owns what it first writes; another project is refused.

On a real DVC store and on SQLite and PostgreSQL: a refused publish writes nothing to the
store, the catalog or the online store; a refused registration registers nothing; two first
claims at once leave one owner; a database migrated from 0014 gets its owners from the first
claims after the upgrade.
"""

from __future__ import annotations

import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import inspect, select

from fti.db.engine import get_engine, session_scope
from fti.db.migrate import upgrade
from fti.db.tables import ModelVersion
from fti.errors import OwnershipError
from fti.online import read_online
from fti.ownership import FEATURES, MODEL, claim, list_owners, owner_of
from fti.registry.versions import register_version
from fti.store.catalog import list_versions
from fti.store.registry_repo import init_store
from fti.store.tagged import publish_cataloged
from fti.store.versions import FeatureStore
from tests.integration.test_database import lineage

GROUP, DAY = "customer_profile", date(2026, 2, 1)


def partition(value: int) -> pa.Table:
    return pa.table(
        {
            "entity": pa.array(range(3), pa.int64()),
            "feature_date": pa.array([DAY] * 3, pa.date32()),
            "x": pa.array([value] * 3, pa.int64()),
        }
    )


def head(store: FeatureStore) -> str:
    return subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=store.path, capture_output=True, text=True, check=True
    ).stdout


def test_a_project_cannot_publish_a_group_another_project_owns(tmp_path: Path, db_url: str) -> None:
    init_store(tmp_path / "store", str(tmp_path / "remote"))
    store = FeatureStore(tmp_path / "store")

    def publish(value: int, project: str, kind: str = "features") -> int:
        keys = {GROUP: "entity"}
        return publish_cataloged(
            store,
            db_url,
            GROUP,
            {DAY: partition(value)},
            "m",
            f"run-{project}",
            kind,
            keys,
            project,
        ).version

    assert publish(1, "a") == 1
    before = head(store)
    for kind in ("features", "labels"):  # one name in the store, whichever kind b calls it
        with pytest.raises(OwnershipError) as refused:
            publish(2, "b", kind)
        assert str(refused.value) == (
            "feature group 'customer_profile' belongs to project 'a'; project 'b' may read it "
            "(declare it as read from 'a'), not publish it"
        )
        assert not refused.value.retry_helps
    assert store.versions(GROUP) == [1] and head(store) == before
    assert set(store.read(GROUP, 1).column("x").to_pylist()) == {1}
    with session_scope(db_url) as session:
        assert [row.version for row in list_versions(session, GROUP)] == [1]
        assert owner_of(session, FEATURES, GROUP) == "a"
    held = read_online(db_url, GROUP, ["0", "1", "2"], ["x"])
    assert held.version == 1 and set(held.rows["x"]) == {1}
    assert publish(3, "a") == 2  # the owner's claim again: nothing to refuse


def test_a_project_cannot_register_a_model_another_project_owns(db_url: str) -> None:
    with session_scope(db_url, write=True) as session:
        assert register_version(session, "churn", "a", **lineage()).version == 1
        assert register_version(session, "churn", "a", **lineage()).version == 2
    with pytest.raises(OwnershipError, match="model 'churn' belongs to project 'a'; project 'b'"):
        with session_scope(db_url, write=True) as session:
            register_version(session, "churn", "b", **lineage())
    with session_scope(db_url) as session:
        versions = session.scalars(select(ModelVersion.version).where(ModelVersion.name == "churn"))
        assert sorted(versions) == [1, 2]
        assert [(o.kind, o.name, o.project) for o in list_owners(session)] == [
            (MODEL, "churn", "a")
        ]


def claim_as(db_url: str, project: str) -> str | None:
    """Claim the group for ``project``; the owner that refused it, or None when it won."""
    try:
        with session_scope(db_url, write=True) as session:
            claim(session, FEATURES, GROUP, project, f"run-{project}")
    except OwnershipError as exc:
        return str(exc).split("'")[3]  # "... belongs to project '<owner>'; ..."
    return None


def test_of_first_claims_at_once_one_wins_and_the_others_name_it(db_url: str) -> None:
    projects = [f"p{i}" for i in range(8)]
    with ThreadPoolExecutor(len(projects)) as pool:
        refused = dict(
            zip(projects, pool.map(lambda p: claim_as(db_url, p), projects), strict=True)
        )
    winners = [p for p, owner in refused.items() if owner is None]
    assert len(winners) == 1
    assert set(refused.values()) == {None, winners[0]}
    with session_scope(db_url) as session:
        assert owner_of(session, FEATURES, GROUP) == winners[0]


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_claim_waits_for_a_first_claim_in_flight_and_is_refused_when_it_commits(
    db_url: str,
) -> None:
    """The second of two first claims blocks on the first's row until it commits, then reads
    its owner: an insert-or-conflict, not a read that both claims would pass."""
    outcome: list[str | None] = []
    with session_scope(db_url, write=True) as session:
        claim(session, FEATURES, GROUP, "a", "run-a")
        second = threading.Thread(target=lambda: outcome.append(claim_as(db_url, "b")))
        second.start()
        second.join(timeout=1.0)
        assert second.is_alive()  # waiting for a's transaction
    second.join(timeout=30)
    assert outcome == ["a"]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_at_0014(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fti.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url, "0014")
    return url


def test_names_written_before_migration_0015_are_taken_by_the_first_claim(
    db_at_0014: str,
) -> None:
    url = db_at_0014
    with session_scope(url, write=True) as session:  # a model 0014's fti registered
        session.add(ModelVersion(name="churn", version=1, **lineage(), created_at=DAY))
    upgrade(url)
    assert "owners" in inspect(get_engine(url)).get_table_names()
    with session_scope(url, write=True) as session:
        assert owner_of(session, MODEL, "churn") is None  # no owner guessed
        assert register_version(session, "churn", "b", **lineage()).version == 2
        assert owner_of(session, MODEL, "churn") == "b"
