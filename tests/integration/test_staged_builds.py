"""A group's staged build goes once its version is published; a retry of the publish still
returns what the publish returned, a rebuilt run is published again, and a folder outside the
staging area is never removed."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion
from fti.pipelines.features import build_group, publish_group
from fti.settings import Settings
from fti.store.versions import FeatureStore
from tests.conftest import DEMO_START, demo_settings

GROUP = "customer_activity"
DAY = DEMO_START + timedelta(days=3)


def catalogued(settings: Settings) -> list[tuple[int, str]]:
    with session_scope(settings.db_url) as session:
        rows = session.execute(
            select(FeatureVersion.version, FeatureVersion.run_id)
            .where(FeatureVersion.group_name == GROUP)
            .order_by(FeatureVersion.version)
        )
        return [(version, run_id) for version, run_id in rows]


def test_a_published_build_is_removed_and_a_retry_returns_the_same_version(
    tmp_path: Path, db_url: str, demo_raw: Path
) -> None:
    s = demo_settings(tmp_path / "home", demo_raw, db_url)
    build = Path(build_group(GROUP, DAY, DAY, "run1", s) or "")
    assert build.is_relative_to(s.staging_path / "features") and any(build.iterdir())

    first = publish_group(GROUP, str(build), "run1", s)
    assert (first["version"], first["new"]) == (1, True)
    assert not build.exists()  # the store and its remote hold the data now
    assert [p.name for p in build.parent.iterdir()] == [f"{build.name}.published.json"]

    # A retry of the task (it died before Airflow recorded its success, or it was cleared).
    assert publish_group(GROUP, str(build), "run1", s) == first
    assert FeatureStore(s.store_path).versions(GROUP) == [1]
    assert catalogued(s) == [(1, "run1")]

    # A kill between the record and the removal: the retry finishes the removal.
    build.mkdir()
    (build / "leftover").write_text("what a killed removal left")
    assert publish_group(GROUP, str(build), "run1", s) == first
    assert not build.exists()

    # The run's build done again (a cleared run): published again, not remembered.
    assert build_group(GROUP, DAY, DAY, "run1", s) == str(build)
    again = publish_group(GROUP, str(build), "run1", s)
    assert (again["version"], again["new"]) == (1, False)  # the same data: no new version
    assert not build.exists()

    # The next day, another run: a new version, its build removed too.
    later = build_group(GROUP, DAY + timedelta(days=1), DAY + timedelta(days=1), "run2", s)
    assert later is not None
    assert publish_group(GROUP, later, "run2", s)["version"] == 2
    assert not Path(later).exists()
    assert catalogued(s) == [(1, "run1"), (2, "run2")]
    reader = FeatureStore(s.store_path)
    assert reader.partition_dates(GROUP, 2) == [DAY, DAY + timedelta(days=1)]
    assert reader.read(GROUP, 2).num_rows > reader.read(GROUP, 1).num_rows > 0


def test_partitions_published_from_outside_the_staging_area_stay(
    tmp_path: Path, db_url: str, demo_raw: Path
) -> None:
    s = demo_settings(tmp_path / "home", demo_raw, db_url)
    build = build_group(GROUP, DAY, DAY, "run1", s)
    assert build is not None
    mine = tmp_path / "my-partitions"
    shutil.copytree(build, mine)
    assert publish_group(GROUP, str(mine), "by hand", s)["version"] == 1
    assert any(mine.iterdir())
    assert not list(mine.parent.glob("*.published.json"))
