"""Retention (`fti gc`): it keeps what it must and frees what it may, on SQLite and PostgreSQL,
and a gc killed at any point leaves a readable store that the next gc finishes.

The store is real (git tags, a DVC cache and remote), the registry and catalog are the real
tables; the kills are real SIGKILLs (``crashing_gc``).
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml
from sqlalchemy import delete, select
from typer.testing import CliRunner

from fti import ownership
from fti.cli import app
from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion, ModelVersion, Owner, PredictionRun
from fti.errors import RegistryError
from fti.pipelines.retention import collect_garbage, plan_retention
from fti.registry import aliases
from fti.registry.versions import as_dict, find_identical, register_version
from fti.retention.store import GC_IN_PROGRESS, drop_versions
from fti.settings import Settings
from fti.setup import initialise
from fti.store import tagged
from fti.store.catalog import list_versions
from fti.store.registry_repo import git
from fti.store.versions import FeatureStore
from fti.training.artifacts import store_artifact
from tests.conftest import MANIFEST, PARAMS
from tests.integration import crashing_gc, crashing_publisher
from tests.integration.crashing_publisher import GROUP, KEYS, OTHER
from tests.integration.test_publish_kills import online

D1, D2, D3 = date(2026, 2, 1), date(2026, 2, 2), date(2026, 2, 3)
# (group, version): the partitions it writes. Versions 1-3 of GROUP each replace a partition
# the next one replaces again, so a dropped version has objects of its own.
HISTORY = [
    (GROUP, {D1: 1}),
    (GROUP, {D1: 2}),
    (GROUP, {D2: 3}),
    (GROUP, {D1: 4, D3: 4}),
    (OTHER, {D1: 5}),
    (OTHER, {D1: 6}),
]


def partition(day: date, value: int) -> pa.Table:
    return crashing_publisher.partition(day, value, rows=50)


def publish_history(
    store: FeatureStore, db_url: str, period: str = "day"
) -> dict[tuple[str, int], pa.Table]:
    """Publish ``HISTORY`` (stored by ``period``); every version as a reader reads it."""
    for n, (group, days) in enumerate(HISTORY):
        parts = {day: partition(day, value) for day, value in days.items()}
        crashing_publisher.publish(store, db_url, parts, f"run-{n}", group, period)
    return {
        (group, version): store.read(group, version)
        for group, versions in store.every_version().items()
        for version in versions
    }


def cache_objects(store: FeatureStore) -> set[str]:
    root = store.path / ".dvc" / "cache" / "files" / "md5"
    return {f"{p.parent.name}{p.name}" for p in root.glob("*/*")}


def dir_object(store: FeatureStore, group: str, version: int) -> str:
    text = git(store.path, "show", f"{group}/v{version}:data/{group}.dvc")
    return str(yaml.safe_load(text)["outs"][0]["md5"])


def assert_readable(store_path: Path, before: dict[tuple[str, int], pa.Table], db_url: str) -> None:
    """Every version still tagged reads whole from the local cache alone (the DVC remote moved
    away), as it read before the gc; the catalog lists no version without a tag; the newest
    version of each group is online."""
    remote = store_path.parent / "remote"
    remote.rename(remote.with_name("remote-away"))
    try:
        reader = FeatureStore(store_path)
        tags = reader.every_version()
        for group, versions in tags.items():
            for version in versions:
                assert reader.read(group, version).equals(before[(group, version)])
    finally:
        remote.with_name("remote-away").rename(remote)
    with session_scope(db_url) as session:
        listed = {(r.group_name, r.version) for r in list_versions(session)}
    assert listed <= {(g, v) for g, vs in tags.items() for v in vs}
    assert online(db_url)[0] == max(tags[GROUP])


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    from fti.store.registry_repo import init_store

    init_store(tmp_path / "store", str(tmp_path / "remote"))
    return FeatureStore(tmp_path / "store")


# ---- the feature store, killed at each step ---------------------------------------------------
@pytest.mark.parametrize("step", crashing_gc.STEPS)
def test_a_gc_killed_at_any_step_leaves_a_readable_store_and_the_next_gc_finishes(
    store: FeatureStore, db_url: str, tmp_path: Path, step: str
) -> None:
    before = publish_history(store, db_url)
    dropped_dir = dir_object(store, GROUP, 1)
    assert dropped_dir in cache_objects(store)

    crashing_gc.run_killed(store, db_url, tmp_path / "staging", step)
    assert_readable(store.path, before, db_url)

    plan = drop_versions(store, db_url, tmp_path / "staging", keep=1, keys=KEYS)
    assert store.every_version() == {GROUP: [4], OTHER: [2]}
    assert set(plan.dropped) <= {(GROUP, 1), (GROUP, 2), (GROUP, 3), (OTHER, 1)}
    with session_scope(db_url) as session:
        rows = session.execute(select(FeatureVersion.group_name, FeatureVersion.version))
        assert sorted(rows.all()) == [(GROUP, 4), (OTHER, 2)]  # no row of a dropped version
    assert dropped_dir not in cache_objects(store)  # dvc gc ran to the end
    assert not (store.path / GC_IN_PROGRESS).exists()
    assert_readable(store.path, before, db_url)
    # The store goes on: the next publish makes version 5 on top of what was kept.
    crashing_publisher.publish(store, db_url, {D3: partition(D3, 7)}, "after", GROUP)
    assert store.every_version()[GROUP] == [4, 5]


def test_a_projects_gc_drops_versions_of_its_own_groups_only(
    store: FeatureStore, db_url: str, tmp_path: Path
) -> None:
    """Two projects share the store: one's gc leaves the other's groups as they were."""
    before = publish_history(store, db_url)
    plan = drop_versions(store, db_url, tmp_path / "staging", keep=1, keys=KEYS, theirs=(OTHER,))
    assert plan.dropped == [(GROUP, 1), (GROUP, 2), (GROUP, 3)]
    assert store.every_version() == {GROUP: [4], OTHER: [1, 2]}
    assert_readable(store.path, before, db_url)  # the other project's versions too


def test_a_gc_of_groups_stored_by_month_leaves_the_kept_versions_objects_only(
    store: FeatureStore, db_url: str, tmp_path: Path
) -> None:
    """Each version of a month-stored group rewrites its month's file: the dropped versions'
    files leave the cache, the kept ones' stay and read as before."""
    before = publish_history(store, db_url, "month")
    drop_versions(store, db_url, tmp_path / "staging", keep=1, keys=KEYS)
    assert store.every_version() == {GROUP: [4], OTHER: [2]}
    kept = store.objects(GROUP, 4) | store.objects(OTHER, 2)
    assert cache_objects(store) == kept and len(kept) == 4  # a .dir and a month file each
    assert_readable(store.path, before, db_url)


def test_the_dvc_remote_is_pruned_only_when_asked(
    store: FeatureStore, db_url: str, tmp_path: Path
) -> None:
    before = publish_history(store, db_url)
    remote = tmp_path / "remote" / "files" / "md5"
    gone = dir_object(store, GROUP, 1)
    drop_versions(store, db_url, tmp_path / "staging", keep=1, keys=KEYS)
    assert (remote / gone[:2] / gone[2:]).exists()  # the remote keeps every version's objects

    crashing_publisher.publish(store, db_url, {D3: partition(D3, 8)}, "v5", GROUP)
    newest = {**before, (GROUP, 5): store.read(GROUP, 5)}
    gone = dir_object(store, GROUP, 4)
    drop_versions(store, db_url, tmp_path / "staging", keep=1, keys=KEYS, remote=True)
    assert not (remote / gone[:2] / gone[2:]).exists()
    shutil.rmtree(store.path / ".dvc" / "cache")  # a reader on another machine: from the remote
    reader = FeatureStore(store.path)
    assert reader.read(GROUP, 5).equals(newest[(GROUP, 5)])
    assert reader.read(OTHER, 2).equals(newest[(OTHER, 2)])


# ---- the whole gc over the registry, the store and staging -------------------------------------
def lineage(groups: dict[str, int], **extra: Any) -> dict[str, Any]:
    spine = next(iter(groups))
    return {
        "artifact_uri": "",
        "artifact_sha256": "",
        "estimator": "LogisticRegression",
        "params": {},
        "task": "binary",
        "metric": "roc_auc",
        "metrics": {"roc_auc": 0.7},
        "feature_group": spine,
        "feature_version": groups[spine],
        "feature_versions": groups,
        "features": [{"name": "x", "dtype": "int64", "group": spine}],
        "label": "y",
        "train_start": D1,
        "train_end": D3,
        "n_train": 10,
        "n_holdout": 5,
        "library_versions": {},
        "code_version": "test",
        "run_id": "r",
        "promotion": None,
        **extra,
    }


@pytest.fixture
def gc_settings(tmp_path: Path, db_url: str) -> Settings:
    params = yaml.safe_load(PARAMS.read_text())
    params["retention"] = {"keep_model_versions": 1, "keep_group_versions": 1, "rerun_days": 0}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    settings = Settings(
        home=tmp_path / "home",
        db_url=db_url,
        params_file=tmp_path / "params.yaml",
        manifest_path=MANIFEST,
    )
    initialise(settings)
    return settings


def register_models(settings: Settings) -> dict[int, Path]:
    """churn v1..v5: v1 champion once, v2 scored, v3 and v4 neither, v5 the newest and champion.
    v3's artifact is the same file as v5's. Returns each version's artifact."""
    trained_on = {1: {GROUP: 1}, 2: {GROUP: 1}, 3: {GROUP: 2}, 4: {GROUP: 3}, 5: {GROUP: 4}}
    files = {}
    with session_scope(settings.db_url, write=True) as session:
        for version, groups in trained_on.items():
            content = b"model-5" if version == 3 else f"model-{version}".encode()
            path, digest = store_artifact(content, settings.artifacts_path)
            files[version] = path
            register_version(
                session, "churn", **lineage(groups, artifact_uri=str(path), artifact_sha256=digest)
            )
        aliases.set_alias(session, "churn", aliases.CHAMPION, 1, "test", "first")
        aliases.set_alias(session, "churn", aliases.CHAMPION, 5, "test", "better")
        session.add(
            PredictionRun(
                run_id="scored",
                model_name="churn",
                model_version=2,
                feature_group=GROUP,
                feature_version=1,
                feature_versions={GROUP: 1},
                as_of_date=D3,
                status="succeeded",
                row_count=50,
                started_at=datetime.now(UTC),
            )
        )
    return files


def test_gc_keeps_what_it_must_and_frees_what_it_may(gc_settings: Settings) -> None:
    s = gc_settings
    store = FeatureStore(s.store_path)
    before = publish_history(store, s.db_url)
    files = register_models(s)

    plan = plan_retention(s)  # a dry run changes nothing
    assert [r["what"] for r in plan.removals() if r["kind"] == "model version"] == [
        "churn v3",
        "churn v4",
    ]
    assert list(plan.models.artifacts) == [str(files[4])]  # v3's file is v5's too
    assert plan.groups.dropped == [(GROUP, 2), (GROUP, 3), (OTHER, 1)]
    assert plan.models.kept[("churn", 1)] == ["was champion"]
    assert plan.models.kept[("churn", 2)] == ["named by predictions"]
    assert store.every_version() == {GROUP: [1, 2, 3, 4], OTHER: [1, 2]}
    assert all(path.exists() for path in files.values())

    # What another project owns is its own gc's: the model and the group it claimed stay whole.
    with session_scope(s.db_url, write=True) as session:
        ownership.claim(session, ownership.MODEL, "churn", "another_team", "test")
        ownership.claim(session, ownership.FEATURES, OTHER, "another_team", "test")
    theirs = plan_retention(s)
    assert theirs.models.pruned == [] and theirs.models.artifacts == {}
    # Its unpruned versions keep what they read (GROUP v2, v3); OTHER is another team's.
    assert theirs.groups.dropped == []
    assert set(theirs.groups.kept) == {(GROUP, 1), (GROUP, 2), (GROUP, 3), (GROUP, 4)}
    with session_scope(s.db_url, write=True) as session:  # unclaimed again: any project's gc
        session.execute(delete(Owner))

    done = collect_garbage(s)
    assert done["model_versions_pruned"] == 2 and done["group_versions_dropped"] == 3
    with session_scope(s.db_url) as session:
        rows = {r.version: r for r in session.scalars(select(ModelVersion))}
    assert sorted(rows) == [1, 2, 3, 4, 5]  # registry rows stay
    assert [v for v, r in sorted(rows.items()) if as_dict(r)["pruned_at"]] == [3, 4]
    assert [v for v, path in sorted(files.items()) if path.exists()] == [1, 2, 3, 5]
    assert store.every_version() == {GROUP: [1, 4], OTHER: [2]}
    assert_readable(store.path, before, s.db_url)

    with (
        session_scope(s.db_url, write=True) as session,
        pytest.raises(RegistryError, match="pruned"),
    ):
        aliases.set_alias(session, "churn", aliases.CHAMPION, 4, "test", "rollback too far")
    with session_scope(s.db_url) as session:  # a retraining on v4's inputs trains again
        kept = lineage({GROUP: 3})
        assert (
            find_identical(
                session, "churn", {GROUP: 3}, None, None, kept["features"], {}, "test", D1, D3
            )
            is None
        )

    again = collect_garbage(s)  # nothing left to free
    assert again["model_versions_pruned"] == again["group_versions_dropped"] == 0
    assert again["artifact_bytes"] == again["staging_bytes"] == 0


def test_a_gc_killed_between_pruning_and_removing_artifacts_is_finished_by_the_next(
    gc_settings: Settings,
) -> None:
    s = gc_settings
    publish_history(FeatureStore(s.store_path), s.db_url)
    files = register_models(s)
    crashing_gc.run_whole_killed(s, "gc.pruned")
    with session_scope(s.db_url) as session:
        rows = {r.version: r for r in session.scalars(select(ModelVersion))}
    assert [v for v, r in sorted(rows.items()) if r.pruned_at is not None] == [3, 4]
    # Marked first: no version that looks loadable has lost its file.
    assert all(files[v].exists() for v, r in rows.items() if r.pruned_at is None)
    assert files[4].exists()  # not removed yet

    collect_garbage(s)
    assert [v for v, path in sorted(files.items()) if path.exists()] == [1, 2, 3, 5]


def test_fti_gc_dry_run_lists_and_a_bad_setting_is_one_line(
    gc_settings: Settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    s = gc_settings
    store = FeatureStore(s.store_path)
    publish_history(store, s.db_url)
    for key, value in {
        "FTI_HOME": s.home,
        "FTI_DB_URL": s.db_url,
        "FTI_PARAMS_FILE": s.params_file,
        "FTI_MANIFEST_PATH": MANIFEST,
    }.items():
        monkeypatch.setenv(key, str(value))
    runner = CliRunner()
    listed = runner.invoke(app, ["gc", "--dry-run", "--json"])
    assert listed.exit_code == 0, listed.output
    removals = json.loads(listed.output)["removals"]
    assert [r["what"] for r in removals if r["kind"] == "group version"] == [
        f"{GROUP}/v1",
        f"{GROUP}/v2",
        f"{GROUP}/v3",
        f"{OTHER}/v1",
    ]
    assert store.every_version() == {GROUP: [1, 2, 3, 4], OTHER: [1, 2]}

    params = yaml.safe_load(s.params_file.read_text())
    params["retention"]["keep_group_versions"] = 0
    s.params_file.write_text(yaml.safe_dump(params))
    refused = runner.invoke(app, ["gc"])
    assert refused.exit_code == 1
    assert refused.output.strip().splitlines() == [
        f"error: {s.params_file}: retention.keep_group_versions = 0: must be a whole number >= 1"
    ]
    assert store.every_version() == {GROUP: [1, 2, 3, 4], OTHER: [1, 2]}


def test_partition_statistics_of_dropped_versions_move_to_the_next_kept_one(
    store: FeatureStore, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later publish finds the statistics of every partition it keeps in the catalog, so it
    reads none of them again."""
    publish_history(store, db_url)
    drop_versions(store, db_url, tmp_path / "staging", keep=1, keys=KEYS)
    with session_scope(db_url) as session:
        row = session.scalar(select(FeatureVersion).where(FeatureVersion.group_name == GROUP))
        assert row is not None and row.version == 4
        assert sorted(row.partition_statistics) == [d.isoformat() for d in (D1, D2, D3)]
        assert row.partition_statistics[D2.isoformat()]["x"]["max"] == 3  # v3 wrote D2

    read: list[date] = []
    original = tagged.read_partition_in_work_tree

    def counting(store_: FeatureStore, group: str, day: date) -> pa.Table:
        read.append(day)
        return original(store_, group, day)

    monkeypatch.setattr(tagged, "read_partition_in_work_tree", counting)
    later = D3 + timedelta(days=1)
    crashing_publisher.publish(store, db_url, {later: partition(later, 9)}, "v5")
    assert read == []  # every kept partition's statistics were in the catalog
    with session_scope(db_url) as session:
        v5 = session.scalar(
            select(FeatureVersion).where(
                FeatureVersion.group_name == GROUP, FeatureVersion.version == 5
            )
        )
        assert v5 is not None and v5.row_count == 4 * 50 and v5.statistics["x"]["max"] == 9
