"""Batch inference at 1e5, 1e6 and 1e7 scored rows: score_batch end to end, and the write step alone.

For each size N and each database (an SQLite file, and/or a throwaway PostgreSQL database),
one run of this script does, on a fresh FTI home in ``<workdir>/<N>``:

1. setup (shown for information): ONE partition of N synthetic rows for each of the churn
   model's two feature groups, ``customer_activity`` and ``customer_profile`` (the churn demo's
   columns and Arrow types, numpy-generated, one copy in memory), published with
   ``FeatureStore.publish``; the ``churn`` model (its declared features from both groups)
   fitted with churn_demo's ``make_classifier`` on a 50,000-row synthetic sample with a real
   signal, stored with ``save_artifact`` and registered (full lineage: task, metric, both group
   versions, features with their groups; training statistics and drift reference) as champion
   in each database. Scoring therefore joins the profile group onto the activity spine, as a
   real churn run does;
2. ``score_to_spool`` alone (information: the scoring half of score_batch: both groups read and
   joined, the skew guard and the drift counter watching), which also leaves
   the spool of N scores that step 4 writes, then one untimed ``write_slice`` so the slice holds
   N rows from here on (not at sizes >= 1e7, to save a full write: there the one score_batch
   run writes the slice fresh, and its row says so);
3. ``fti.pipelines.inference.score_batch`` for the as-of date: read the features, skew guard, score into
   a Parquet spool, replace the slice in one transaction (rows/s and peak memory);
4. the write step alone on the same N scores, each competitor replacing the same slice:
   - ``fti.inference.write.write_slice(db_url, Slice(...), read_spool(spool))``;
   - ``pandas.DataFrame.to_sql`` of the same rows as a DataFrame (lineage columns included,
     built before the clock starts) after deleting the slice, in one transaction: the default
     method (``chunksize=None``, pandas' default) and ``method="multi"`` (which needs a
     ``chunksize``: 1,000 rows per INSERT, within both databases' bind-parameter limits; it
     writes only ~3k rows/s, so it runs up to ``--multi-max-size``, 1e5 by default);
   - a bare baseline with no model and no transaction logic, on a slice deleted beforehand:
     PostgreSQL: ADBC ``cursor.adbc_ingest(BARE_TABLE, table, mode="append")`` (binary
     COPY) of the same Arrow table, built before the clock starts with the exact column types,
     into a fresh table shaped like predictions with no index and no key (the practical limit
     of loading rows; fti's write also builds the slice's key and index), and (``bare_indexed``)
     the same COPY into an empty table that has predictions' key and index (what loading
     queryable rows costs without fti's build-aside-and-swap);
     SQLite: one ``executemany`` of the same rows as ready-made tuples (``zip`` of Python lists
     built before the clock starts), in one BEGIN/COMMIT, same pragmas as fti.

   Competitors alternate (the order rotates each repetition); the median of ``--repeat`` runs
   is kept (``--repeat-large`` runs at sizes >= 1e7, default 1). Before every timed run the
   database is brought to the same state, untimed: the slice holds N live rows (the bare
   baseline: SQLite's slice is deleted, PostgreSQL's target is a new empty table), then
   PostgreSQL ``VACUUM predictions`` + ``CHECKPOINT``, SQLite ``wal_checkpoint(TRUNCATE)``;
   after every run the slice (the bare table) must hold exactly N rows.

Every measured step runs in a fresh spawned worker process. The worker times only the call
(``time.perf_counter``) and reports its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``),
which includes the interpreter and imports (the ``worker baseline`` row imports fti only) and,
for to_sql and the bare baselines, the prepared DataFrame/table/tuples those need. The database
server's memory is not counted.

Run it from the repository root (the work folder is git-ignored)::

    .venv/bin/python benchmarks/bench_inference.py                   # 1e5,1e6,1e7, both DBs
    .venv/bin/python benchmarks/bench_inference.py --sizes 1e5 --db sqlite --repeat 1

PostgreSQL: ``--pg-url`` names the server (trust auth); a database ``fti_bench_inf_<pid>_<N>``
is created per size and dropped at the end. ``--to-sql-max-size`` skips the default-method
to_sql baseline above a size (it takes minutes at 1e7). Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from databases import PG_SERVER, create_pg_database, drop_pg_database
from inference_setup import (
    AS_OF,
    MODEL,
    TRAIN_ROWS,
    _model_row,
    _publish,
    _register,
    _slice,
    _train,
)
from inference_writes import TO_SQL_MULTI_CHUNK, _settle, _write
from workers import (
    PARAMS_FILE,
    WORK,
    _baseline,
    _in_worker,
    _measure,
    _peak_rss_mib,
    _settings,
    log,
    workdir,
)

LARGE = 10_000_000  # sizes from here on use --repeat-large
WRITERS = {
    "fti": "write: fti write_slice (spool -> slice)",
    "to_sql": "write: DataFrame.to_sql (default method)",
    "to_sql_multi": f'write: DataFrame.to_sql (method="multi", {TO_SQL_MULTI_CHUNK:,} rows/INSERT)',
    "bare": "write: bare baseline",  # named per database in the table
    "bare_indexed": "write: bare ADBC binary COPY into an empty table with the key and index",
}
BARE_NAME = {
    "postgres": "write: bare ADBC binary COPY into an unindexed table (no model, no txn logic)",
    "sqlite": "write: bare executemany of ready tuples (no model, no txn logic)",
}


@dataclass
class Row:
    size: int
    db: str
    step: str
    rows: int
    seconds: float
    peak_rss_mib: float
    runs: int = 1
    ratio: str = ""
    all_seconds: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 and self.rows else 0.0


# ---- what runs inside a fresh worker process ----------------------------------------------------
def _score_to_spool(home: str, db_url: str, spool: str, fill: bool) -> tuple[int, float, float]:
    """score_batch's scoring half alone: features of both groups -> model -> spool (timed), with
    the skew guard and drift counter watching; ``fill``: then write the spool into the slice
    (untimed), so the score_batch runs replace a slice of N rows."""
    from fti.inference.features import feature_batches
    from fti.inference.score import read_spool, score_to_spool
    from fti.inference.skew import ServingProfile
    from fti.inference.write import write_slice
    from fti.monitoring import drift
    from fti.pipelines.inference import _group_reads
    from fti.pipelines.runs import setup
    from fti.pipelines.training import feature_names, load_estimator
    from fti.store.versions import FeatureStore

    settings, project = setup(_settings(home, db_url))
    clock = time.perf_counter()
    row = _model_row(settings.db_url)
    store = FeatureStore(settings.store_path)
    reads = _group_reads(project, row, store, AS_OF, "latest")
    names = feature_names(row)
    estimator = load_estimator(row)
    batches = feature_batches(store, reads, AS_OF, names)
    profile = ServingProfile(names, row.training_statistics or {})
    counter = drift.DriftCounter(row.drift_reference or {}, names)
    rows = score_to_spool(
        estimator, row.task, batches, reads[0].key, names, Path(spool), [profile, counter]
    )
    seconds, peak = time.perf_counter() - clock, _peak_rss_mib()
    if fill:
        write_slice(settings.db_url, _slice(row, "bench_fill"), read_spool(Path(spool)))
    return rows, seconds, peak


def _score_batch(home: str, db_url: str, run_id: str) -> tuple[int, float, float]:
    from fti.pipelines.inference import score_batch

    settings = _settings(home, db_url)
    _settle(settings.db_url)
    clock = time.perf_counter()
    result = score_batch(MODEL, AS_OF, run_id, settings=settings)
    return result["rows"], time.perf_counter() - clock, _peak_rss_mib()


# ---- the run --------------------------------------------------------------------------------------
def _summary(size: int, db: str, runs: list[tuple[int, float, float]], step: str) -> Row:
    seconds = [s for _, s, _ in runs]
    return Row(
        size,
        db,
        step,
        runs[0][0],
        statistics.median(seconds),
        max(rss for *_, rss in runs),
        len(runs),
        all_seconds=[round(s, 3) for s in seconds],
    )


def database(
    size: int, home: str, db: str, db_url: str, lineage: dict[str, Any], args: argparse.Namespace
) -> list[Row]:
    """Register the model in ``db``, then time score_batch and the write competitors there."""
    _in_worker(_register, home, db_url, lineage)
    spool = str(Path(home) / f"scores-{db}.parquet")
    # At >= 1e7 the slice is not filled first (a full write saved): the one score_batch run
    # writes the slice fresh, with no previous slice to delete; every write-step run replaces N rows.
    fill = size < LARGE
    scored, spool_s, spool_rss = _in_worker(_score_to_spool, home, db_url, spool, fill)
    log(f"N={size:,} {db}: score_to_spool {spool_s:.1f}s; timing score_batch")
    repeat = args.repeat_large if size >= LARGE else args.repeat
    batch_runs = [_in_worker(_score_batch, home, db_url, f"bench_score_{i}") for i in range(repeat)]
    methods = ["fti", "bare", *(["bare_indexed"] if db == "postgres" else [])]
    if args.to_sql_max_size is None or size <= args.to_sql_max_size:
        methods[1:1] = ["to_sql"]
    if size <= args.multi_max_size:
        methods[-1:-1] = ["to_sql_multi"]
    runs: dict[str, list[tuple[int, float, float]]] = {m: [] for m in methods}
    failed: dict[str, str] = {}
    for i in range(repeat):
        for method in methods[i % len(methods) :] + methods[: i % len(methods)]:
            try:
                result = _in_worker(_write, home, db_url, spool, method, f"bench_{method}_{i}")
            except Exception as exc:  # noqa: BLE001 - a baseline that dies is reported, not fatal
                if method == "fti":
                    raise
                log(f"N={size:,} {db}: {method} #{i + 1} failed: {type(exc).__name__}: {exc}")
                failed[method] = f"{type(exc).__name__}: {exc}"[:120]
                continue
            log(f"N={size:,} {db}: {method} #{i + 1}: {result[1]:.2f}s, {result[2]:.0f} MiB")
            runs[method].append(result)
    rows = [
        Row(size, db, "score_to_spool alone (info)", scored, spool_s, spool_rss),
        _summary(
            size,
            db,
            batch_runs,
            "score_batch end to end" + ("" if fill else " (fresh slice: nothing to delete)"),
        ),
    ]
    written = {m: _summary(size, db, r, WRITERS[m]) for m, r in runs.items() if r}
    written["bare"].step = BARE_NAME[db]
    fti = written["fti"]
    ratios = []
    for method in ("to_sql", "to_sql_multi"):
        if method in written:
            ratios.append(f"{written[method].seconds / fti.seconds:.2f}x vs {method}")
            written[method].ratio = "1.00x"
    ratios.append(f"{fti.seconds / written['bare'].seconds:.2f}x the bare time")
    if "bare_indexed" in written:
        ratios.append(f"{fti.seconds / written['bare_indexed'].seconds:.2f}x the bare indexed time")
    fti.ratio = ", ".join(ratios)
    rows[1].ratio = f"write = {fti.seconds / rows[1].seconds:.0%} of it"
    rows += list(written.values())
    rows += [
        Row(
            size,
            db,
            f"{WRITERS[m]}: "
            + (f"failed: {failed[m]}" if m in failed else "not run at this size (time)"),
            0,
            0.0,
            0.0,
            0,
        )
        for m in ("to_sql", "to_sql_multi")
        if m not in written
    ]
    log(f"N={size:,} {db} done:\n{markdown(rows)}")
    return rows


def run_size(size: int, args: argparse.Namespace) -> list[Row]:
    home = str(args.workdir / str(size))
    shutil.rmtree(home, ignore_errors=True)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    pg_name = f"fti_bench_inf_{os.getpid()}_{size}"
    log(f"N={size:,}: publishing one partition of synthetic features")
    versions, pub_s, pub_rss = _measure(_publish, home, size)
    lineage, train_s, train_rss = _measure(_train, home, versions)
    log(
        f"N={size:,}: published in {pub_s:.1f}s; trained in {train_s:.1f}s "
        f"({lineage['n_iter']} iterations, holdout AUC {lineage['metrics'].get('roc_auc', 0):.3f})"
    )
    rows = [
        Row(
            size,
            "-",
            "setup: publish one partition of N synthetic rows per group, 2 groups (info)",
            size,
            pub_s,
            pub_rss,
        ),
        Row(
            size,
            "-",
            f"setup: train on {TRAIN_ROWS:,} synthetic rows (info)",
            TRAIN_ROWS,
            train_s,
            train_rss,
        ),
    ]
    for db in dbs:
        url = (
            create_pg_database(args.pg_url, pg_name)
            if db == "postgres"
            else f"sqlite:///{Path(home) / 'fti.db'}"
        )
        try:
            rows += database(size, home, db, url, lineage, args)
        finally:
            if db == "postgres":
                drop_pg_database(args.pg_url, pg_name)
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| size | db | step | rows | runs | seconds (median) | rows/s | peak RSS MiB | ratio |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        size = f"{r.size:,}" if r.size else "-"
        if not r.runs:
            lines.append(f"| {size} | {r.db} | {r.step} | - | 0 | - | - | - | |")
            continue
        lines.append(
            f"| {size} | {r.db} | {r.step} | {r.rows:,} | {r.runs} | {r.seconds:.2f} | {rate} "
            f"| {r.peak_rss_mib:.0f} | {r.ratio} |"
        )
    return "\n".join(lines)


def ratios(rows: list[Row]) -> str:
    """fti's write against to_sql (speed-up) and against the bare baseline, with the aims."""
    lines = [
        "| size | db | to_sql ÷ fti (aim) | to_sql multi ÷ fti | fti ÷ bare (aim) "
        "| fti ÷ bare into an indexed table | runs |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    aims = {"postgres": (10.0, 1.25), "sqlite": (1.5, None)}
    found: dict[tuple[int, str], dict[str, Row]] = {}
    for r in rows:
        for key, name in [*WRITERS.items(), ("bare", BARE_NAME.get(r.db, ""))]:
            if r.step == name and r.runs:
                found.setdefault((r.size, r.db), {})[key] = r
    for (size, db), got in found.items():
        fti = got["fti"]
        speed_aim, bare_aim = aims[db]
        bare = fti.seconds / got["bare"].seconds
        bare_text = f"{bare:.2f}x" + (
            f" (≤{bare_aim:g}x {'✓' if bare <= bare_aim else '✗'})" if bare_aim else " (no aim)"
        )
        indexed = (
            f"{fti.seconds / got['bare_indexed'].seconds:.2f}x" if "bare_indexed" in got else "-"
        )
        lines.append(
            f"| {size:,} | {db} | {_versus(got, 'to_sql', speed_aim)} | {_versus(got, 'to_sql_multi')} "
            f"| {bare_text} | {indexed} | {fti.runs} |"
        )
    return "\n".join(lines)


def _versus(got: dict[str, Row], key: str, aim: float | None = None) -> str:
    if key not in got:
        return "not run (time)"
    value = got[key].seconds / got["fti"].seconds
    mark = "" if aim is None else (" ✓" if value >= aim else " ✗")
    return f"{value:.2f}x" + (f" (≥{aim:g}x{mark})" if aim else "")


def _size(text: str) -> int:
    return int(float(text))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000,10000000",
        type=lambda text: [_size(s) for s in text.split(",") if s.strip()],
        help="scored rows per size, comma-separated, 1e6 notation allowed (default 1e5,1e6,1e7)",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=WORK / "inference")
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server, no database")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed step (median)")
    parser.add_argument(
        "--repeat-large", type=int, default=1, help=f"runs per timed step at sizes >= {LARGE:.0e}"
    )
    parser.add_argument(
        "--to-sql-max-size",
        type=_size,
        default=None,
        help="skip the to_sql baselines above this size (default: run them at every size)",
    )
    parser.add_argument(
        "--multi-max-size",
        type=_size,
        default=100_000,
        help='run to_sql(method="multi") only up to this size (default 1e5: it writes ~3k rows/s)',
    )
    parser.add_argument("--keep", action="store_true", help="keep each size's FTI home")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir = workdir(args.workdir)
    os.environ["FTI_PARAMS_FILE"] = str(PARAMS_FILE)
    clock = time.perf_counter()
    _, _, baseline_rss = _measure(_baseline)
    rows = [Row(0, "-", "worker baseline (imports fti only)", 0, 0.0, baseline_rss)]
    for size in args.sizes:
        rows += run_size(size, args)
        (args.workdir / "results.json").write_text(
            json.dumps({"rows": [asdict(r) for r in rows]}, indent=2)
        )
    elapsed = time.perf_counter() - clock
    (args.workdir / "results.json").write_text(
        json.dumps({"elapsed_s": elapsed, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    import fti

    print(
        f"fti from {Path(fti.__file__).parent}; repeat {args.repeat} (sizes >= {LARGE:,}: "
        f"{args.repeat_large}); medians of the runs shown\n"
    )
    print(markdown(rows))
    print(
        "\nfti write vs the baselines (seconds ÷ seconds; speed-up above 1 means fti is faster)\n"
    )
    print(ratios(rows))
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
