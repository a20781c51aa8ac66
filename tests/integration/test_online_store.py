"""The online store: each publish of a feature group materialises its newest row per entity,
incrementally, atomically for readers, once the version's tag exists.

Run as ``python -m tests.integration.test_online_store HOME DB_URL PARTITIONS STEP`` it
publishes PARTITIONS to ``customer_activity`` and is SIGKILLed at STEP: ``tag`` (after the
catalog row, before the git tag) or ``online.rows`` (the fault point inside the transaction
after the tag that marks the row and puts the version online, between the online rows and
the state row).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from alembic import command
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from rich.console import Console
from sqlalchemy import inspect, select
from typer.testing import CliRunner

from fti.cli import app
from fti.db.engine import get_engine, session_scope
from fti.db.migrate import alembic_config, upgrade
from fti.db.tables import OnlineRow, ServedPrediction
from fti.features.build import write_partitions
from fti.online import online_state, read_online
from fti.online.materialise import WRITE_BATCH, VersionSource, materialise, materialise_latest
from fti.pipelines.features import publish_group
from fti.settings import Settings
from fti.store.versions import DATE_COLUMN, FeatureStore, partition_dir
from tests.conftest import MANIFEST, PARAMS

GROUP, KEY = "customer_activity", "customer_id"
DAY = date(2026, 3, 1)
ONLINE_TABLES = {"online_rows", "online_state", "served_predictions"}


def partition(day: date, ids: list[int], value: int) -> pa.Table:
    """A day of ``GROUP`` with a column of each kind the online store must keep typed."""
    n = len(ids)
    return pa.table(
        {
            KEY: pa.array(ids, pa.int64()),
            DATE_COLUMN: pa.array([day] * n, pa.date32()),
            "count_7d": pa.array([value * 1000 + i for i in ids], pa.int64()),
            "spend": pa.array([None if i % 7 == 0 else value + i / 8 for i in ids], pa.float64()),
            "plan": pa.array([f"plan-{value}" if i % 5 else None for i in ids], pa.string()),
            "active": pa.array([i % 2 == 0 for i in ids], pa.bool_()),
            "last_seen": pa.array(
                [
                    datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=value, seconds=i)
                    for i in ids
                ],
                pa.timestamp("us", tz="UTC"),
            ),
        }
    )


def publish(
    s: Settings, tmp: Path, days: dict[date, pa.Table], group: str = GROUP
) -> dict[str, Any]:
    staged = write_partitions(tmp / f"staged-{uuid.uuid4().hex[:8]}", days)
    return publish_group(group, str(staged), f"run-{uuid.uuid4().hex[:8]}", s)


def newest_of(s: Settings, version: int) -> pd.DataFrame:
    """The store's version read back whole, newest row per entity (what must be online)."""
    frame = FeatureStore(s.store_path).read(GROUP, version).to_pandas()
    frame = frame.sort_values(DATE_COLUMN, kind="stable").drop_duplicates(KEY, keep="last")
    return frame.set_index(KEY).sort_index()


def online_frame(s: Settings, keys: list[int]) -> pd.DataFrame:
    found = read_online(s.db_url, GROUP, [str(k) for k in keys])
    assert found.missing == []
    return found.rows.sort_index()


def row_versions(db_url: str, group: str = GROUP) -> dict[str, int]:
    with session_scope(db_url) as session:
        rows = session.execute(
            select(OnlineRow.entity_key, OnlineRow.version).where(OnlineRow.group_name == group)
        )
        return dict(rows.tuples().all())


def assert_online_is(s: Settings, version: int) -> None:
    expected = newest_of(s, version)
    state = online_state(s.db_url, GROUP)
    assert state is not None
    assert (state["version"], state["rows"]) == (version, len(expected))
    got = online_frame(s, list(expected.index))
    assert got.index.dtype == "int64"
    pd.testing.assert_frame_equal(got[list(expected.columns)], expected)


# ---- materialising through the publish ------------------------------------------------------
def test_a_publish_materialises_the_newest_row_per_entity_typed_and_incrementally(
    settings: Settings, tmp_path: Path
) -> None:
    s = settings
    first = publish(s, tmp_path, {DAY: partition(DAY, list(range(300)), 1)})
    second_day = DAY + timedelta(days=1)
    publish_2 = {second_day: partition(second_day, list(range(100)), 2)}
    assert first["version"] == 1
    assert_online_is(s, 1)
    rows = read_online(s.db_url, GROUP, ["3", "abc", "1000", "-0"], ["count_7d", "last_seen"])
    assert rows.missing == ["abc", "1000"]  # not an int64; not held
    assert list(rows.rows.index) == [3, 0]  # "-0" is the int64 0
    assert [str(t) for t in rows.rows.dtypes] == ["int64", "datetime64[us, UTC]", "object"]
    assert rows.rows.loc[3, DATE_COLUMN] == DAY
    assert rows.schema.names == [KEY, "count_7d", "spend", "plan", "active", "last_seen"]

    # A new day for 100 of 300 entities: only they are written; the others keep version 1.
    assert publish(s, tmp_path, publish_2)["version"] == 2
    assert_online_is(s, 2)
    state = online_state(s.db_url, GROUP)
    assert state is not None and (state["rows_written"], state["rows_deleted"]) == (100, 0)
    versions = row_versions(s.db_url)
    assert sum(v == 2 for v in versions.values()) == 100 and len(versions) == 300

    # The same day again with 5 entities changed and 10 gone: 5 rewritten, and the 10 gone
    # from the day fall back to their day-1 row (found in the kept partition).
    again = partition(second_day, list(range(10, 100)), 2)
    changed = again.to_pandas()
    changed.loc[changed[KEY] < 15, "count_7d"] = -1
    again = pa.Table.from_pandas(changed, schema=again.schema, preserve_index=False)
    assert publish(s, tmp_path, {second_day: again})["version"] == 3
    assert_online_is(s, 3)
    state = online_state(s.db_url, GROUP)
    assert state is not None and (state["rows_written"], state["rows_deleted"]) == (15, 0)

    # A rerun changes nothing: no version, no write (the state row is the same).
    before = online_state(s.db_url, GROUP)
    assert publish(s, tmp_path, {second_day: again})["new"] is False
    assert online_state(s.db_url, GROUP) == before
    assert [m.mode for m in materialise_latest(s, [GROUP])] == ["unchanged"]
    assert online_state(s.db_url, GROUP) == before


def test_label_groups_are_not_materialised_and_an_existing_store_is_by_command(
    settings: Settings, tmp_path: Path
) -> None:
    s = settings
    label = pa.table(
        {
            KEY: pa.array([1, 2], pa.int64()),
            DATE_COLUMN: pa.array([DAY] * 2, pa.date32()),
            "label": pa.array([0, 1], pa.int64()),
        }
    )
    publish(s, tmp_path, {DAY: label}, group="churned_30d")
    assert online_state(s.db_url, "churned_30d") is None
    publish(s, tmp_path, {DAY: partition(DAY, list(range(50)), 1)})
    # A store published before the online store existed: its rows are gone, the command
    # brings them back in full, then finds nothing to do.
    with session_scope(s.db_url, write=True) as session:
        session.execute(OnlineRow.__table__.delete())
        session.execute(OnlineRow.metadata.tables["online_state"].delete())
    done = {m.group: m for m in materialise_latest(s)}
    assert (done[GROUP].mode, done[GROUP].written) == ("full", 50)
    assert done["customer_profile"].mode == "none"  # never published
    assert_online_is(s, 1)
    assert materialise_latest(s, [GROUP])[0].written == 0


# ---- the materialisation itself, over random partitions --------------------------------------
publishes = st.lists(  # each publish: {day offset: {entity: value}}, days replaced whole
    st.dictionaries(
        st.integers(0, 5),
        st.dictionaries(st.integers(0, 30), st.integers(0, 3), max_size=12),
        min_size=1,
        max_size=3,
    ),
    min_size=1,
    max_size=5,
)


def version_source(folder: Path, group: str, version: int, schema: pa.Schema) -> VersionSource:
    days = sorted(
        date.fromisoformat(p.name.split("=")[1])
        for p in folder.iterdir()
        if p.name.startswith("feature_date=")
    )

    def read(dates: Any, where: Any) -> pa.Table:
        files = [str(partition_dir(folder, d) / "part-0.parquet") for d in dates]
        return ds.dataset(files, schema=schema, format="parquet").to_table(filter=where)

    return VersionSource(group, version, schema, days, read)


@pytest.mark.parametrize("key_type", [pa.int64(), pa.string()])
@hsettings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=publishes, batch_rows=st.sampled_from([1, 4, WRITE_BATCH]))
def test_materialised_rows_are_the_newest_row_of_every_version(
    db_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    key_type: pa.DataType,
    history: Any,
    batch_rows: int,
) -> None:
    """After each version, the online rows are its newest row per entity; exactly the
    entities whose newest row changed are written and those with no row left are deleted,
    whatever the batches rows are written in."""
    group = f"g{uuid.uuid4().hex[:10]}"
    folder = tmp_path_factory.mktemp("version")
    schema = pa.schema([(KEY, key_type), (DATE_COLUMN, pa.date32()), ("x", pa.int64())])
    everything: dict[date, dict[int, int]] = {}
    before: dict[str, tuple[date, int]] = {}
    for version, days in enumerate(history, 1):
        for offset, rows in days.items():
            day = DAY + timedelta(days=offset)
            everything[day] = rows
            target = partition_dir(folder, day)
            target.mkdir(parents=True, exist_ok=True)
            table = pa.table(
                {
                    KEY: pa.array(list(rows), pa.int64()).cast(key_type),
                    DATE_COLUMN: pa.array([day] * len(rows), pa.date32()),
                    "x": pa.array(list(rows.values()), pa.int64()),
                },
                schema=schema,
            )
            pq.write_table(table, target / "part-0.parquet")
        changed = [DAY + timedelta(days=o) for o in days]
        with session_scope(db_url, write=True) as session:
            done = materialise(
                session, version_source(folder, group, version, schema), KEY, changed, batch_rows
            )
        expected = {
            str(entity): (day, value)
            for day in sorted(everything)
            for entity, value in everything[day].items()
        }
        found = read_online(db_url, group, [str(e) for e in range(31)])
        got = {str(k): (row[DATE_COLUMN], int(row["x"])) for k, row in found.rows.iterrows()}
        assert got == expected
        assert sorted(found.missing) == sorted(str(e) for e in range(31) if str(e) not in expected)
        assert done.written == sum(expected[e] != before.get(e) for e in expected)
        assert done.deleted == len(set(before) - set(expected))
        assert done.mode == ("full" if version == 1 else "incremental")
        before = expected


# ---- a reader never sees two versions at once ------------------------------------------------
def test_a_reader_never_sees_rows_of_two_versions(settings: Settings, tmp_path: Path) -> None:
    """Each version rewrites every entity (count_7d = version * 1000 + id): a reader reading
    them all in a loop must find every row of the version the state names, on both
    databases."""
    s = settings
    ids = list(range(4000))
    publish(s, tmp_path, {DAY: partition(DAY, ids, 1)})
    stop = threading.Event()
    seen: list[int] = []
    problems: list[str] = []

    def read_all() -> None:
        keys = [str(i) for i in ids]
        while not stop.is_set():
            try:
                found = read_online(s.db_url, GROUP, keys, ["count_7d"])
                version = found.version
                assert version is not None
                wrong = found.rows[found.rows["count_7d"] != version * 1000 + found.rows.index]
            except Exception as exc:  # a failed read fails the test, not only its thread
                problems.append(f"the reader failed: {exc!r}")
                return
            if len(wrong) or found.missing:
                problems.append(f"v{version}: {len(wrong)} rows of another version")
            seen.append(version)

    reader = threading.Thread(target=read_all)
    reader.start()
    try:
        for version in range(2, 6):
            day = DAY + timedelta(days=version)
            assert publish(s, tmp_path, {day: partition(day, ids, version)})["version"] == version
    finally:
        stop.set()
        reader.join(timeout=1800)  # a hang guard
    assert problems == []
    assert len(set(seen)) >= 2, f"the reader saw only {set(seen)}: it did not overlap a write"
    assert_online_is(s, 5)


# ---- kills -----------------------------------------------------------------------------------
def run_killed(s: Settings, tmp: Path, days: dict[date, pa.Table], step: str) -> None:
    staged = write_partitions(tmp / f"killed-{uuid.uuid4().hex[:8]}", days)
    killed = subprocess.run(
        [sys.executable, "-m", "tests.integration.test_online_store", str(s.home), s.db_url]
        + [str(staged), step],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=1800,  # a hang guard, not a speed limit
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr


@pytest.mark.parametrize("step", ["tag", "online.rows"])
def test_a_killed_publish_leaves_the_tagged_version_online(
    settings: Settings, tmp_path: Path, step: str
) -> None:
    s = settings
    ids = list(range(200))
    publish(s, tmp_path, {DAY: partition(DAY, ids, 1)})
    day = DAY + timedelta(days=1)
    run_killed(s, tmp_path, {day: partition(day, ids[:50], 2)}, step)
    # Killed before its tag, or after it inside the transaction that puts it online: nothing
    # of version 2 is online (no reader sees a version before its tag, nor half of one).
    assert_online_is(s, 1)
    assert set(row_versions(s.db_url).values()) == {1}
    # The next publish (here one that finds nothing new) puts the newest tagged version
    # online: 1 when killed before the tag, 2 when killed after it...
    newest = 2 if step == "online.rows" else 1
    rerun = publish(s, tmp_path, {DAY: partition(DAY, ids, 1)})
    assert (rerun["new"], rerun["version"]) == (False, newest)
    assert_online_is(s, newest)
    assert max(row_versions(s.db_url).values()) == newest
    # ... and the next version is materialised from it, incrementally (after version 2, the
    # 30 entities the new partition drops go back to their row of the first day too).
    assert publish(s, tmp_path, {day: partition(day, ids[:20], 3)})["version"] == newest + 1
    assert_online_is(s, newest + 1)
    state = online_state(s.db_url, GROUP)
    assert state is not None and state["rows_written"] == (20 if newest == 1 else 50)


# ---- the command line ------------------------------------------------------------------------
@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[CliRunner]:
    for key, value in {
        "FTI_HOME": settings.home,
        "FTI_DB_URL": settings.db_url,
        "FTI_PARAMS_FILE": PARAMS,
        "FTI_MANIFEST_PATH": MANIFEST,
    }.items():
        monkeypatch.setenv(key, str(value))
    monkeypatch.setattr("fti.cli.output.console", Console(width=400))
    yield CliRunner()


def test_features_get_prints_online_rows(
    cli: CliRunner, settings: Settings, tmp_path: Path
) -> None:
    nothing = cli.invoke(app, ["features", "get", GROUP, "1"])
    assert nothing.exit_code == 1
    assert "no version of customer_activity is online" in nothing.output
    labels = cli.invoke(app, ["features", "get", "churned_30d", "1"])
    assert labels.exit_code == 1 and "label group" in labels.output
    publish(settings, tmp_path, {DAY: partition(DAY, [494, 17], 1)})
    done = cli.invoke(app, ["features", "get", GROUP, "494", "5", "x", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == [
        {
            "entity": "494",
            "found": True,
            "version": 1,
            "feature_date": "2026-03-01",
            "count_7d": 1494,
            "spend": 62.75,
            "plan": "plan-1",
            "active": True,
            "last_seen": "2026-01-02T12:08:14+00:00",
        },
        {"entity": "5", "found": False, "version": 1},
        {"entity": "x", "found": False, "version": 1},
    ]
    table = cli.invoke(app, ["features", "get", GROUP, "17", "5"])
    assert table.exit_code == 0, table.output
    assert "1017" in table.stdout and "plan-1" in table.stdout and "2026-03-01" in table.stdout
    assert "not online in customer_activity v1: 5" in table.stderr
    again = cli.invoke(app, ["features", "materialise", "--group", GROUP, "--json"])
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)[0] | {"seconds": 0} == {
        "group": GROUP,
        "version": 1,
        "mode": "unchanged",
        "rows": 2,
        "written": 0,
        "deleted": 0,
        "seconds": 0,
    }


# ---- the migration ---------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def db_at_0008(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fti.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url, "0008")
    return url


def test_0009_adds_the_online_tables_and_goes_back_and_forth(db_at_0008: str) -> None:
    url = db_at_0008
    assert not ONLINE_TABLES & set(inspect(get_engine(url)).get_table_names())
    upgrade(url)
    assert ONLINE_TABLES <= set(inspect(get_engine(url)).get_table_names())
    with session_scope(url, write=True) as session:
        for request in ("a", "b"):
            session.add(
                ServedPrediction(
                    request_id=request,
                    served_at=datetime(2026, 3, 2, tzinfo=UTC),
                    model_name="churn",
                    model_version=1,
                    entity_id="494",
                    prediction=1,
                    probability=0.9,
                    feature_group=GROUP,
                    feature_version=3,
                    feature_versions={GROUP: 3, "customer_profile": 2},
                    feature_date=DAY,
                )
            )
    with session_scope(url) as session:
        served = session.scalars(select(ServedPrediction).order_by(ServedPrediction.id)).all()
        assert [(p.id, p.stale, p.feature_versions[GROUP]) for p in served] == [
            (1, False, 3),
            (2, False, 3),
        ]
    command.downgrade(alembic_config(url), "0008")
    get_engine.cache_clear()
    assert not ONLINE_TABLES & set(inspect(get_engine(url)).get_table_names())
    upgrade(url)
    assert ONLINE_TABLES <= set(inspect(get_engine(url)).get_table_names())


if __name__ == "__main__":
    home, db, staged, step = sys.argv[1:5]
    os.setpgrp()
    publisher = Settings(home=Path(home), db_url=db, params_file=PARAMS, manifest_path=MANIFEST)
    if step != "tag":
        os.environ["FTI_FAULT_POINT"] = step  # fti.store.recovery.fault_point kills there
    else:

        def die(*args: Any, **kwargs: Any) -> None:
            os.killpg(os.getpgid(0), signal.SIGKILL)

        FeatureStore._git_tag = die  # type: ignore[method-assign]
    publish_group(GROUP, staged, "killed", publisher)
    raise SystemExit("the publish finished although it should have been killed")
