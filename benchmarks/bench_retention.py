"""fti state of a one-row-a-day project over 14 nights, before and after `fti gc` (issue 26).

One weather station (``tests/projects/weather_station.py``: four readings a day, one feature
row a day, three models: binary, regression, multi-class, each a gradient-boosted ensemble)
with four years of raw files. In a fresh FTI_HOME (``--workdir``, a temp folder by default):

1. the history up to the first night (one feature run, one training of each model);
2. 14 nights, each as the nightly DAGs chain them: the feature pipeline of the night (a new
   version of the feature group and of each label group), each model trained, gated and
   scored on the night (``fti.pipelines``' functions, the tasks' bodies, called in this
   process: Airflow's own metadata is not part of the figures);
3. a table of each part of FTI_HOME (``home_sizes``' ``du -sb``, each inode once), then
   ``fti gc --dry-run`` and ``fti gc`` with the params.yaml ``retention`` section below, and
   the table again. The DVC remote is a folder beside FTI_HOME (``FTI_DVC_REMOTE``), measured
   on a line of its own: it is a backup store (S3 or another disk in production), not state.

Run it from the repository root::

    PYTHONPATH=. .venv/bin/python benchmarks/bench_retention.py [--nights 14] [--keep --workdir DIR]

Not run by pytest.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import yaml
from home_sizes import PARTS, WHOLE, Counter, Size, home_sizes, raw_bytes, work_folder

REPO = Path(__file__).resolve().parents[1]
FTI = Path(sys.executable).with_name("fti")
PROJECT = "tests.projects.weather_station:project"
START, YEARS = date(2022, 1, 1), 4
HYPER = {"max_iter": 200, "learning_rate": 0.05, "random_state": 0}
# The nights run in minutes here, not days: staging_min_age_hours 0 lets gc remove staged files
# written minutes ago, as the default 24 would once real nights have passed. remote: gc also
# removes what no kept version needs from the DVC remote (a folder beside FTI_HOME here).
RETENTION = {
    "keep_model_versions": 2,
    "keep_group_versions": 2,
    "rerun_days": 7,
    "staging_min_age_hours": 0,
    "remote": True,
}


# FTI_HOME's parts: not Airflow's (the tasks run in this process) nor raw files (beside it),
# nor the DVC remote: it is a backup store (S3 or another disk in production), measured apart.
HOME_PARTS = [
    *((label, part) for label, part in PARTS if part not in ("airflow", "raw", "remote")),
    ("store/quarantine: copies of quarantined rows", "store/quarantine"),
]
REMOTE = "DVC remote, beside FTI_HOME (a backup store, not state)"


def part_sizes(home: Path, remote: Path) -> dict[str, Size]:
    """The size of each part of FTI_HOME (``HOME_PARTS``), the whole, then the DVC remote."""
    return home_sizes(home, HOME_PARTS) | {REMOTE: Counter().measure(remote)}


def closed_sizes(settings: Any) -> dict[str, Size]:
    """``part_sizes`` once this process has closed its database connections (SQLite then folds
    its write-ahead log into the file, as it does when a task's process ends)."""
    from fti.db.engine import get_engine

    get_engine(settings.db_url).dispose()
    return part_sizes(settings.home, Path(settings.dvc_remote))


def run_nights(
    env: dict[str, str], nights: int
) -> tuple[date, float, dict[str, Size], dict[str, Size]]:
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


def table(sizes: dict[str, dict[str, Size]], raw: int) -> str:
    """Bytes of each part in each column, what ``fti gc`` freed (the last two columns), and
    the last column's files, folder bytes and allocated bytes (``du -s``: a small file takes
    a whole block)."""
    columns = list(sizes)
    lines = [
        f"raw input: {raw:,} bytes (du -sb)",
        "",
        f"| part | {' | '.join(columns)} | freed by `fti gc` | after: files, folder bytes, allocated |",
        f"|---|{'---:|' * (len(columns) + 2)}",
    ]
    for label in sizes[columns[0]]:
        values = [sizes[c][label].bytes for c in columns]
        cells = " | ".join(f"{v:,}" for v in values)
        last = sizes[columns[-1]][label]
        freed = f"{values[-2] - values[-1]:,}"
        if label == WHOLE:
            cells, freed = " | ".join(f"**{v:,}**" for v in values), f"**{freed}**"
        after = f"{last.files:,}, {last.folders:,}, {last.allocated:,}"
        lines.append(f"| {label} | {cells} | {freed} | {after} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=14)
    parser.add_argument("--workdir", type=Path, help="folder to run in (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    args = parser.parse_args()
    with work_folder(args.workdir, args.keep, "fti-retention-") as work:
        return measure(work, args.nights)


def measure(work: Path, nights: int) -> int:
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
        "FTI_DVC_REMOTE": str(work / "remote"),
        "FTI_RAW_PATH": str(raw),
        "FTI_PARAMS_FILE": str(params),
        "FTI_PROJECT": PROJECT,
        "FTI_MANIFEST_PATH": str(home / "manifest.json"),
        "PYTHONPATH": os.pathsep.join([str(REPO), *filter(None, [env.get("PYTHONPATH")])]),
    }
    from tests.projects.weather import generate

    generate(raw, START, START + timedelta(days=365 * YEARS))
    last, seconds, history, before = run_nights(env, nights)
    print(f"\nhistory + {nights} nights up to {last}: {seconds:.0f} s in {work}\n")
    for extra in (["--dry-run"], []):
        clock = time.perf_counter()
        done = subprocess.run(
            [str(FTI), "gc", *extra], cwd=work, env=env, capture_output=True, text=True
        )
        print(f"$ fti gc {' '.join(extra)}  ({time.perf_counter() - clock:.1f} s)")
        print(done.stdout[-6000:], done.stderr[-3000:], sep="\n")
        if done.returncode:
            return done.returncode
    after = part_sizes(home, work / "remote")
    columns = {
        "after the history": history,
        f"after {nights} nights": before,
        "after `fti gc`": after,
    }
    print(f"params.yaml retention: {RETENTION}\n")
    print(table(columns, raw_bytes(raw)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
