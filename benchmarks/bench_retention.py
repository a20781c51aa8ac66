"""fti state of a one-row-a-day project over 14 nights, before and after `fti gc` (issue 26).

One weather station (``tests/projects/weather_station.py``: four readings a day, one feature
row a day, three models: binary, regression, multi-class, each a gradient-boosted ensemble)
with four years of raw files. In a fresh FTI_HOME (``--workdir``, a temp folder by default):

1. the history up to the first night (one feature run, one training of each model);
2. 14 nights, each as the nightly DAGs chain them: the feature pipeline of the night (a new
   version of the feature group and of each label group), each model trained, gated and
   scored on the night (``fti.pipelines``' functions, the tasks' bodies, called in this
   process: Airflow's own metadata is not part of the figures);
3. a table of each part of FTI_HOME (``bench_storage``'s ``du -sb``, each inode once), then
   ``fti gc --dry-run`` and ``fti gc`` with the params.yaml ``retention`` section below, and
   the table again.

Run it from the repository root::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_retention.py [--nights 14] [--keep --workdir DIR]

Not run by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from bench_storage import PARTS, Counter, raw_bytes

REPO = Path(__file__).resolve().parents[1]
FTI = Path(sys.executable).with_name("fti")
PROJECT = "tests.projects.weather_station:project"
START, YEARS = date(2022, 1, 1), 4
HYPER = {"max_iter": 200, "learning_rate": 0.05, "random_state": 0}
# The nights run in minutes here, not days: staging_min_age_hours 0 lets gc remove staged files
# written minutes ago, as the default 24 would once real nights have passed. remote: the DVC
# remote is a folder of FTI_HOME in this embedded set-up.
RETENTION = {
    "keep_model_versions": 2,
    "keep_group_versions": 2,
    "rerun_days": 7,
    "staging_min_age_hours": 0,
    "remote": True,
}


def part_sizes(home: Path) -> dict[str, int]:
    """Bytes of each part of FTI_HOME (``bench_storage.PARTS``; the database with its WAL),
    and the whole."""
    counter = Counter()
    sizes = {
        label: sum(
            counter.measure(home / f"{part}{suffix}")[0]
            for suffix in (("", "-wal", "-shm") if part == "fti.db" else ("",))
        )
        for label, part in PARTS
        if part not in ("airflow", "raw")  # not in this run's FTI_HOME
    }
    sizes["store/quarantine: copies of quarantined rows"] = counter.measure(
        home / "store" / "quarantine"
    )[0]
    rest = 0
    for path in home.rglob("*"):
        rest += counter.measure(path)[0]
    sizes["the rest"] = rest
    counter.seen.clear()
    sizes["**all of FTI_HOME**"] = counter.measure(home)[0]
    return sizes


def closed_sizes(settings: Any) -> dict[str, int]:
    """``part_sizes`` once this process has closed its database connections (SQLite then folds
    its write-ahead log into the file, as it does when a task's process ends)."""
    from fti.db.engine import get_engine

    get_engine(settings.db_url).dispose()
    return part_sizes(settings.home)


def run_nights(
    env: dict[str, str], nights: int
) -> tuple[date, float, dict[str, int], dict[str, int]]:
    """The history, then ``nights`` nights; returns the last night, the seconds it took and
    the part sizes after the history and after the nights."""
    os.environ.update(env)
    from fti.pipelines.features import run_features
    from fti.pipelines.inference import score_batch
    from fti.pipelines.training import build_training_set, promote_if_better, train_model
    from fti.settings import get_settings
    from fti.setup import initialise
    from tests.projects.weather_station import MODELS

    settings = get_settings()
    initialise(settings)
    end = START + timedelta(days=365 * YEARS)
    first = end - timedelta(days=nights)
    clock = time.perf_counter()
    run_features(START, first - timedelta(days=1), "history", settings)
    for model in MODELS:
        path = build_training_set(model, None, None, f"history-{model}", settings)
        version = train_model(path, f"history-{model}", settings=settings)
        promote_if_better(path, version, f"history-{model}", settings)
    history = closed_sizes(settings)
    for n in range(nights):
        night = first + timedelta(days=n)
        run_features(night, night, f"night-{night}", settings)
        for model in MODELS:
            run = f"{model}-{night}"
            path = build_training_set(model, None, None, run, settings)
            version = train_model(path, run, settings=settings)
            promote_if_better(path, version, run, settings)
            score_batch(model, night, f"score-{run}", settings=settings)
        print(f"  night {n + 1}/{nights} ({night}) done", flush=True)
    seconds = time.perf_counter() - clock
    return end - timedelta(days=1), seconds, history, closed_sizes(settings)


def table(sizes: dict[str, dict[str, int]], raw: int) -> str:
    columns = list(sizes)
    lines = [
        f"raw input: {raw:,} bytes (du -sb)",
        "",
        f"| part | {' | '.join(columns)} | freed by `fti gc` |",
        f"|---|{'---:|' * (len(columns) + 1)}",
    ]
    for label in sizes[columns[0]]:
        values = [sizes[c][label] for c in columns]
        cells = " | ".join(f"{v:,}" for v in values)
        lines.append(f"| {label} | {cells} | {values[-2] - values[-1]:,} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=14)
    parser.add_argument("--workdir", type=Path, help="folder to run in (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fti-retention-"))
    work.mkdir(parents=True, exist_ok=True)
    home, raw = work / ".fti", work / "raw"
    params = work / "params.yaml"
    sections: dict[str, Any] = {
        "train": {model: dict(HYPER) for model in ("rain", "rain_mm", "rain_class")},
        "retention": RETENTION,
    }
    params.write_text(yaml.safe_dump(sections, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    env |= {
        "FTI_HOME": str(home),
        "FTI_RAW_PATH": str(raw),
        "FTI_PARAMS_FILE": str(params),
        "FTI_PROJECT": PROJECT,
        "FTI_MANIFEST_PATH": str(home / "manifest.json"),
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])]),
    }
    try:
        from tests.projects.weather import generate

        generate(raw, START, START + timedelta(days=365 * YEARS))
        last, seconds, history, before = run_nights(env, args.nights)
        print(f"\nhistory + {args.nights} nights up to {last}: {seconds:.0f} s in {work}\n")
        for extra in (["--dry-run"], []):
            clock = time.perf_counter()
            done = subprocess.run(
                [str(FTI), "gc", *extra], cwd=work, env=env, capture_output=True, text=True
            )
            print(f"$ fti gc {' '.join(extra)}  ({time.perf_counter() - clock:.1f} s)")
            print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
            if done.returncode:
                return done.returncode
        after = part_sizes(home)
        columns = {
            "after the history": history,
            f"after {args.nights} nights": before,
            "after `fti gc`": after,
        }
        print(f"params.yaml retention: {RETENTION}\n")
        print(table(columns, raw_bytes(raw)))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
