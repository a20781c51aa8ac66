"""A group's build split by entity shards publishes exactly what one build of every entity does.

Shards and date chunks are how a run is executed, never what it publishes: any shard count and
chunk size give the same partitions (a hypothesis property over both, for the demo's feature
and label groups and a project keyed by strings), and the published versions are identical,
down to their DVC hash and catalog statistics. A shard killed mid-build leaves no version and
blocks the publish until it is built again; a publish killed mid-way leaves the previous version
whole; the rerun makes the version the unsharded run makes, and no shard file is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion
from fti.errors import StoreError
from fti.features.build import read_partitions
from fti.features.shards import Shard, slots_of
from fti.pipelines.features import (
    build_group,
    build_root,
    plan_group,
    publish_group,
    run_features,
    validate_raw_events,
)
from fti.pipelines.runs import setup
from fti.settings import Settings
from fti.setup import initialise
from fti.store.statistics import SKETCH
from fti.store.versions import FeatureStore
from tests.conftest import DEMO_END, MANIFEST, PARAMS, demo_settings
from tests.projects import weather

START = DEMO_END - timedelta(days=69)  # 70 dates: range runs of several chunks
GROUPS = ["customer_activity", "churned_30d"]


def with_shards(s: Settings, tmp: Path, groups: dict[str, int], chunk: int = 92) -> Settings:
    """``s`` with params.yaml's ``shards`` section set (the rest as the demo's)."""
    params = yaml.safe_load(Path(s.params_file).read_text())
    params["shards"] = {"groups": groups, "dates_per_chunk": chunk}
    path = tmp / f"params-{'-'.join(f'{g}{n}' for g, n in groups.items())}-{chunk}.yaml"
    path.write_text(yaml.safe_dump(params))
    return s.model_copy(update={"params_file": path})


def built(s: Settings, group: str, start: date, end: date, run: str) -> dict:  # type: ignore[type-arg]
    """Each date's table of a run's build, as the publish reads it."""
    root = build_group(group, start, end, run, s)
    assert root is not None
    key = setup(s)[1].group(group).entity.key
    partitions = read_partitions(Path(root), key)
    return {day: partitions[day] for day in partitions}


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory, demo_raw: Path) -> Settings:
    """A demo home whose 70 days are validated once (the builds only read them)."""
    s = demo_settings(tmp_path_factory.mktemp("shards") / "home", demo_raw)
    validate_raw_events(START - timedelta(days=30), DEMO_END, "validate", s)
    return s


@pytest.fixture(scope="module")
def whole(validated: Settings) -> dict[str, dict]:  # type: ignore[type-arg]
    return {g: built(validated, g, START, DEMO_END, f"whole-{g}") for g in GROUPS}


@settings(
    max_examples=4, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(count=st.integers(2, 5), chunk=st.sampled_from([9, 30, 92]))
def test_any_shard_count_and_chunk_size_build_the_same_partitions(
    validated: Settings,
    whole: dict,
    tmp_path_factory: pytest.TempPathFactory,
    count: int,
    chunk: int,
) -> None:
    tmp = tmp_path_factory.mktemp("params")
    for group in GROUPS:
        s = with_shards(validated, tmp, {group: count}, chunk)
        got = built(s, group, START, DEMO_END, f"sharded-{group}-{count}-{chunk}")
        assert got.keys() == whole[group].keys()
        for day, table in whole[group].items():
            assert got[day].equals(table), f"{group} {day}: {count} shards, chunks of {chunk}"
        # Each shard wrote only its own entities.
        root = build_root(s, group, START, DEMO_END, f"sharded-{group}-{count}-{chunk}")
        for part in root.glob(f"*/part-{Shard(1, count).name}.parquet"):
            slots = slots_of(pq.read_table(part).column("customer_id"))
            assert Shard(1, count).holds(slots).all()


def test_string_keys_shard_the_same_way(tmp_path: Path) -> None:
    """The weather project: one station (a string key), days without readings, labels one day
    ahead; three shards (two of them empty) build what one does."""
    raw = tmp_path / "raw"
    weather.generate(raw, date(2025, 1, 1), date(2025, 3, 10))
    s = Settings(  # type: ignore[call-arg]
        home=tmp_path / "home",
        raw_path=raw,
        params_file=PARAMS,
        project="tests.projects.weather:project",
        manifest_path=MANIFEST,
    )
    initialise(s)
    for group in ("daily_weather", "rain_tomorrow"):
        one = built(s, group, date(2025, 1, 1), date(2025, 3, 10), f"one-{group}")
        three = built(
            with_shards(s, tmp_path, {group: 3}, 20),
            group,
            date(2025, 1, 1),
            date(2025, 3, 10),
            f"three-{group}",
        )
        assert one.keys() == three.keys()
        assert all(three[d].equals(one[d]) for d in one)


def catalogued(s: Settings, group: str) -> list[tuple]:  # type: ignore[type-arg]
    """Each version's catalog row, as far as it is exact: its statistics without quantiles (a
    version's are read from merged KLL sketches, randomised: ``quantiles``), and each written
    partition's exact statistics without the sketch."""
    with session_scope(s.db_url) as session:
        rows = session.scalars(
            select(FeatureVersion)
            .where(FeatureVersion.group_name == group)
            .order_by(FeatureVersion.version)
        )
        return [
            (
                r.version,
                r.dvc_md5,
                r.row_count,
                r.schema_hash,
                {c: _without(v, "quantiles") for c, v in r.statistics.items()},
                {
                    day: {c: _without(v, SKETCH) for c, v in stats.items()}
                    for day, stats in r.partition_statistics.items()
                },
            )
            for r in rows
        ]


def quantiles(s: Settings, group: str) -> list[dict]:  # type: ignore[type-arg]
    with session_scope(s.db_url) as session:
        rows = session.scalars(
            select(FeatureVersion.statistics)
            .where(FeatureVersion.group_name == group)
            .order_by(FeatureVersion.version)
        )
        return [{c: v.get("quantiles") for c, v in stats.items()} for stats in rows]


def _without(stats: dict, key: str) -> dict:  # type: ignore[type-arg]
    return {k: v for k, v in stats.items() if k != key}


def run_in_process(s: Settings, code: str, fault: str) -> int:
    """Run ``code`` (with ``build_group``, ``publish_group`` and ``date`` imported) in a new
    process on the settings ``s``, killed at the fault point ``fault``; its exit code."""
    env = os.environ | {
        "FTI_HOME": str(s.home),
        "FTI_RAW_PATH": str(s.raw_path),
        "FTI_PARAMS_FILE": str(s.params_file),
        "FTI_MANIFEST_PATH": str(s.manifest_path),
        "FTI_DB_URL": s.db_url,
        "FTI_FAULT_POINT": fault,
    }
    steps = "from fti.pipelines.features import build_group, publish_group"
    script = f"from datetime import date\n{steps}\n{code}\n"
    return subprocess.run([sys.executable, "-c", script], env=env, timeout=600).returncode


def test_a_sharded_publish_is_the_unsharded_version_even_after_kills(
    tmp_path: Path, demo_raw: Path
) -> None:
    group = "customer_activity"
    first_end = START + timedelta(days=39)

    plain = demo_settings(tmp_path / "plain", demo_raw)
    for start, end, run in (
        (START, first_end, "r1"),
        (first_end + timedelta(days=1), DEMO_END, "r2"),
    ):
        run_features(start, end, run, plain, groups=[group])

    s = with_shards(demo_settings(tmp_path / "sharded", demo_raw), tmp_path, {group: 3}, 25)
    run_features(START, first_end, "r1", s, groups=[group])
    assert catalogued(s, group) == catalogued(plain, group)[:1]
    v1 = FeatureStore(s.store_path).read(group, 1)

    # The second run: its second shard is killed after its first chunk of dates.
    start2 = first_end + timedelta(days=1)
    validate_raw_events(start2, DEMO_END, "r2", s)
    assert plan_group(group, start2, DEMO_END, "r2", s) == 3
    for shard in (0, 2):
        build_group(group, start2, DEMO_END, "r2", s, shard, 3)
    killed = run_in_process(
        s,
        f"build_group({group!r}, date.fromisoformat('{start2}'), "
        f"date.fromisoformat('{DEMO_END}'), 'r2', shard=1, shards=3)",
        "build.shard",
    )
    assert killed == -signal.SIGKILL
    root = build_root(s, group, start2, DEMO_END, "r2")
    assert list(root.glob(f"*/part-{Shard(1, 3).name}.parquet"))  # its first chunk's parts
    with pytest.raises(StoreError, match="shard 2 of 3 not built"):
        publish_group(group, str(root), "r2", s, shards=3)
    assert FeatureStore(s.store_path).versions(group) == [1]

    # Built again, its publish is killed after one partition: the store keeps v1 whole.
    build_group(group, start2, DEMO_END, "r2", s, 1, 3)
    killed = run_in_process(
        s, f"publish_group({group!r}, {str(root)!r}, 'r2', shards=3)", "publish.partition"
    )
    assert killed == -signal.SIGKILL
    store = FeatureStore(s.store_path)
    assert store.versions(group) == [1] and store.read(group, 1).equals(v1)

    # The rerun publishes what the unsharded runs published, and leaves no shard file.
    assert publish_group(group, str(root), "r2", s, shards=3)["version"] == 2
    assert catalogued(s, group) == catalogued(plain, group)
    for sharded, whole in zip(quantiles(s, group), quantiles(plain, group), strict=True):
        for column, values in whole.items():  # within the sketches' error: a few % of ranks
            if values is None:
                assert sharded[column] is None, column
                continue
            spread = max(values.values()) - min(values.values())
            assert sharded[column] == pytest.approx(values, abs=0.1 * spread + 1), column
    assert not root.exists()
    assert not list((s.staging_path / "features").rglob("*.parquet"))


def test_training_past_its_row_limit_samples_entities_with_every_date_of_theirs(
    validated: Settings,
) -> None:
    """Past ``max_training_rows`` the training set is the rows of a sample of the entities
    (the first slots of the stable hash): exactly the full set's rows of those entities."""
    import dataclasses

    from fti.training.dataset import build_training_set, sampled_slots

    s = validated
    for group in ("customer_activity", "customer_profile", "churned_30d"):
        run_features(START, DEMO_END, "history", s, groups=[group])
    project = setup(s)[1]
    model = project.model("churn")
    store = FeatureStore(s.store_path)
    versions = {g: 1 for g in ("customer_activity", "customer_profile")}
    chosen = project.model_features(model)

    def training(limit: int | None):  # type: ignore[no-untyped-def]
        capped = dataclasses.replace(model, max_training_rows=limit, min_train_rows=1)
        return build_training_set(store, project, capped, versions, 1, DEMO_END, chosen)

    full = training(None)
    sampled = training(len(full.frame) // 3)
    dates = sorted(set(full.frame["label_date"]))
    kept = sampled_slots(store, "churned_30d", 1, dates, len(full.frame) // 3)
    assert kept is not None and 0 < len(sampled.frame) < len(full.frame)
    mine = slots_of(full.frame["customer_id"].to_numpy()) < kept
    expected = full.frame[mine].reset_index(drop=True)
    assert sampled.frame.equals(expected)
    assert set(sampled.frame["label_date"]) == set(dates)  # every date of the sampled entities


def test_the_shard_count_follows_the_events_a_shard_would_load(validated: Settings) -> None:
    def planned(**section: int) -> int:
        params = yaml.safe_load(Path(validated.params_file).read_text())
        params["shards"] = section
        path = Path(validated.home) / f"params-{'-'.join(map(str, section.values()))}.yaml"
        path.write_text(yaml.safe_dump(params))
        s = validated.model_copy(update={"params_file": path})
        return plan_group("customer_activity", START, DEMO_END, "plan", s)

    window = [START - timedelta(days=29 - i) for i in range(99)]  # 70 dates, 29 days back
    rows = sum(
        pq.ParquetFile(
            validated.staging_path / "validated" / "events" / f"{d}.parquet"
        ).metadata.num_rows
        for d in window
    )
    assert planned() == 1  # the demo's few hundred customers fit one shard
    assert planned(rows_per_shard=rows // 4 + 1) == 4  # the window is one chunk
    assert planned(rows_per_shard=rows // 4 + 1, dates_per_chunk=10) == 2  # 10 dates + 29 back
    assert planned(rows_per_shard=1, max=7) == 7
