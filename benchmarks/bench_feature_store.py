"""Point-in-time join, version read and publish costs of fti's feature store, against baselines.

Three sub-benchmarks, chosen with ``--only pit,read,publish`` (default: all three):

1. ``pit``: one synthetic data set per size N (``--pit-sizes``, label rows). It has N/10
   entities, 10-30 feature rows per entity (~2N rows), an entity id, a tz-aware UTC time and 4
   float64 feature columns. Labels fall at random times over the same 90 days, plus 5 days on
   either side, so some labels have no earlier feature row. Both frames are shuffled. Times are
   whole microseconds (DuckDB's resolution), so ties within an entity are practically absent.
   These joins run side by side on the same data, each in a fresh worker that first loads the
   two frames from Parquet (not timed):

   - fti ``point_in_time_join``, with no ttl and with ttl = 7 days;
   - the fair pandas baseline: sort each side once by time (counted), then
     ``pd.merge_asof(by=entity, direction="backward")``, with and without ``tolerance``. It
     does not restore the label order; fti does;
   - DuckDB ``ASOF LEFT JOIN`` on the same pandas frames (``SELECT l.*, f.* ... ON
     l.entity = f.entity AND l.t >= f.ft``), returning pandas (``.df()``) and, for
     information, Arrow.

   ratio = seconds / the fastest method at that size. check = the worker compares
   ``--pit-sample`` label rows with a brute-force numpy oracle that was built with the data
   (newest feature row of the entity at or before the label time, within the ttl for the ttl
   methods). It also checks every output row: the count of matched rows (the same for all no-ttl
   methods, and for both ttl methods), no feature time after the label time, and, for fti, that
   the label order and index are kept.
2. ``read``: a version of ``--read-rows`` rows over ``--read-days`` daily partitions (10
   columns) is published with ``FeatureStore.publish`` into a temp store. Then 3 of its 10
   columns are read with ``FeatureStore.scanner(...).to_table()`` and with streaming
   ``.to_batches()``. The bare baseline is ``pyarrow.dataset.dataset(<the same files in the
   DVC cache>, format="parquet")`` with the same columns and batch size. ratio = fti / bare
   (fti overhead). ``FeatureStore(path)`` plus its first ``scanner`` (the listing: the tag's
   ``.dvc`` file from git, its ``.dir`` manifest from the DVC cache) is timed on its own, in a
   fresh process and again in a process that has listed once, next to the bare
   ``ds.dataset(files)`` call.
3. ``publish``: for each N in ``--history``, a fresh store gets N daily partitions of
   ``--publish-rows`` rows x 10 columns (info), each version with its catalog row in a SQLite
   catalog. ``--history-shape nightly`` (default) publishes them as N versions of one day
   each, as nightly runs make them; ``bulk`` as one version. Then ONE more day is timed in
   two ways: ``FeatureStore.publish`` alone,
   split into its own steps by wrapping the store's git/DVC calls, and the
   ``publish_group`` path: the same publish with ``record_version`` writing the catalog
   row (statistics of the new partition merged with the kept ones), as
   ``fti.pipelines.features.publish_group`` does. ratio = seconds / seconds at the smallest N. These
   workers first import what a publish imports lazily (DVC, networkx, ...). One more run per
   N in a plain fresh process shows what a real CLI/Airflow task pays on top of that.

Every measured step runs in a fresh worker process (``spawn``). It times the call with
``time.perf_counter`` and reports its own peak RSS (``resource.getrusage(RUSAGE_SELF)
.ru_maxrss``). Just before the call it resets the kernel's high-water mark
(``/proc/self/clear_refs``, "5"), so "peak" is the peak during the step with the inputs already
loaded, and "+MiB" is peak minus the RSS just before the step: what the step itself needed.
git/dvc child processes are not counted. Each step runs ``--repeat`` times, alternating the
methods. The table shows the median seconds, the fastest and slowest run, and the largest
peak.

``--profile`` also profiles fti's join at the largest PIT size in one more worker. A tracer
stamps each statement of ``point_in_time_join``, and a sampler process reads the worker's RSS
every 2 ms, which gives seconds and peak RSS per statement. cProfile's top functions come from a
second run, and the read and publish paths get a cProfile too.

Run it from the repository root (all data goes under ``--workdir``)::

    .venv/bin/python benchmarks/bench_feature_store.py                  # all, default sizes
    .venv/bin/python benchmarks/bench_feature_store.py --only pit --pit-sizes 1e5 --repeat 1

Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from store_bench import Row, _in_worker, log
from store_pit import bench_pit, profile_pit
from store_publish import bench_publish
from store_read import bench_read
from workers import WORK, _peak_rss_mib, _rss_mib, workdir


# ---- worker plumbing ---------------------------------------------------------------------------
def _baseline() -> tuple[float, float]:
    return _peak_rss_mib(), _rss_mib()


# ---- the run ---------------------------------------------------------------------------------------
def markdown(rows: list[Row]) -> str:
    lines = [
        "| bench | size | step | rows | seconds (median) | min-max s | rows/s | peak RSS MiB "
        "| +MiB | ratio | check |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        extra = f"{r.extra_mib:.0f}" if r.extra_mib is not None else "-"
        peak = f"{r.peak_rss_mib:.0f}" if r.peak_rss_mib else "-"
        seconds = f"{r.seconds:.3f}" if r.seconds < 10 else f"{r.seconds:.1f}"
        lines.append(
            f"| {r.bench} | {r.size:,} | {r.step} | {r.rows:,} | {seconds} | {r.spread} | {rate} "
            f"| {peak} "
            f"| {extra} | {r.ratio} | {r.check} |"
        )
    return "\n".join(lines)


def _ints(text: str) -> list[int]:
    return [int(float(s)) for s in text.split(",") if s.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="pit,read,publish", help="comma-separated sub-benchmarks")
    parser.add_argument("--pit-sizes", type=_ints, default=_ints("1e5,1e6,1e7"), help="label rows")
    parser.add_argument("--pit-sample", type=int, default=10_000, help="label rows checked")
    parser.add_argument("--read-rows", type=lambda s: int(float(s)), default=2_000_000)
    parser.add_argument("--read-days", type=int, default=30)
    parser.add_argument("--history", type=_ints, default=_ints("1,30,365"), help="days published")
    parser.add_argument(
        "--history-shape",
        choices=["nightly", "bulk"],
        default="nightly",
        help="the history as one version per day (nightly) or as one version (bulk)",
    )
    parser.add_argument("--publish-rows", type=int, default=2_000, help="rows per daily partition")
    parser.add_argument("--repeat", type=int, default=3, help="runs per step (median)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="also profile the fti paths")
    parser.add_argument("--workdir", type=Path, default=WORK / "store")
    args = parser.parse_args(argv)
    args.only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(args.only) - {"pit", "read", "publish"}
    if unknown:
        parser.error(f"unknown sub-benchmark(s): {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir = workdir(args.workdir)
    import fti

    log(f"fti from {fti.__file__}")
    clock = time.perf_counter()
    baseline_peak, _ = _in_worker(_baseline)
    rows = [Row("-", 0, "worker baseline (imports only)", 0, 0.0, baseline_peak)]
    extras: list[str] = []
    if "pit" in args.only:
        rows += bench_pit(args)
        if args.profile:
            extras.append(profile_pit(args))
    if "read" in args.only:
        read_rows, read_profile = bench_read(args)
        rows += read_rows
        if read_profile:
            extras.append(f"### cProfile of the fti read\n```\n{read_profile}\n```")
    if "publish" in args.only:
        publish_rows, split, publish_profile = bench_publish(args)
        rows += publish_rows
        extras.insert(0, "### publish, seconds by step (medians)\n\n" + split)
        if publish_profile:
            extras.append(f"### cProfile of one publish\n```\n{publish_profile}\n```")
    elapsed = time.perf_counter() - clock
    (args.workdir / "results.json").write_text(
        json.dumps(
            {"elapsed_s": elapsed, "rows": [asdict(r) for r in rows], "extras": extras}, indent=2
        )
    )
    print(markdown(rows))
    for extra in extras:
        print("\n" + extra)
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
