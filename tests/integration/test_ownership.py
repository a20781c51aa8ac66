"""Ownership (issue 29): a project owns what it first writes; another project is refused.

On a real DVC store and on SQLite and PostgreSQL: a refused publish writes nothing to the
store, the catalog or the online store; a refused registration registers nothing; two first
claims at once leave one owner; a database migrated from 0014 gets its owners from the first
claims after the upgrade.
"""

from __future__ import annotations

import json
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from fti.cli import app
from fti.db.engine import get_engine, session_scope
from fti.db.migrate import upgrade
from fti.db.tables import FeatureVersion, ModelVersion, ValidationRun
from fti.errors import OwnershipError
from fti.online import read_online
from fti.ownership import FEATURES, MODEL, SOURCE, claim, list_owners, owner_of
from fti.pipelines.features import validate_raw_events
from fti.registry.versions import register_version
from fti.store.catalog import list_versions
from fti.store.registry_repo import init_store
from fti.store.tagged import publish_cataloged
from fti.store.versions import FeatureStore
from tests.conftest import project_home
from tests.integration.test_database import lineage
from tests.projects import weather

GROUP, DAY = "customer_profile", date(2026, 2, 1)
WEATHER = "tests.projects.weather:project"  # project "weather": source readings, model rain
TRAIN = {"train": {"rain": {"C": 0.5}, "rain_class": {"C": 0.5}}}
runner = CliRunner()


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


def every_file(root: Path) -> set[str]:
    """The files under ``root`` but locks and SQLite's (a publish takes and drops its lock)."""
    return {
        str(p.relative_to(root))
        for p in root.rglob("*")
        if p.is_file() and not p.name.endswith(".lock") and "fti.db" not in p.name
    }


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
    files = every_file(tmp_path)  # the work tree, git, the DVC cache and remote
    for kind in ("features", "labels"):  # one name in the store, whichever kind b calls it
        with pytest.raises(OwnershipError) as refused:
            publish(2, "b", kind)
        assert str(refused.value) == (
            "feature group 'customer_profile' belongs to project 'a'; project 'b' may read it "
            "(declare it as read from 'a'), not publish it"
        )
        assert not refused.value.retry_helps
    assert store.versions(GROUP) == [1] and head(store) == before
    assert every_file(tmp_path) == files  # refused before a partition was written or pushed
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


def test_a_source_another_project_owns_is_not_validated_and_fti_check_names_it(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    weather.generate(tmp_path / "raw", date(2025, 1, 1), date(2025, 1, 2), missing_share=0.0)
    s = project_home(tmp_path, db_url, monkeypatch, WEATHER, tmp_path / "raw", TRAIN)
    monkeypatch.setenv("FTI_MANIFEST_PATH", str(tmp_path / "manifest.json"))  # not the shared one
    with session_scope(db_url, write=True) as session:
        claim(session, SOURCE, "readings", "b", "run-b")
    with pytest.raises(OwnershipError, match="source 'readings' belongs to project 'b'"):
        validate_raw_events(date(2025, 1, 1), date(2025, 1, 1), "night", s)
    with session_scope(db_url) as session:
        assert session.scalar(select(ValidationRun.id)) is None
    assert not list((s.staging_path).rglob("*.parquet"))
    checked = runner.invoke(app, ["check"])
    assert checked.exit_code == 1, checked.output
    assert (
        "error: source 'readings' belongs to project 'b'; project 'weather' may not validate it"
        in checked.stderr
    )


def catalog_row(group: str, kind: str) -> FeatureVersion:
    return FeatureVersion(
        group_name=group,
        version=1,
        kind=kind,
        git_tag=f"{group}/v1",
        git_rev="rev",
        dvc_md5="md5",
        schema={},
        schema_hash="h",
        row_count=4,
        partitions=1,
        min_date=DAY,
        max_date=DAY,
        statistics={},
        changed_dates=[DAY.isoformat()],
        run_id="r",
        created_at=DAY,
    )


def test_listings_and_health_show_the_owner_and_filter_by_project(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project_home(tmp_path, db_url, monkeypatch, WEATHER, tmp_path / "raw", TRAIN)
    with session_scope(db_url, write=True) as session:
        for group, kind, project in [
            ("daily_weather", "features", "weather"),
            ("rain_tomorrow", "labels", "weather"),
            ("customer_profile", "features", "b"),
        ]:
            claim(session, kind, group, project, "r")
            session.add(catalog_row(group, kind))
        register_version(session, "rain", "weather", **lineage())
        register_version(session, "churn", "b", **lineage())

    def listed(*args: str) -> list[dict[str, object]]:
        result = runner.invoke(app, [*args, "--json"])
        assert result.exit_code in (0, 1), result.output  # health: 1 when something is stale
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    groups = listed("features", "list")
    assert [(g["group"], g["owner"]) for g in groups] == [
        ("customer_profile", "b"),
        ("daily_weather", "weather"),
        ("rain_tomorrow", "weather"),
    ]
    assert [g["group"] for g in listed("features", "list", "--project", "b")] == [
        "customer_profile"
    ]
    assert [(m["name"], m["owner"]) for m in listed("models", "list")] == [
        ("churn", "b"),
        ("rain", "weather"),
    ]
    assert [m["name"] for m in listed("models", "list", "--project", "weather")] == ["rain"]
    shown = runner.invoke(app, ["models", "show", "churn", "--version", "1", "--json"])
    assert json.loads(shown.stdout)["owner"] == "b", shown.output
    now = "2025-01-03T12:00:00+00:00"
    every = listed("monitor", "health", "--now", now)
    owners = {(f["name"], f["owner"]) for f in every["freshness"]}  # type: ignore[index]
    assert ("daily_weather", "weather") in owners and ("rain_class_tomorrow", None) in owners
    mine = listed("monitor", "health", "--now", now, "--project", "weather")
    names = [f["name"] for f in mine["freshness"]]  # type: ignore[index]
    assert sorted(names) == ["daily_weather", "rain", "rain_tomorrow"]
    assert listed("monitor", "health", "--now", now, "--project", "b")["freshness"] == []  # type: ignore[index]
