"""Throughput and peak memory of fti's feature and inference pipelines at growing data sizes.

For each size N (raw events) one run does, on a fresh FTI home in ``<workdir>/<N>``:

1. generate ~N raw events with the churn demo generator (``DAYS`` days; customers chosen so the
   total is close to N; the table reports the real count of ``events`` rows; the generator also
   writes the ``crm`` source's daily snapshots, which are not counted);
2. the feature pipeline as ONE range run over all days, timed step by step:
   ``validate_raw_events`` (both sources) → ``build_group`` of every feature and label group →
   ``publish_group`` of each (rows/s = raw events rows/s);
3. one training of the ``churn`` model (``build_training_set`` / ``train_model`` /
   ``promote_if_better``), shown for information only;
4. per database (SQLite file in the home, and/or a throwaway PostgreSQL database that is
   migrated, trained on and dropped afterwards): ``score_batch`` of ``churn`` for the last
   ``--score-days`` dates (rows summed over the calls).

The prediction write step on its own (fti's ``write_slice`` against ``DataFrame.to_sql`` and a
bare bulk load, up to 1e7 rows) is measured by ``benchmarks/bench_inference.py``.

Every measured step runs in a fresh worker process (``spawn``); the worker times the call with
``time.perf_counter`` and reports its own peak RSS from
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (that includes the interpreter and imports: the
``worker baseline`` row is a worker that only imports fti). git/dvc child processes are not
included; they are small.

Run it from the repository root (the work folder is git-ignored)::

    .venv/bin/python benchmarks/bench_pipelines.py                     # 1e5 and 1e6, both DBs
    .venv/bin/python benchmarks/bench_pipelines.py --sizes 20000 --db sqlite

PostgreSQL: ``--pg-url`` names the server (trust auth); a database ``fti_bench_<pid>_<N>`` is
created per size and dropped at the end. Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
START = date(2026, 1, 1)  # the demo project's start date
MODEL = "churn"
DAYS = 75  # 30 days of feature warm-up + 30 (label horizon) + 2 weekly label dates, at least
EVENTS_PER_CUSTOMER_DAY = 1.14  # measured from churn_demo.generate (sign-ups included)


from databases import PG_SERVER, create_pg_database, drop_pg_database  # noqa: E402
from workers import (  # noqa: E402
    _baseline,
    _in_worker,
    _measure,
    _settings,
    log,
)


@dataclass
class Row:
    size: int
    db: str
    step: str
    rows: int
    seconds: float
    peak_rss_mib: float
    ratio: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 and self.rows else 0.0


# ---- what runs inside a fresh worker process ----------------------------------------------------


def _generate(home: str, customers: int) -> int:
    from churn_demo.generate import generate

    settings = _settings(home)
    paths = generate(settings.raw_path, START, START + timedelta(days=DAYS - 1), customers)
    # Events rows only (the generator returns the events files, then the CRM's).
    return sum(sum(1 for _ in path.open()) - 1 for path in paths if path.parent.name == "events")


def _initialise(home: str, db_url: str | None) -> int:
    from fti.setup import initialise

    initialise(_settings(home, db_url))
    return 0


def _validate(home: str, db_url: str | None) -> int:
    from fti.pipelines.features import validate_raw_events

    end = START + timedelta(days=DAYS - 1)
    summary = validate_raw_events(START, end, "bench_validate", _settings(home, db_url))
    return summary["sources"]["events"]["rows_read"]


def _build(home: str, db_url: str | None) -> dict[str, str | None]:
    """Every feature and label group's partitions of the range: {group: staged folder}."""
    from fti.pipelines.features import build_group
    from fti.pipelines.runs import setup

    settings, project = setup(_settings(home, db_url))
    end = START + timedelta(days=DAYS - 1)
    return {
        g.name: build_group(g.name, START, end, "bench_build", settings) for g in project.groups
    }


def _publish(home: str, db_url: str | None, paths: dict[str, str | None]) -> dict[str, int]:
    from fti.pipelines.features import publish_group

    settings = _settings(home, db_url)
    return {
        group: publish_group(group, path, "bench_publish", settings)["version"]
        for group, path in paths.items()
        if path
    }


def _training_set(home: str) -> tuple[str, int]:
    import pandas as pd

    from fti.pipelines.training import build_training_set

    path = build_training_set(MODEL, None, None, "bench_train", _settings(home))
    return path, len(pd.read_parquet(path, columns=["label"]))


def _train(home: str, db_url: str | None, path: str) -> dict[str, Any]:
    from fti.pipelines.training import promote_if_better, train_model

    settings = _settings(home, db_url)
    version = train_model(path, "bench_train", None, settings)
    return promote_if_better(path, version, "bench_train", settings)


def _score(home: str, db_url: str | None, dates: list[date]) -> int:
    from fti.pipelines.inference import score_batch

    settings = _settings(home, db_url)
    return sum(score_batch(MODEL, d, f"bench_score_{d}", settings=settings)["rows"] for d in dates)


# ---- the run --------------------------------------------------------------------------------------
def _share(part: float, total: float) -> str:
    return f"{part / total:.0%}"


def feature_pipeline(size: int, home: str, db: str, db_url: str | None) -> list[Row]:
    """Generate raw events, initialise the home on ``db`` and time the feature pipeline."""
    customers = max(50, round(size / (DAYS * EVENTS_PER_CUSTOMER_DAY)))
    log(f"N={size}: generating {DAYS} days x {customers} customers")
    raw, gen_s, gen_rss = _measure(_generate, home, customers)
    _in_worker(_initialise, home, db_url)
    log(f"N={size}: {raw} raw events; validating")
    read, val_s, val_rss = _measure(_validate, home, db_url)
    log(f"N={size}: building features ({val_s:.1f}s validating)")
    path, build_s, build_rss = _measure(_build, home, db_url)
    log(f"N={size}: publishing {', '.join(path)} ({build_s:.1f}s building)")
    published, pub_s, pub_rss = _measure(_publish, home, db_url, path)
    total = val_s + build_s + pub_s
    peak = max(val_rss, build_rss, pub_rss)
    rows = [
        Row(size, "-", "generate raw events (info)", raw, gen_s, gen_rss),
        Row(size, db, "feature: validate_raw_events", read, val_s, val_rss, _share(val_s, total)),
        Row(
            size,
            "-",
            f"feature: build_group x{len(path)}",
            read,
            build_s,
            build_rss,
            _share(build_s, total),
        ),
        Row(
            size,
            db,
            f"feature: publish_group x{len(published)}",
            read,
            pub_s,
            pub_rss,
            _share(pub_s, total),
        ),
        Row(size, db, "feature pipeline total", read, total, peak, "100%"),
    ]
    return rows


def inference(
    size: int,
    home: str,
    db: str,
    db_url: str | None,
    training: tuple[str, int],
    args: argparse.Namespace,
) -> list[Row]:
    """Train on this database, then time scoring."""
    if db_url:
        _in_worker(_initialise, home, db_url)
    training_path, training_rows = training
    decision, train_s, train_rss = _measure(_train, home, db_url, training_path)
    log(f"N={size} {db}: trained in {train_s:.1f}s (promoted={decision['promoted']})")
    last = START + timedelta(days=DAYS - 1)
    dates = [last - timedelta(days=i) for i in reversed(range(args.score_days))]
    scored, score_s, score_rss = _measure(_score, home, db_url, dates)
    log(f"N={size} {db}: scored {scored} rows in {score_s:.1f}s")
    return [
        Row(size, db, "train + promote once (info)", training_rows, train_s, train_rss),
        Row(size, db, f"score_batch x{len(dates)} dates (incl. write)", scored, score_s, score_rss),
    ]


def run_size(size: int, args: argparse.Namespace) -> list[Row]:
    home = args.workdir / str(size)
    shutil.rmtree(home, ignore_errors=True)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    pg_name = f"fti_bench_{os.getpid()}_{size}"
    pg_url = create_pg_database(args.pg_url, pg_name) if "postgres" in dbs else None
    try:
        # The feature pipeline records its accounting in the first database of the run.
        first_url = pg_url if dbs[0] == "postgres" else None
        rows = feature_pipeline(size, str(home), dbs[0], first_url)
        training, train_set_s, _ = _measure(_training_set, str(home))
        log(f"N={size}: training set of {training[1]} rows in {train_set_s:.1f}s")
        for db in dbs:
            url = pg_url if db == "postgres" else None
            rows += inference(size, str(home), db, url, training, args)
    finally:
        if pg_url:
            drop_pg_database(args.pg_url, pg_name)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| size | db | step | rows | seconds | rows/s | peak RSS MiB | ratio |",
        "|---:|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        size = f"{r.size:,}" if r.size else "-"
        lines.append(
            f"| {size} | {r.db} | {r.step} | {r.rows:,} | {r.seconds:.2f} | {rate} "
            f"| {r.peak_rss_mib:.0f} | {r.ratio} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        type=lambda text: [int(float(s)) for s in text.split(",") if s.strip()],
        help="raw event counts, comma-separated (default 100000,1000000)",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work")
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server, no database")
    parser.add_argument("--score-days", type=int, default=7, help="dates scored per run")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ["FTI_PARAMS_FILE"] = str(PARAMS_FILE)
    clock = time.perf_counter()
    _, _, baseline_rss = _measure(_baseline)
    rows = [Row(0, "-", "worker baseline (imports only)", 0, 0.0, baseline_rss)]
    for size in args.sizes:
        rows += run_size(size, args)
    elapsed = time.perf_counter() - clock
    (args.workdir / "results.json").write_text(
        json.dumps({"elapsed_s": elapsed, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    print(markdown(rows))
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
