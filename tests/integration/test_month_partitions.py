"""A group stored a file a month reads as the same group stored a file a day.

Three real DVC stores, each with its SQLite catalog and online store, get the same publishes:
a history across a month's end with an empty day, a night that adds a column, a rerun, and a
late rewrite of a day of the month before; one store by day, one by month, and one that
changes its layout (day, month, month, day). Every version then reads the same rows, dates,
catalog figures and online rows from all three; the month store holds a file a month; an empty
cache reads it back from the remote; a kill mid-publish leaves the previous version whole.
"""

from __future__ import annotations

import subprocess
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.migrate import upgrade
from fti.db.tables import OnlineRow
from fti.store.catalog import list_versions
from fti.store.registry_repo import init_store
from fti.store.versions import FeatureStore
from tests.integration import crashing_publisher

GROUP = crashing_publisher.GROUP
START = date(2026, 1, 28)
EMPTY = date(2026, 1, 30)  # a day with no rows: a version still holds it
HISTORY = [START + timedelta(days=i) for i in range(7)]  # 2026-01-28 .. 2026-02-03


def rows(day: date, value: int, extra: bool = False) -> pa.Table:
    count = 0 if day == EMPTY else 2 + day.day % 3
    columns = {
        "entity": pa.array(range(count), pa.int64()),
        "feature_date": pa.array([day] * count, pa.date32()),
        "x": pa.array([value * 10 + i for i in range(count)], pa.float64()),
    }
    if extra:
        columns["y"] = pa.array([f"{day}-{i}" for i in range(count)], pa.string())
    return pa.table(columns)


PUBLISHES: list[tuple[str, dict[date, pa.Table], int]] = [
    ("history", {day: rows(day, 1) for day in HISTORY}, 1),
    ("a night adds column y", {date(2026, 2, 4): rows(date(2026, 2, 4), 2, extra=True)}, 2),
    ("a rerun", {date(2026, 2, 4): rows(date(2026, 2, 4), 2, extra=True)}, 2),
    (
        "late data for January and a night",
        {
            date(2026, 1, 29): rows(date(2026, 1, 29), 3, extra=True),
            date(2026, 2, 5): rows(date(2026, 2, 5), 3, extra=True),
        },
        3,
    ),
]


def make(tmp_path: Path, name: str) -> tuple[FeatureStore, str]:
    init_store(tmp_path / name / "store", str(tmp_path / name / "remote"))
    url = f"sqlite:///{tmp_path / name / 'fti.db'}"
    upgrade(url)
    return FeatureStore(tmp_path / name / "store"), url


def in_order(table: pa.Table) -> pa.Table:
    keys = [name for name in ("feature_date", "entity", "x") if name in table.column_names]
    return table.sort_by([(name, "ascending") for name in keys])


def catalog_of(url: str) -> list[tuple[object, ...]]:
    with session_scope(url) as session:
        return [
            (
                r.version,
                r.row_count,
                r.partitions,
                r.min_date,
                r.max_date,
                r.schema_hash,
                r.changed_dates,
                r.statistics,
                r.partition_statistics,
            )
            for r in list_versions(session, GROUP)
        ]


def online_of(url: str) -> list[tuple[object, ...]]:
    with session_scope(url) as session:
        found = session.execute(
            select(
                OnlineRow.entity_key,
                OnlineRow.feature_date,
                OnlineRow.version,
                OnlineRow.feature_values,
            ).order_by(OnlineRow.entity_key)
        )
        return [tuple(row) for row in found.all()]


LAYOUTS = {  # each store's partitioning at each of PUBLISHES
    "day": ["day"] * 4,
    "month": ["month"] * 4,
    "switching": ["day", "month", "month", "day"],
}


@pytest.fixture
def stores(tmp_path: Path) -> dict[str, tuple[FeatureStore, str]]:
    """The same publishes into each store of LAYOUTS."""
    made = {name: make(tmp_path, name) for name in LAYOUTS}
    for n, (message, partitions, version) in enumerate(PUBLISHES):  # a rerun: no new version
        for name, (store, url) in made.items():
            period = LAYOUTS[name][n]
            published = crashing_publisher.publish(store, url, partitions, message, period=period)
            assert published == version, (name, message)
    return made


@pytest.mark.parametrize("name", ["month", "switching"])
def test_a_store_by_month_or_changing_its_layout_reads_what_a_day_store_reads(
    stores: dict[str, tuple[FeatureStore, str]], name: str
) -> None:
    (day_store, day_url), (store, url) = stores["day"], stores[name]
    assert day_store.versions(GROUP) == store.versions(GROUP) == [1, 2, 3]
    for version in (1, 2, 3):
        dates = day_store.partition_dates(GROUP, version)
        assert store.partition_dates(GROUP, version) == dates
        assert EMPTY in dates
        assert in_order(store.read(GROUP, version)).equals(in_order(day_store.read(GROUP, version)))
        some = [date(2026, 1, 29), date(2026, 2, 1)]  # one date of each month
        assert in_order(store.read(GROUP, version, ["entity", "x"], some)).equals(
            in_order(day_store.read(GROUP, version, ["entity", "x"], some))
        )
    # The catalog (changed dates: the publish's own, also when it rewrote every file) and
    # the online rows are the day store's.
    assert catalog_of(url) == catalog_of(day_url)
    assert online_of(url) == online_of(day_url) != []


def test_a_month_store_holds_a_file_a_month_and_a_clone_reads_it_from_the_remote(
    stores: dict[str, tuple[FeatureStore, str]], tmp_path: Path
) -> None:
    month_store = stores["month"][0]
    assert month_store.read(GROUP, 1, dates=[EMPTY]).num_rows == 0
    assert month_store.read(GROUP, 1).column("x").to_pylist()[:2] == [10.0, 11.0]  # v1's own
    assert month_store.read(GROUP, 3, dates=[date(2026, 1, 29)]).column("x").to_pylist()[0] == 30
    assert month_store.read(GROUP, 3, dates=[date(2026, 1, 28)]).column("y").null_count == 3
    months = ["feature_month=2026-01", "feature_month=2026-02"]
    assert sorted(p.name for p in month_store.group_dir(GROUP).iterdir()) == months
    assert len(list(stores["day"][0].group_dir(GROUP).iterdir())) == 9
    # The store that went by month and back holds a file a day again.
    assert len(list(stores["switching"][0].group_dir(GROUP).iterdir())) == 9

    # A second machine: a clone with an empty cache fetches a version's month files.
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(month_store.path), str(clone)], check=True)
    assert FeatureStore(clone).read(GROUP, 2).equals(month_store.read(GROUP, 2))


# (step, v1's layout): the killed publish and the next one are by month; after a v1 by day
# they change the layout.
@pytest.mark.parametrize(
    ("step", "first"),
    [("parquet", "month"), ("swap", "month"), ("dvc_add", "month"), ("tag", "month")]
    + [("swap", "day"), ("tag", "day")],
)
def test_a_month_publish_killed_leaves_the_previous_version_and_the_next_one_works(
    tmp_path: Path, step: str, first: str
) -> None:
    store, url = make(tmp_path, "month")
    v1 = {crashing_publisher.FIRST: crashing_publisher.partition(crashing_publisher.FIRST, 1)}
    assert crashing_publisher.publish(store, url, v1, "v1", period=first) == 1
    before = store.read(GROUP, 1)

    crashing_publisher.run_killed(store, url, step, period="month")

    reader = FeatureStore(store.path)
    assert reader.versions(GROUP) == [1]
    assert reader.read(GROUP, 1).equals(before)
    again = {day: crashing_publisher.partition(day, 3) for day in crashing_publisher.NEW_DAYS}
    assert crashing_publisher.publish(reader, url, again, "v2", period="month") == 2
    assert reader.read(GROUP, 1).equals(before)
    assert reader.partition_dates(GROUP, 2) == [crashing_publisher.FIRST, *again]
    assert [p.name for p in reader.group_dir(GROUP).iterdir()] == ["feature_month=2026-02"]
    with session_scope(url) as session:
        assert [(r.version, r.row_count) for r in list_versions(session, GROUP)] == [
            (1, 2_000),
            (2, 6_000),
        ]


class Counted(dict[date, pa.Table]):
    """Partitions that count how often each is asked for (a staged build reads it each time)."""

    def __init__(self, tables: dict[date, pa.Table]) -> None:
        super().__init__(tables)
        self.asked: dict[date, int] = {}

    def __getitem__(self, day: date) -> pa.Table:
        self.asked[day] = self.asked.get(day, 0) + 1
        return super().__getitem__(day)

    def __contains__(self, day: object) -> bool:
        if isinstance(day, date):
            self[day]  # as ``Mapping.__contains__`` does: it reads the table
        return super().__contains__(day)


@pytest.mark.parametrize("first", ["day", "month"])
def test_each_new_partition_is_asked_for_once_also_when_the_layout_changes(
    tmp_path: Path, first: str
) -> None:
    store, url = make(tmp_path, "store")
    crashing_publisher.publish(
        store, url, {day: rows(day, 1) for day in HISTORY}, "v1", period=first
    )
    new = Counted({date(2026, 2, 4): rows(date(2026, 2, 4), 2), START: rows(START, 2)})
    assert crashing_publisher.publish(store, url, new, "v2", period="month") == 2
    assert new.asked == {date(2026, 2, 4): 1, START: 1}
    assert store.partition_dates(GROUP, 2) == [*HISTORY, date(2026, 2, 4)]
