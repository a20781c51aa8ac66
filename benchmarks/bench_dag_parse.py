"""How long a parse of the DAG folder takes, side by side with what importing the project's
definitions would cost it (the reason the DAG files read the manifest instead).

Each measurement runs in a fresh interpreter, as the dag-processor's parse of a file does, and
the two are interleaved so that a noisy machine slows both alike. Prints a table with ratios.

    .venv/bin/python benchmarks/bench_dag_parse.py [--runs 7] [--project churn_demo.project:project]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DAGS = REPO / "dags"

PARSE = f"""
import json, sys, time
from pathlib import Path
from airflow.dag_processing.dagbag import BundleDagBag
t = time.perf_counter()
bag = BundleDagBag({str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}))
took = time.perf_counter() - t
heavy = sorted(m for m in ("pandas", "pandera", "sklearn", "dvc", "fti.pipelines") if m in sys.modules)
print(json.dumps({{"seconds": took, "dags": len(bag.dags), "errors": len(bag.import_errors), "heavy": heavy}}))
"""

IMPORT = """
import json, time
t = time.perf_counter()
from fti.definitions import load_project
load_project({reference!r})
print(json.dumps({{"seconds": time.perf_counter() - t}}))
"""


def once(code: str, env: dict[str, str]) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--project", default="churn_demo.project:project")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = dict(os.environ, AIRFLOW_HOME=home, FTI_PROJECT=args.project, FTI_HOME=home)
        env["FTI_MANIFEST_PATH"] = str(Path(home) / "manifest.json")
        subprocess.run(
            [str(Path(sys.executable).parent / "fti"), "check", "--json"],
            env=env,
            check=True,
            capture_output=True,
        )
        parses, imports = [], []
        for _ in range(args.runs):
            parses.append(once(PARSE, env))
            imports.append(once(IMPORT.format(reference=args.project), env))
    parse = statistics.median(p["seconds"] for p in parses)
    imported = statistics.median(p["seconds"] for p in imports)
    print(
        f"project {args.project}: {parses[0]['dags']} DAGs, {parses[0]['errors']} import errors, "
        f"heavy modules after a parse: {parses[0]['heavy'] or 'none'}; median of {args.runs} runs"
    )
    print("| step | seconds | ratio |\n|---|---:|---:|")
    print(f"| parse the DAG folder (reads the manifest) | {parse:.3f} | 1.00 |")
    print(f"| import + check the project definitions | {imported:.3f} | {imported / parse:.2f} |")


if __name__ == "__main__":
    main()
