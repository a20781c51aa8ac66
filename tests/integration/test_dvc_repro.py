"""`dvc repro` runs the same pipeline as the DAGs, without Airflow, and skips unchanged stages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import REPO


def test_dvc_repro_runs_the_pipeline_and_is_up_to_date_afterwards(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("fti", "churn_demo"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", project / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"].update(start="2026-01-21", end="2026-04-30", customers=300)  # small and quick
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / "reports").mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FTI_HOME": str(project / ".fti"),
        "FTI_RAW_PATH": str(project / ".fti" / "raw"),
        "FTI_PARAMS_FILE": str(project / "params.yaml"),
    }

    def sh(*args: str) -> str:
        done = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    shutil.copy(REPO / ".dvcignore", project / ".dvcignore")
    sh("dvc", "repro")

    features = json.loads((project / "reports" / "features.json").read_text())
    train = json.loads((project / "reports" / "train.json").read_text())
    infer = json.loads((project / "reports" / "infer.json").read_text())
    assert (
        features["version"] == 1
        and features["rows_read"] == features["rows_accepted"] + features["rows_quarantined"]
    )
    assert train["promoted"] and train["candidate_version"] == 1
    assert (
        infer["as_of_date"] == "2026-04-30" and infer["rows"] > 0 and infer["feature_version"] == 1
    )

    second = sh("dvc", "repro")
    assert "didn't change" in second or "is up to date" in second.lower()
