"""The online store: materialising a feature group version per 1e6 entities, and reads.

For SQLite (a file) and PostgreSQL (a throwaway database on the local server):

- full first load: version 1, one partition with a row for every entity (a full read of
  the version, every row written);
- nightly: version 2 adds a day with a new row for ~5% of the entities (incremental: only
  the new partition and the online rows of its date on are read; 5% are written);
- rerun: version 2 again (nothing written);
- reads: ``read_online`` of 1 and of 100 random entities (the serving helper's call), p50/p99.

The versions are Parquet partitions in a temp folder read the way a publish reads its work
tree (fti.online.materialise.VersionSource); DVC and git are not timed (see
bench_feature_store.py for a publish). A group of 10 features: 4 int64, 4 float64, a string
and a timestamp.

    python benchmarks/bench_online_store.py [--entities 1000000] [--server postgresql+psycopg://postgres@127.0.0.1:5432]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from sqlalchemy import create_engine, text

from fti.db.engine import get_engine, session_scope
from fti.db.migrate import upgrade
from fti.online.materialise import VersionSource, materialise
from fti.online.store import read_online
from fti.store.versions import DATE_COLUMN, partition_dir

KEY = "customer_id"
DAY = date(2026, 3, 1)
CHANGED_SHARE = 0.05


def partition(day: date, ids: np.ndarray, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    n = len(ids)
    columns: dict[str, pa.Array] = {
        KEY: pa.array(ids, pa.int64()),
        DATE_COLUMN: pa.array(np.full(n, np.datetime64(day, "D")), pa.date32()),
    }
    for i in range(4):
        columns[f"count_{i}"] = pa.array(rng.integers(0, 1000, n), pa.int64())
        columns[f"amount_{i}"] = pa.array(rng.random(n) * 100)
    columns["plan"] = pa.array(rng.choice(["basic", "pro", "team"], n))
    start = np.datetime64(datetime(2026, 1, 1), "us")
    columns["last_seen"] = pa.array(
        start + rng.integers(0, 10**12, n).astype("timedelta64[us]"), pa.timestamp("us", tz="UTC")
    )
    return pa.table(columns)


def source(folder: Path, version: int, schema: pa.Schema) -> VersionSource:
    days = sorted(date.fromisoformat(p.name.split("=")[1]) for p in folder.glob("feature_date=*"))

    def read(dates, where):  # type: ignore[no-untyped-def]
        files = [str(partition_dir(folder, d) / "part-0.parquet") for d in dates]
        return ds.dataset(files, schema=schema, format="parquet").to_table(filter=where)

    return VersionSource("bench", version, schema, days, read)


def write(folder: Path, table: pa.Table, day: date) -> None:
    target = partition_dir(folder, day)
    target.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, target / "part-0.parquet", compression="zstd")


def timed_materialise(url: str, folder: Path, version: int, schema: pa.Schema, changed: list[date]):  # type: ignore[no-untyped-def]
    clock = time.perf_counter()
    with session_scope(url, write=True) as session:
        done = materialise(session, source(folder, version, schema), KEY, changed)
    return time.perf_counter() - clock, done


def reads(url: str, entities: int, size: int, repeat: int) -> tuple[float, float]:
    rng = random.Random(7)
    read_online(url, "bench", ["0"])  # the schema is decoded once per process
    times = []
    for _ in range(repeat):
        keys = [str(rng.randrange(entities)) for _ in range(size)]
        clock = time.perf_counter()
        found = read_online(url, "bench", keys)
        times.append(time.perf_counter() - clock)
        assert len(found.rows) == len(set(keys))
    times.sort()
    return statistics.median(times) * 1000, times[int(len(times) * 0.99) - 1] * 1000


def run(url: str, entities: int) -> dict[str, float]:
    upgrade(url)
    folder = Path(tempfile.mkdtemp(prefix="fti-bench-online-"))
    ids = np.arange(entities, dtype=np.int64)
    first = partition(DAY, ids, 1)
    write(folder, first, DAY)
    schema = first.schema
    full, done = timed_materialise(url, folder, 1, schema, [DAY])
    assert (done.mode, done.written) == ("full", entities)
    night = DAY + timedelta(days=1)
    changed = np.sort(np.random.default_rng(2).choice(ids, int(entities * CHANGED_SHARE), False))
    write(folder, partition(night, changed, 2), night)
    nightly, done = timed_materialise(url, folder, 2, schema, [night])
    assert (done.mode, done.written) == ("incremental", len(changed))
    rerun, done = timed_materialise(url, folder, 2, schema, [night])
    assert done.written == 0
    one = reads(url, entities, 1, 2000)
    hundred = reads(url, entities, 100, 300)
    scale = 1_000_000 / entities
    return {
        "full": full * scale,
        "nightly": nightly * scale,
        "rerun": rerun,
        "read1_p50": one[0],
        "read1_p99": one[1],
        "read100_p50": hundred[0],
        "read100_p99": hundred[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--server", default="postgresql+psycopg://postgres@127.0.0.1:5432")
    args = parser.parse_args()
    results = {}
    sqlite = Path(tempfile.mkdtemp(prefix="fti-bench-online-db-")) / "fti.db"
    results["SQLite"] = run(f"sqlite:///{sqlite}", args.entities)
    name = f"fti_bench_online_{uuid.uuid4().hex[:8]}"
    admin = create_engine(f"{args.server}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        results["PostgreSQL"] = run(f"{args.server}/{name}", args.entities)
    finally:
        get_engine(f"{args.server}/{name}").dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(
        f"\nonline store, {args.entities:,} entities, 10 features; seconds per 1e6 entities,"
        f" read latencies in ms ({datetime.now(UTC):%Y-%m-%d})"
    )
    print(
        f"{'database':<11} {'full load':>10} {'nightly 5%':>11} {'nightly/full':>13} {'rerun':>7}"
        f" {'1 entity p50/p99':>17} {'100 entities p50/p99':>21}"
    )
    for db, r in results.items():
        print(
            f"{db:<11} {r['full']:>9.1f}s {r['nightly']:>10.2f}s {r['nightly'] / r['full']:>13.3f}"
            f" {r['rerun']:>6.3f}s {r['read1_p50']:>8.2f}/{r['read1_p99']:<8.2f}"
            f" {r['read100_p50']:>10.2f}/{r['read100_p99']:<10.2f}"
        )
    pg, lite = results["PostgreSQL"], results["SQLite"]
    print(
        "PostgreSQL/SQLite: "
        + ", ".join(
            f"{label} {pg[k] / lite[k]:.2f}x"
            for label, k in [
                ("full", "full"),
                ("nightly", "nightly"),
                ("read 1 p50", "read1_p50"),
                ("read 100 p50", "read100_p50"),
            ]
        )
    )


if __name__ == "__main__":
    main()
