"""A range publish and its online materialisation, before and after a change of fti's code:
wall time and peak RSS of each step, side by side in one run.

Two codes: ``before`` (a git ref, ``--before``, default ``main``: its ``fti`` and
``churn_demo`` exported with ``git archive`` into the work folder) and ``after`` (this
checkout). Each runs the same steps on a fresh FTI home of its own, each step in a fresh
process (``PYTHONPATH`` picks the code; the process prints which ``fti`` it imported):

- ``history``: ``publish_group`` of a sharded staged build of ``--dates`` dates x
  ``--entities`` entities of ``customer_activity`` (``--shards`` shards, 10 feature columns):
  version 1, its statistics, and the online store's first load (every partition read);
- ``backfill``: the same dates published again with every 10th entity's values changed:
  version 2, and the online store's materialisation of a range publish (every date changed).

Both codes read the same staged files (staged outside the home's staging folder, so the
publish keeps them). Peak RSS is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of the step's
process (imports included; ``+MiB`` is the peak minus the RSS just before the step). The check
column compares the two codes' versions: the same DVC md5, row count and online rows.

    .venv/bin/python benchmarks/store_publish_memory.py [--entities 200000] [--dates 30]
        [--shards 4] [--before main] [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432]

SQLite by default (the embedded catalog and online store); ``--pg-url`` uses a throwaway
PostgreSQL database per code. Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from databases import create_pg_database, drop_pg_database
from workers import REPO, WORK, _peak_rss_mib, _reset_peak, _settings, log, workdir

GROUP, KEY = "customer_activity", "customer_id"
FIRST = date(2026, 1, 1)
STEPS = ["history", "backfill"]


# ---- staged builds (written once, by this process) --------------------------------------------
def _day(day: date, ids: Any, changed: bool) -> Any:
    """One date of the group: 4 counts, 4 amounts, a plan, a timestamp per entity."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(day.toordinal())
    n = len(ids)
    columns: dict[str, Any] = {
        KEY: pa.array(ids, pa.int64()),
        "feature_date": pa.array(np.full(n, np.datetime64(day, "D")), pa.date32()),
    }
    for i in range(4):
        counts = rng.integers(0, 1000, n)
        if changed:
            counts = np.where(ids % 10 == 0, counts + 1, counts)
        columns[f"count_{i}"] = pa.array(counts, pa.int64())
        columns[f"amount_{i}"] = pa.array(rng.random(n) * 100)
    columns["plan"] = pa.array(rng.choice(["basic", "pro", "team"], n))
    start = np.datetime64(datetime(2026, 1, 1), "us")
    seen = start + rng.integers(0, 10**12, n).astype("timedelta64[us]")
    columns["last_seen"] = pa.array(seen, pa.timestamp("us", tz="UTC"))
    return pa.table(columns)


def stage(root: Path, entities: int, dates: int, shards: int, changed: bool) -> Path:
    """A sharded build as the build tasks leave it: a part per shard per date, and marks."""
    import numpy as np

    from fti.features.build import finish_shard, write_partitions
    from fti.features.shards import Shard, slots_of

    ids = np.arange(entities, dtype=np.int64)
    slots = slots_of(ids)
    for index in range(shards):
        shard = Shard(index, shards)
        mine = ids[shard.holds(slots)]
        days = [FIRST + timedelta(days=i) for i in range(dates)]
        write_partitions(root, {d: _day(d, mine, changed) for d in days}, shard)
        finish_shard(root, shard)
    return root


def commit_of(ref: str) -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()


def export(ref: str, into: Path) -> Path:
    """``fti`` and ``churn_demo`` as they are at git ``ref``, in ``into``."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "fti", "churn_demo"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout
    tar = into / "code.tar"
    tar.write_bytes(archive)
    with tarfile.open(tar) as opened:
        opened.extractall(into, filter="data")
    tar.unlink()
    return into


# ---- the steps, each in a fresh process -----------------------------------------------------
def child(step: str, home: str, db_url: str, staged: str, out: str) -> None:
    """Run one step (``init`` or one of ``STEPS``) in this process; write what it measured."""
    import fti
    from fti.pipelines.features import publish_group
    from fti.setup import initialise

    settings = _settings(home, db_url)
    if step == "init":
        initialise(settings)
        Path(out).write_text("{}")
        return
    before = _reset_peak()
    clock = time.perf_counter()
    result = publish_group(GROUP, staged, f"bench-{step}", settings, shards=None)
    seconds = time.perf_counter() - clock
    peak = _peak_rss_mib()
    from fti.db.engine import session_scope
    from fti.store.catalog import list_versions

    with session_scope(db_url) as session:
        row = list_versions(session, GROUP)[-1]
        catalog = {"version": row.version, "dvc_md5": row.dvc_md5, "rows": row.row_count}
    from fti.online import online_state

    state = online_state(db_url, GROUP) or {}
    measured = {
        "fti": str(Path(fti.__file__).parent),
        "seconds": seconds,
        "peak_mib": peak,
        "extra_mib": peak - before,
        "result": result,
        "catalog": catalog,
        "online": {k: state.get(k) for k in ("version", "rows", "rows_written")},
    }
    Path(out).write_text(json.dumps(measured, default=str))


def in_process(code: Path | None, *args: str) -> dict[str, Any]:
    """``child(*args)`` in a fresh Python process importing fti from ``code`` (None: ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    try:
        subprocess.run(
            [sys.executable, __file__, "--child", *args, str(out)],
            env=env,
            cwd=REPO / "benchmarks",
            check=True,
            stdout=sys.stderr,
        )
        return dict(json.loads(out.read_text()))
    finally:
        out.unlink(missing_ok=True)


def fresh_home(name: str, code: Path | None, work: Path, pg_url: str | None) -> tuple[str, str]:
    """An initialised FTI home for one code, with its own database: (home, database URL)."""
    home = work / f"home-{name}"
    shutil.rmtree(home, ignore_errors=True)
    if pg_url:
        db_url = create_pg_database(pg_url, f"fti_bench_publish_{name}")
    else:
        Path(f"{home}.db").unlink(missing_ok=True)
        db_url = f"sqlite:///{home}.db"
    in_process(code, "init", str(home), db_url, "-")
    return str(home), db_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=200_000)
    parser.add_argument("--dates", type=int, default=30)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--before", default="main", help="git ref of the code to compare with")
    parser.add_argument("--repeat", type=int, default=2, help="runs per code (best time kept)")
    parser.add_argument("--pg-url", default=None, help="a PostgreSQL server (default: SQLite)")
    parser.add_argument("--workdir", type=Path, default=WORK / "store_publish_memory")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    work = workdir(args.workdir)
    log(f"staging {args.dates} dates x {args.entities:,} entities in {args.shards} shards")
    staged = {}
    for step in STEPS:
        shutil.rmtree(work / f"staged-{step}", ignore_errors=True)
        staged[step] = stage(
            work / f"staged-{step}", args.entities, args.dates, args.shards, step == "backfill"
        )
    codes: dict[str, Path | None] = {
        "before": export(args.before, work / "code-before"),
        "after": None,
    }
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {step: [] for step in STEPS} for name in codes
    }
    try:
        for turn in range(args.repeat):  # the codes take turns, so a busy spell hits both
            order = list(codes) if turn % 2 == 0 else list(reversed(codes))
            homes = {name: fresh_home(name, codes[name], work, args.pg_url) for name in order}
            for step in STEPS:
                for name in order:
                    home, db_url = homes[name]
                    done = in_process(codes[name], step, home, db_url, str(staged[step]))
                    results[name][step].append(done)
                    log(f"{name} {step}: {done['seconds']:.1f}s, peak {done['peak_mib']:.0f} MiB")
    finally:
        if args.pg_url:
            for name in codes:
                drop_pg_database(args.pg_url, f"fti_bench_publish_{name}")
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """Per step: each code's best time (and the spread of its runs) and highest peak."""
    print(
        f"\npublish + online materialisation of {GROUP}: {args.dates} dates x "
        f"{args.entities:,} entities ({args.entities * args.dates:,} rows), {args.shards} "
        f"shards, {'PostgreSQL' if args.pg_url else 'SQLite'}, best of {args.repeat}; before = "
        f"{args.before} at {commit_of(args.before)} ({results['before'][STEPS[0]][0]['fti']}),"
        f" after = {commit_of('HEAD')} + work tree ({results['after'][STEPS[0]][0]['fti']})"
        f" ({datetime.now(UTC):%Y-%m-%d})"
    )
    print(
        f"{'step':<9} {'mode':<12} {'before s':>15} {'after s':>15} {'after/before':>12}"
        f" {'before peak MiB':>15} {'after peak MiB':>14} {'after/before':>12}"
        f" {'before +MiB':>11} {'after +MiB':>10}  check"
    )
    for step in STEPS:
        runs = {name: results[name][step] for name in ("before", "after")}
        best = {n: min(r["seconds"] for r in rs) for n, rs in runs.items()}
        worst = {n: max(r["seconds"] for r in rs) for n, rs in runs.items()}
        spread = {n: f"({best[n]:.0f}-{worst[n]:.0f})" for n in runs}
        peak = {n: max(r["peak_mib"] for r in rs) for n, rs in runs.items()}
        extra = {n: max(r["extra_mib"] for r in rs) for n, rs in runs.items()}
        facts = [{k: r[k] for k in ("catalog", "online")} for rs in runs.values() for r in rs]
        check = "same version" if all(f == facts[0] for f in facts) else f"DIFFERENT: {facts}"
        mode = "first load" if step == "history" else "range update"
        print(
            f"{step:<9} {mode:<12} {best['before']:>6.1f}s {spread['before']:>8}"
            f" {best['after']:>6.1f}s {spread['after']:>8}"
            f" {best['after'] / best['before']:>11.2f}x {peak['before']:>15.0f}"
            f" {peak['after']:>14.0f} {peak['after'] / peak['before']:>11.2f}x"
            f" {extra['before']:>11.0f} {extra['after']:>10.0f}  {check}"
        )


if __name__ == "__main__":
    main()
