"""The feature store on a real DVC registry: immutable versions, tags, remote, catalog."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from fti.db.engine import session_scope
from fti.db.migrate import upgrade
from fti.errors import StoreError, VersionNotFoundError
from fti.store import versions
from fti.store.catalog import list_versions
from fti.store.registry_repo import init_store, open_dvc
from fti.store.tagged import publish_cataloged
from fti.store.versions import FeatureStore
from tests.integration import crashing_publisher

GROUP = crashing_publisher.GROUP
ROOT = Path(__file__).resolve().parents[2]
DAY = date(2026, 2, 1)


def partition(day: date, value: int, rows: int = 3) -> pa.Table:
    return pa.table(
        {
            "entity": pa.array(range(rows), pa.int64()),
            "feature_date": pa.array([day] * rows, pa.date32()),
            "x": pa.array([value] * rows, pa.int64()),
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> FeatureStore:
    init_store(tmp_path / "store", str(tmp_path / "remote"))
    return FeatureStore(tmp_path / "store")


def test_old_versions_read_their_own_data_after_later_ones(
    store: FeatureStore, tmp_path: Path
) -> None:
    for version in range(1, 6):  # v1..v5: each adds a day and rewrites the first day's values
        day = DAY + timedelta(days=version - 1)
        published = store.publish(
            GROUP, {DAY: partition(DAY, version), day: partition(day, version)}, f"v{version}"
        )
        assert published.version == version
    assert store.versions(GROUP) == [1, 2, 3, 4, 5]

    first = store.read(GROUP, 1)
    assert first.num_rows == 3 and set(first.column("x").to_pylist()) == {1}
    assert store.partition_dates(GROUP, 1) == [DAY]
    latest = store.read(GROUP, store.resolve(GROUP, "latest"))
    assert latest.num_rows == 15
    assert set(store.read(GROUP, 5, dates=[DAY]).column("x").to_pylist()) == {5}
    assert set(
        store.read(GROUP, 3, columns=["x"], dates=[DAY + timedelta(days=1)]).column("x").to_pylist()
    ) == {2}
    some = store.read(GROUP, 5, ["entity", "x"], [DAY], where=pc.field("entity").isin([0, 2]))
    assert some.to_pydict() == {"entity": [0, 2], "x": [5, 5]}


def test_versions_are_git_tags_backed_by_the_dvc_remote(
    store: FeatureStore, tmp_path: Path
) -> None:
    published = store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    tags = subprocess.run(
        ["git", "tag"], cwd=store.path, capture_output=True, text=True, check=True
    ).stdout
    assert f"{GROUP}/v1" in tags.split()
    assert published.dvc_md5.endswith(".dir")
    remote_files = [p for p in (tmp_path / "remote").rglob("*") if p.is_file()]
    assert len(remote_files) >= 2  # the .dir manifest and the partition file were pushed


def test_resolve_names_and_errors(store: FeatureStore) -> None:
    with pytest.raises(VersionNotFoundError, match="no versions yet"):
        store.resolve(GROUP, "latest")
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    assert (
        store.resolve(GROUP, "v1")
        == store.resolve(GROUP, f"{GROUP}/v1")
        == store.resolve(GROUP, 1)
        == 1
    )
    with pytest.raises(VersionNotFoundError, match="no version '7'"):
        store.resolve(GROUP, "7")


def test_adding_a_column_makes_a_new_schema_older_versions_keep_theirs(
    store: FeatureStore,
) -> None:
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    later = DAY + timedelta(days=1)
    wider = partition(later, 2).append_column("y", pa.array([1.0, 2.0, 3.0]))
    assert store.publish(GROUP, {later: wider}, "adds y").version == 2

    assert store.schema(GROUP, 1).names == ["entity", "feature_date", "x"]
    assert store.schema(GROUP, 2).names == ["entity", "feature_date", "x", "y"]
    v2 = store.read(GROUP, 2, columns=["feature_date", "y"]).to_pylist()
    assert sorted((r["feature_date"], r["y"]) for r in v2) == [
        (DAY, None),  # the older partition has no y: read as null
        (DAY, None),
        (DAY, None),
        (later, 1.0),
        (later, 2.0),
        (later, 3.0),
    ]
    # A model trained on v1 reads exactly its columns from v2, with the same types.
    old_columns = store.read(GROUP, 2, columns=["entity", "x"])
    assert old_columns.schema == store.schema(GROUP, 1).remove(1)
    assert old_columns.num_rows == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["x"]), "column 'x' \\(int64\\) is missing"),
        (
            lambda t: t.set_column(2, "x", t.column("x").cast(pa.float64())),
            "column 'x' changes type from int64 to double",
        ),
    ],
)
def test_dropping_or_retyping_a_column_is_refused_and_nothing_changes(
    store: FeatureStore, change, message: str
) -> None:  # type: ignore[no-untyped-def]
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    later = DAY + timedelta(days=1)
    with pytest.raises(StoreError, match=message):
        store.publish(GROUP, {later: change(partition(later, 2))}, "bad")
    assert store.versions(GROUP) == [1]
    assert store.partition_dates(GROUP, 1) == [DAY]
    assert not (store.group_dir(GROUP) / "feature_date=2026-02-02").exists()
    assert store.publish(GROUP, {later: partition(later, 2)}, "good").version == 2


def test_partitions_of_one_publish_must_agree(store: FeatureStore) -> None:
    later = DAY + timedelta(days=1)
    other = partition(later, 2).append_column("y", pa.array([1.0, 2.0, 3.0]))
    with pytest.raises(StoreError, match="do not share one schema"):
        store.publish(GROUP, {DAY: partition(DAY, 1), later: other}, "mixed")
    assert store.versions(GROUP) == []


def test_unsafe_group_names_are_refused(store: FeatureStore) -> None:
    for name in ["../escape", "Upper", "a/b", ""]:
        with pytest.raises(StoreError, match="not allowed"):
            store.publish(name, {DAY: partition(DAY, 1)}, "x")


def test_missing_columns_name_the_version(store: FeatureStore) -> None:
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    with pytest.raises(StoreError, match="activity v1 has no column.*nope"):
        store.read(GROUP, 1, columns=["nope"])


@pytest.fixture
def catalog(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'fti.db'}"
    upgrade(url)
    return url


# After "tagged" the version is published (its tag is the commit point): test_publish_kills.
@pytest.mark.parametrize("step", [s for s in crashing_publisher.STEPS if s != "tagged"])
def test_a_publish_killed_at_any_step_leaves_the_previous_version_and_the_next_one_works(
    store: FeatureStore, catalog: str, tmp_path: Path, step: str
) -> None:
    first = {crashing_publisher.FIRST: crashing_publisher.partition(crashing_publisher.FIRST, 1)}
    assert crashing_publisher.publish(store, catalog, first, "v1") == 1
    before = store.read(GROUP, 1)

    crashing_publisher.run_killed(store, catalog, step)

    # A reader (a fresh process would do the same) sees version 1, whole.
    reader = FeatureStore(store.path)
    assert reader.versions(GROUP) == [1]
    assert reader.read(GROUP, 1).equals(before)
    with session_scope(catalog) as session:
        assert [r.version for r in list_versions(session, GROUP)] == [1]

    # The next publish recovers by itself and publishes the same change normally.
    again = {day: crashing_publisher.partition(day, 3) for day in crashing_publisher.NEW_DAYS}
    assert crashing_publisher.publish(reader, catalog, again, "v2") == 2
    assert reader.versions(GROUP) == [1, 2]
    assert reader.read(GROUP, 1).equals(before)
    v2 = reader.read(GROUP, 2)
    assert v2.num_rows == 3 * 2_000
    assert sorted(
        set(zip(*v2.select(["feature_date", "x"]).to_pydict().values(), strict=True))
    ) == [
        (crashing_publisher.FIRST, 1),
        *((day, 3) for day in crashing_publisher.NEW_DAYS),
    ]
    with session_scope(catalog) as session:
        rows = list_versions(session, GROUP)
        assert [(r.version, r.row_count, r.partitions) for r in rows] == [
            (1, 2_000, 1),
            (2, 6_000, 3),
        ]
        assert rows[1].statistics["x"]["mean"] == pytest.approx((1 + 3 + 3) / 3)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=store.path, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    # Everything v2 names is on the remote: a clone with an empty cache reads it.
    assert read_from_fresh_clone(store, tmp_path / "clone", 2).equals(v2)


def read_from_fresh_clone(store: FeatureStore, clone: Path, version: int) -> pa.Table:
    subprocess.run(["git", "clone", "-q", str(store.path), str(clone)], check=True)
    fresh = FeatureStore(clone)
    assert not (clone / ".dvc" / "cache").exists()
    return fresh.read(GROUP, version)


def publish_days(store_path: str, db_url: str, days: list[date]) -> list[int]:
    """One publisher process: a version per day, each adding that day's partition."""
    store = FeatureStore(Path(store_path))
    return [
        crashing_publisher.publish(
            store, db_url, {day: crashing_publisher.partition(day, day.day, 500)}, f"add {day}"
        )
        for day in days
    ]


def test_concurrent_publishers_are_serialised_with_contiguous_versions(
    store: FeatureStore, catalog: str
) -> None:
    days = [DAY + timedelta(days=i) for i in range(8)]
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def read_latest() -> None:  # a reader never sees a version half made
        reader = FeatureStore(store.path)
        while not done.is_set():
            known = reader.versions(GROUP)
            if known:
                seen.append((known[-1], len(reader.partition_dates(GROUP, known[-1]))))

    reader = threading.Thread(target=read_latest)
    reader.start()
    try:
        with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(
                pool.map(
                    publish_days,
                    [str(store.path)] * 4,
                    [catalog] * 4,
                    [days[i::4] for i in range(4)],
                )
            )
    finally:
        done.set()
        reader.join()
    assert sorted(v for versions in results for v in versions) == list(range(1, 9))
    assert store.versions(GROUP) == list(range(1, 9))
    for version in range(1, 9):  # each version = its predecessor + one day: nothing lost
        assert len(store.partition_dates(GROUP, version)) == version
    assert store.partition_dates(GROUP, 8) == days
    assert [s for s in seen if s[0] != s[1]] == []
    with session_scope(catalog) as session:
        rows = list_versions(session, GROUP)
        assert [(r.version, r.partitions, r.row_count) for r in rows] == [
            (v, v, 500 * v) for v in range(1, 9)
        ]


def test_a_second_machine_with_an_empty_cache_reads_an_old_version_from_the_remote(
    store: FeatureStore, tmp_path: Path
) -> None:
    for version in (1, 2, 3):
        store.publish(GROUP, {DAY: partition(DAY, version)}, f"v{version}")
    assert read_from_fresh_clone(store, tmp_path / "second", 1).equals(store.read(GROUP, 1))


def test_publishing_what_is_already_there_makes_no_new_version(store: FeatureStore) -> None:
    store.publish(GROUP, {DAY: partition(DAY, 1), DAY + timedelta(days=1): partition(DAY, 2)}, "v1")
    again = store.publish(GROUP, {DAY: partition(DAY, 1)}, "a rerun of the first day")
    assert (again.version, again.new, again.changed_dates) == (1, False, [])
    assert store.versions(GROUP) == [1]
    changed = store.publish(GROUP, {DAY: partition(DAY, 5)}, "late data for the first day")
    assert (changed.version, changed.new) == (2, True)
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=store.path, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""


def no_dvc_repo(store: Path) -> None:
    raise AssertionError(f"a read opened a DVC Repo for {store}")


def test_reads_find_cache_objects_without_opening_dvc(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    monkeypatch.setattr(versions, "open_dvc", no_dvc_repo)
    reader = FeatureStore(store.path)
    assert reader.partition_dates(GROUP, 1) == [DAY]
    assert reader.read(GROUP, 1).column("x").to_pylist() == [1, 1, 1]


def test_a_cache_dir_set_in_the_dvc_config_is_where_reads_look(
    store: FeatureStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As `dvc cache dir --local ../../shared-cache` writes it: relative to the .dvc folder.
    (store.path / ".dvc" / "config.local").write_text("[cache]\n    dir = ../../shared-cache\n")
    writer = FeatureStore(store.path)
    writer.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    assert (tmp_path / "shared-cache" / "files" / "md5").is_dir()
    monkeypatch.setattr(versions, "open_dvc", no_dvc_repo)
    assert FeatureStore(store.path).read(GROUP, 1).column("x").to_pylist() == [1, 1, 1]


def test_a_granular_publish_makes_the_tree_a_whole_folder_dvc_add_makes(
    store: FeatureStore,
) -> None:
    days = [DAY + timedelta(days=i) for i in range(3)]
    store.publish(GROUP, {day: partition(day, 1) for day in days}, "v1")
    later = DAY + timedelta(days=5)
    published = store.publish(
        GROUP, {days[1]: partition(days[1], 2), later: partition(later, 2)}, "v2"
    )
    assert store.partition_dates(GROUP, 2) == [*days, later]
    open_dvc(store.path).add([str(store.group_dir(GROUP))])  # DVC hashes the whole folder afresh
    dvc_file = store.group_dir(GROUP).with_suffix(".dvc").read_text()
    assert f"md5: {published.dvc_md5}" in dvc_file


def test_every_object_of_every_version_reaches_the_remote(
    store: FeatureStore, tmp_path: Path
) -> None:
    second, third = DAY + timedelta(days=1), DAY + timedelta(days=2)
    store.publish(GROUP, {DAY: partition(DAY, 1), second: partition(second, 1)}, "v1")
    store.publish(GROUP, {third: partition(third, 2)}, "v2: adds a day")
    store.publish(GROUP, {DAY: partition(DAY, 3)}, "v3: replaces a day")
    for version in (1, 2, 3):
        clone = tmp_path / f"clone{version}"
        assert read_from_fresh_clone(store, clone, version).equals(store.read(GROUP, version))


def test_a_new_empty_remote_gets_the_whole_of_the_next_version(
    store: FeatureStore, tmp_path: Path
) -> None:
    second = DAY + timedelta(days=1)
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "v1")
    with open_dvc(store.path).config.edit() as conf:
        conf["remote"]["storage"]["url"] = str(tmp_path / "new-remote")
    store.publish(GROUP, {second: partition(second, 2)}, "v2 to the new remote")
    # v1's partition is not new in v2, but the new remote never had it: it was pushed too.
    assert read_from_fresh_clone(store, tmp_path / "clone", 2).equals(store.read(GROUP, 2))


def label_partition(day: date, values: list[int]) -> pa.Table:
    return pa.table(
        {
            "entity": pa.array(range(len(values)), pa.int64()),
            "feature_date": pa.array([day] * len(values), pa.date32()),
            "label": pa.array(values, pa.int64()),
        }
    )


def test_label_groups_are_versioned_next_to_feature_groups(
    store: FeatureStore, catalog: str
) -> None:
    """A label group is a group of the same store: its own versions, tags and catalog rows,
    marked ``labels`` in the catalog."""
    labels = "churned"

    def publish(group: str, partitions: dict[date, pa.Table], kind: str) -> int:
        message = f"{kind} {sorted(partitions)}"
        return publish_cataloged(store, catalog, group, partitions, message, "test", kind).version

    later = DAY + timedelta(days=1)
    assert publish(GROUP, {DAY: partition(DAY, 1), later: partition(later, 1)}, "features") == 1
    assert publish(labels, {DAY: label_partition(DAY, [0, 1, 0])}, "labels") == 1
    # The next day's labels mature later: a new label version, the features' stays.
    assert publish(labels, {later: label_partition(later, [1, 1])}, "labels") == 2
    assert store.versions(GROUP) == [1] and store.versions(labels) == [1, 2]
    assert store.partition_dates(labels, 1) == [DAY]
    assert store.partition_dates(labels, 2) == [DAY, later]
    assert store.read(labels, 2, columns=["label"]).column("label").to_pylist() == [0, 1, 0, 1, 1]
    tags = subprocess.run(
        ["git", "tag"], cwd=store.path, capture_output=True, text=True, check=True
    ).stdout.split()
    assert {f"{GROUP}/v1", f"{labels}/v1", f"{labels}/v2"} <= set(tags)
    with session_scope(catalog) as session:
        rows = list_versions(session)
        assert [(r.group_name, r.version, r.kind, r.row_count) for r in rows] == [
            (GROUP, 1, "features", 6),
            (labels, 1, "labels", 3),
            (labels, 2, "labels", 5),
        ]
        assert rows[2].statistics["label"]["mean"] == pytest.approx(3 / 5)


def work_tree_is_the_cache(store: FeatureStore, version: int) -> bool:
    """Whether every partition file of ``version`` in the work tree is its DVC cache object
    (one file, read-only) rather than a copy of it."""
    found = []
    for day, md5 in store._manifest(GROUP, version):
        live = versions.partition_dir(store.group_dir(GROUP), day) / "part-0.parquet"
        found.append(os.path.samefile(live, store._object(md5)) and not live.stat().st_mode & 0o222)
    return bool(found) and all(found)


def test_the_work_tree_shares_its_files_with_the_dvc_cache(
    store: FeatureStore, catalog: str
) -> None:
    """cache.type hardlink: a partition is stored once in the store, not once in the work tree
    and once in the cache; every version still reads its own data, and a publish killed after
    its dvc add leaves links that recovery and the next publish handle."""
    first = crashing_publisher.FIRST
    days = [first, *crashing_publisher.NEW_DAYS]
    assert crashing_publisher.publish(store, catalog, {first: partition(first, 1)}, "v1") == 1
    assert work_tree_is_the_cache(store, 1)  # the first version: a whole-folder dvc add
    assert crashing_publisher.publish(store, catalog, {first: partition(first, 2)}, "v2") == 2
    assert work_tree_is_the_cache(store, 2)  # a granular dvc add
    crashing_publisher.run_killed(store, catalog, "git_commit")  # after dvc add and push
    again = {day: partition(day, 3) for day in days}
    assert crashing_publisher.publish(store, catalog, again, "v3") == 3
    assert work_tree_is_the_cache(store, 3)
    for version, values in ((1, [1]), (2, [2]), (3, [3, 3, 3])):
        table = FeatureStore(store.path).read(GROUP, version, columns=["feature_date", "x"])
        by_day = dict(zip(*table.to_pydict().values(), strict=False))
        assert sorted(by_day.values()) == values
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=store.path, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""


def test_a_store_made_before_linking_gets_it_from_init_and_keeps_its_versions(
    store: FeatureStore, tmp_path: Path
) -> None:
    """An older store (no cache.type: copies) gets the setting from the next init_store; new
    partitions are then links, old ones stay copies until `dvc checkout --relink`."""
    with open_dvc(store.path).config.edit() as conf:
        del conf["cache"]["type"]
    second = DAY + timedelta(days=1)
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "v1 as an older fti made it")
    assert not work_tree_is_the_cache(store, 1)
    init_store(store.path, str(tmp_path / "remote"))
    assert "hardlink" in (store.path / ".dvc" / "config").read_text()
    store.publish(GROUP, {second: partition(second, 2)}, "v2")
    live = versions.partition_dir(store.group_dir(GROUP), second) / "part-0.parquet"
    assert live.stat().st_nlink == 2
    assert not work_tree_is_the_cache(store, 2)  # v1's partition is still a copy
    subprocess.run(
        [str(Path(sys.executable).with_name("dvc")), "checkout", "--relink", "-q"],
        cwd=store.path,
        check=True,
        timeout=1800,  # a hang guard
    )
    assert work_tree_is_the_cache(store, 2)
    reader = FeatureStore(store.path)
    assert reader.read(GROUP, 1).column("x").to_pylist() == [1, 1, 1]
    assert reader.read(GROUP, 2, columns=["x"]).column("x").to_pylist() == [1, 1, 1, 2, 2, 2]
