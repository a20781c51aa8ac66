"""Time and peak memory per task of a sharded history load and one night, against a bare script.

For each customer count N (``--sizes``), on a fresh FTI home and raw folder:

1. raw data: ``--days`` days of history and one more day (the night) written by
   ``churn_demo.generate.generate_at_scale`` (shown for information, not counted);
2. the PLATFORM, every task in its own fresh process as a Celery worker runs it:
   - history: ``validate_raw_events`` over the history; per group ``plan_group``, then
     ``build_group`` of each shard (one process per shard), then ``publish_group``;
   - training, per model (churn, spend): ``build_training_set``, ``train_model``,
     ``promote_if_better``;
   - one night (the day after the history): ``validate_raw_events``, per group plan / build
     each shard / publish, then ``score_batch`` of both models into PostgreSQL;
3. the BARE script (``scale_bare.py``), one process, no platform: pandas reads every raw CSV
   once (types parsed, bad rows dropped) into hash buckets of customers, the churn demo's build
   functions compute features and labels over all of the data bucket by bucket,
   ``pandas.merge_asof`` joins the training frames, the training rows are sampled as the
   platform samples them (``max_training_rows``), the same estimators (params.yaml's ``train``
   section) are fitted and predict the night, and the predictions are COPYed into a PostgreSQL
   table.

The table gives, per step, seconds (summed over shards), the largest process's peak MiB and
the task count; then for each pair of sizes the growth of time and memory, and at the end the
issue's targets checked: largest task <= 3 GiB, platform / bare <= 1.5x, and from one size to
the next time growing at most 1.1x the growth of N (11x for 1e5 -> 1e6) with per-task memory
flat (at most 1.25x here).

History length: the trainings need two label dates a week apart after the spine's 30-day
warm-up and the labels' 30-day horizon, so ``--days`` must be at least 68.

fti's tables live in a fresh PostgreSQL database ``fti_bench_scale_<pid>`` (the bare
predictions in a table of it), dropped after each size. The run reads a copy of params.yaml
whose ``shards.rows_per_shard`` is ``--rows-per-shard`` (default: params.yaml's, 4,000,000
validated events a shard may load at once; the table shows each group's shard count).

Each process times its call with ``time.perf_counter`` once its code is imported (a warm
worker) and reports its own peak RSS, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which
includes the interpreter and imports (the ``baseline`` rows: a worker that only imports); git
child processes are not included (small). Every process gets ``--threads`` OpenMP/BLAS threads
(default 1): on a busy 2-core machine, scikit-learn's OpenMP threads spinning against other
work made a 2,000-row fit 30x slower. Run from the repository root; not run by pytest::

    .venv/bin/python benchmarks/bench_scale.py --quick                # 2,000 customers, 70 days
    .venv/bin/python benchmarks/bench_scale.py                        # 20,000 and 100,000, 75 days
    .venv/bin/python benchmarks/bench_scale.py --sizes 100000 1000000 --days 75
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench_pipelines import START
from databases import PG_SERVER, create_pg_database, drop_pg_database
from scale_bare import CUSTOMERS_PER_BUCKET, MODELS, _bare, _in_bare_process
from scale_tasks import (
    Where,
    _build,
    _generate,
    _groups,
    _initialise,
    _plan,
    _promote,
    _publish,
    _score,
    _train,
    _training_set,
    _validate,
)
from workers import PARAMS_FILE, WORK, _baseline, _in_worker, _measured, log

RESULTS = WORK / "bench_scale_results.json"  # git-ignored
QUICK = {"sizes": [2000], "days": 70, "rows_per_shard": 60_000}  # a few shards a group
# The trainings need 2 label dates a week apart, after the spine's 30-day warm-up and before the
# labels' 30-day horizon: 30 + 7 + 30 days before the night, the night's day included.
MIN_DAYS = 68
GIB = 1024.0  # MiB
TARGETS = {"task_mib": 3 * GIB, "platform_over_bare": 1.5, "time_per_n": 1.1, "memory": 1.25}


@dataclass
class Step:
    size: int
    phase: str  # history, training, night, bare, info
    name: str  # what the table groups by: a task and its group or model
    seconds: float
    rss_mib: float
    shard: int = 0
    shards: int = 1
    note: str = ""


# ---- the run -----------------------------------------------------------------------------------
class Runner:
    """Runs and records the tasks of one size, one process each, logging a line per task."""

    def __init__(self, size: int, where: Where) -> None:
        self.size, self.where, self.steps = size, where, []

    def run(self, phase: str, name: str, task: Callable[..., Any], *args: Any, **how: Any) -> Any:
        result, seconds, rss = _in_worker(_measured, task, self.where, *args)
        step = Step(self.size, phase, name, seconds, rss, **how)
        self.steps.append(step)
        shard = f" shard {step.shard + 1}/{step.shards}" if "shard" in how else ""
        log(f"N={self.size:,} {phase}: {name}{shard}: {seconds:.1f}s, {rss:.0f} MiB")
        return result

    def group(self, phase: str, group: str, start: date, end: date, run_id: str) -> None:
        """plan, each shard's build, publish: as the feature DAG's mapped tasks run them."""
        count = self.run(phase, f"plan_group {group}", _plan, group, start, end, run_id)
        paths = [
            self.run(
                phase,
                f"build_group {group}",
                _build,
                group,
                start,
                end,
                run_id,
                shard,
                count,
                shard=shard,
                shards=count,
            )
            for shard in range(count)
        ]
        built = sorted({p for p in paths if p})
        if built:
            self.run(phase, f"publish_group {group}", _publish, group, built[0], run_id, count)


def run_size(size: int, args: argparse.Namespace, params: Path) -> list[Step]:
    root = args.workdir / str(size)
    shutil.rmtree(root, ignore_errors=True)
    end = START + timedelta(days=args.days - 1)
    night = end + timedelta(days=1)
    raw = root / "raw"
    log(f"N={size:,}: generating {args.days + 1} days ({START}..{night}) into {raw}")
    files, gen_s, gen_rss = _in_worker(_measured, _generate, str(raw), START, night, size)
    info = [Step(size, "info", f"generate_at_scale ({files} files)", gen_s, gen_rss)]
    log(f"N={size:,}: generated in {gen_s:.1f}s ({gen_s / (args.days + 1):.2f}s a day)")
    pg_name = f"fti_bench_scale_{os.getpid()}" + (f"_{size}" if args.keep else "")
    pg_url = create_pg_database(args.pg_url, pg_name)
    where = Where(str(root / "home"), str(raw), str(params), pg_url)
    runner = Runner(size, where)
    try:
        _in_worker(_initialise, where)
        groups = _in_worker(_groups, where)
        summary = runner.run("history", "validate_raw_events", _validate, START, end, "history")
        log(f"N={size:,}: {summary['rows_read']:,} raw rows, {summary['rows_quarantined']:,} bad")
        for group in groups:
            runner.group("history", group, START, end, "history")
        for model in MODELS:
            run_id = f"training_{model}"
            path = runner.run(
                "training", f"build_training_set {model}", _training_set, model, run_id
            )
            version = runner.run("training", f"train_model {model}", _train, path, run_id)
            decision = runner.run(
                "training", f"promote_if_better {model}", _promote, path, version, run_id
            )
            runner.steps[-1].note = f"holdout {decision.get('candidate')}"
            log(f"N={size:,}: {model} v{version}: {decision['reason']}")
        runner.run("night", "validate_raw_events", _validate, night, night, "night")
        for group in groups:
            runner.group("night", group, night, night, "night")
        for model in MODELS:
            scored = runner.run(
                "night", f"score_batch {model}", _score, model, night, f"night_{model}"
            )
            runner.steps[-1].note = f"{scored['rows']:,} rows"
        log(f"N={size:,} bare: reading, building, training, scoring in one process")
        train = _train_params(params)
        bare, bare_s, bare_rss = _in_bare_process(
            _bare,
            str(raw),
            str(root / "bare"),
            pg_url,
            START,
            end,
            night,
            train,
            args.bare_customers_per_bucket,
        )
        log(f"N={size:,} bare: {bare['rows']}")
        log(f"N={size:,} bare: {bare_s:.1f}s, {bare_rss:.0f} MiB, {bare['metrics']}")
        steps = [
            Step(size, "bare", f"  {name}", s, rss) for name, (s, rss) in bare["stages"].items()
        ]
        steps.append(
            Step(size, "bare", "bare script total", bare_s, bare_rss, note=str(bare["metrics"]))
        )
    finally:
        if args.keep:
            log(f"N={size:,}: kept {root} and the database {pg_url}")
        else:
            drop_pg_database(args.pg_url, pg_name)
            shutil.rmtree(root, ignore_errors=True)
    return info + runner.steps + steps


def _train_params(params: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(params.read_text())["train"])


def write_params(path: Path, rows_per_shard: int | None) -> Path:
    """params.yaml with ``shards.rows_per_shard`` set when given (the rest as in the
    repository)."""
    import yaml

    values = yaml.safe_load(PARAMS_FILE.read_text())
    if rows_per_shard is not None:
        values.setdefault("shards", {})["rows_per_shard"] = rows_per_shard
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


# ---- the table ---------------------------------------------------------------------------------
def _rows(steps: list[Step], size: int) -> dict[str, dict[str, Any]]:
    """Per table row name: seconds (summed over shards), peak RSS (max), shard count."""
    rows: dict[str, dict[str, Any]] = {}
    for s in (s for s in steps if s.size == size):
        key = f"{s.phase}: {s.name}" if s.phase in ("history", "night") else s.name
        row = rows.setdefault(key, {"s": 0.0, "mib": 0.0, "n": 0, "note": s.note})
        row["s"] += s.seconds
        row["mib"] = max(row["mib"], s.rss_mib)
        row["n"] += 1
    platform = [s for s in steps if s.size == size and s.phase in ("history", "training", "night")]
    for phase in ("history", "training", "night"):
        part = [s for s in platform if s.phase == phase]
        rows[f"{phase} subtotal"] = {
            "s": sum(s.seconds for s in part),
            "mib": max(s.rss_mib for s in part),
            "n": len(part),
        }
    rows["PLATFORM total (tasks one after another)"] = {
        "s": sum(s.seconds for s in platform),
        "mib": max(s.rss_mib for s in platform),
        "n": len(platform),
    }
    # With every group's shards side by side (as Celery workers run mapped tasks): per build,
    # the slowest shard only.
    slowest: dict[tuple[str, str], float] = {}
    for s in platform:
        if s.name.startswith("build_group"):
            slowest[s.phase, s.name] = max(slowest.get((s.phase, s.name), 0.0), s.seconds)
    side_by_side = sum(s.seconds for s in platform if not s.name.startswith("build_group"))
    rows["platform total, shards side by side"] = {
        "s": side_by_side + sum(slowest.values()),
        "mib": max(s.rss_mib for s in platform),
        "n": 0,
    }
    bare = next(s for s in steps if s.size == size and s.name == "bare script total")
    rows["BARE total"] = {"s": bare.seconds, "mib": bare.rss_mib, "n": 1}
    total = rows["PLATFORM total (tasks one after another)"]
    rows["platform / bare"] = {
        "s": total["s"] / bare.seconds,
        "mib": total["mib"] / bare.rss_mib,
        "n": 0,
        "ratio": True,
    }
    return rows


def markdown(steps: list[Step], sizes: list[int], baseline: dict[str, float]) -> str:
    per_size = [_rows(steps, size) for size in sizes]
    names = list(dict.fromkeys(name for rows in per_size for name in rows))
    head = ["step"]
    for size in sizes:
        head += [f"N={size:,} s", "MiB", "tasks"]
    for a, b in zip(sizes, sizes[1:], strict=False):
        head += [f"x s {b // a if b % a == 0 else round(b / a, 1)}x N", "x MiB"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for label, mib in baseline.items():
        cells = [label] + ["-", f"{mib:.0f}", "-"] * len(sizes) + ["", ""] * (len(sizes) - 1)
        lines.append("| " + " | ".join(cells) + " |")
    for name in names:
        cells, values = [name], []
        for rows in per_size:
            row = rows.get(name)
            values.append(row)
            if row is None:
                cells += ["", "", ""]
            elif row.get("ratio"):
                cells += [f"{row['s']:.2f}x", f"{row['mib']:.2f}x", ""]
            else:
                cells += [f"{row['s']:.1f}", f"{row['mib']:.0f}", str(row["n"] or "")]
        for a, b in zip(values, values[1:], strict=False):
            if a and b and not a.get("ratio") and a["s"] > 0 and a["mib"] > 0:
                cells += [f"{b['s'] / a['s']:.2f}", f"{b['mib'] / a['mib']:.2f}"]
            else:
                cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- N={s.size:,} {s.name}: {s.note}"
        for s in steps
        if s.note and (s.name.startswith("promote") or s.phase == "bare" or "score" in s.name)
    ]
    return "\n".join([*lines, "", *notes])


def targets(steps: list[Step], sizes: list[int]) -> str:
    """The issue's targets, each checked: per size the largest task's peak RSS and the
    platform / bare time ratio; from one size to the next the growth of time and of the
    largest task's memory."""
    per_size = {size: _rows(steps, size) for size in sizes if any(s.size == size for s in steps)}
    total, bare = "PLATFORM total (tasks one after another)", "BARE total"

    def verdict(ok: bool) -> str:
        return "yes" if ok else "NO"

    lines = ["", "Targets (issue 24):"]
    for size, rows in per_size.items():
        task, ratio = rows[total]["mib"], rows["platform / bare"]["s"]
        lines.append(
            f"- N={size:,}: largest task {task:,.0f} MiB <= {TARGETS['task_mib']:,.0f}: "
            f"{verdict(task <= TARGETS['task_mib'])}; platform / bare time {ratio:.2f}x <= "
            f"{TARGETS['platform_over_bare']}x: {verdict(ratio <= TARGETS['platform_over_bare'])}"
            f" (platform {rows[total]['s']:,.0f} s one task after another, "
            f"{rows['platform total, shards side by side']['s']:,.0f} s shards side by side; "
            f"bare {rows[bare]['s']:,.0f} s, {rows[bare]['mib']:,.0f} MiB)"
        )
    known = list(per_size)
    for a, b in zip(known, known[1:], strict=False):
        grow_n = b / a
        grow_s = per_size[b][total]["s"] / per_size[a][total]["s"]
        grow_mib = per_size[b][total]["mib"] / per_size[a][total]["mib"]
        allowed = TARGETS["time_per_n"] * grow_n
        lines.append(
            f"- N {a:,} -> {b:,} ({grow_n:g}x): platform time {grow_s:.2f}x <= {allowed:.1f}x: "
            f"{verdict(grow_s <= allowed)}; largest task's memory {grow_mib:.2f}x <= "
            f"{TARGETS['memory']}x (flat): {verdict(grow_mib <= TARGETS['memory'])}; bare time "
            f"{per_size[b][bare]['s'] / per_size[a][bare]['s']:.2f}x"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        "--customers",
        dest="sizes",
        nargs="+",
        type=lambda text: int(float(text)),
        help="customer counts, e.g. 100000 1000000 or 1e5 1e6 (default 20000 100000; "
        "--quick: 2000)",
    )
    parser.add_argument(
        "--days",
        type=int,
        help=f"days of history before the night, at least {MIN_DAYS} (default 75; --quick: 70)",
    )
    parser.add_argument(
        "--bare-customers-per-bucket",
        type=int,
        default=CUSTOMERS_PER_BUCKET,
        help="the bare script's hash buckets hold about this many customers each "
        f"(default {CUSTOMERS_PER_BUCKET:,})",
    )
    parser.add_argument(
        "--rows-per-shard",
        type=int,
        help="params.yaml shards.rows_per_shard (default: params.yaml's)",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 customers, 70 days")
    parser.add_argument("--workdir", type=Path, help="where the homes go (default: a tmp folder)")
    parser.add_argument(
        "--keep", action="store_true", help="keep each size's home, raw files and database"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads per process (default 1, as on a worker box running "
        "several task processes; more oversubscribes a shared machine's cores)",
    )
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server, no database")
    args = parser.parse_args(argv)
    args.sizes = sorted(args.sizes or (QUICK["sizes"] if args.quick else [20000, 100000]))
    args.days = args.days or (QUICK["days"] if args.quick else 75)
    if args.days < MIN_DAYS:
        parser.error(
            f"--days {args.days}: the trainings need at least {MIN_DAYS} days of history (a "
            "30-day warm-up of the spine, two label dates a week apart, their 30-day horizon)"
        )
    if args.quick and args.rows_per_shard is None:
        args.rows_per_shard = QUICK["rows_per_shard"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)  # every process below inherits it
    temporary = args.workdir is None
    args.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fti-bench-scale-")).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    params = write_params(args.workdir / "params.yaml", args.rows_per_shard)
    log(
        f"customers {args.sizes}, {args.days} days + 1 night, rows_per_shard "
        f"{args.rows_per_shard or 'as params.yaml'}, work in {args.workdir}"
    )
    clock = time.perf_counter()
    baseline = {
        "baseline: a worker with fti.pipelines imported": _in_worker(_measured, _baseline)[2],
        "baseline: the bare process, imports only": _in_bare_process(_baseline)[2],
    }
    steps: list[Step] = []
    try:
        for size in args.sizes:
            steps += run_size(size, args, params)
    finally:
        elapsed = time.perf_counter() - clock
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {"args": vars(args) | {"workdir": str(args.workdir)}, "elapsed_s": elapsed}
                | {"baseline": baseline, "steps": [asdict(s) for s in steps]},
                indent=2,
                default=str,
            )
        )
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(markdown(steps, args.sizes, baseline))
    print(targets(steps, args.sizes))
    print(
        f"\nrows_per_shard {args.rows_per_shard or 'as params.yaml'}; "
        f"benchmark wall time {elapsed:.0f}s"
    )


if __name__ == "__main__":
    main()
