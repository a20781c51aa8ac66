"""The feature store on a real DVC registry: immutable versions, tags, remote, catalog."""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from fti.errors import StoreError, VersionNotFoundError
from fti.store.registry_repo import init_store
from fti.store.versions import FeatureStore

GROUP = "activity"
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


def test_a_partition_with_another_schema_is_refused_and_nothing_changes(
    store: FeatureStore,
) -> None:
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    other = partition(DAY + timedelta(days=1), 2).append_column("y", pa.array([1.0, 2.0, 3.0]))
    with pytest.raises(StoreError, match="do not share one schema"):
        store.publish(GROUP, {DAY + timedelta(days=1): other}, "bad")
    assert store.versions(GROUP) == [1]
    assert store.partition_dates(GROUP, 1) == [DAY]
    assert not (store.group_dir(GROUP) / "feature_date=2026-02-02").exists()


def test_unsafe_group_names_are_refused(store: FeatureStore) -> None:
    for name in ["../escape", "Upper", "a/b", ""]:
        with pytest.raises(StoreError, match="not allowed"):
            store.publish(name, {DAY: partition(DAY, 1)}, "x")


def test_missing_columns_name_the_version(store: FeatureStore) -> None:
    store.publish(GROUP, {DAY: partition(DAY, 1)}, "first")
    with pytest.raises(StoreError, match="activity v1 has no column.*nope"):
        store.read(GROUP, 1, columns=["nope"])
