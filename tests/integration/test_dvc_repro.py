"""`dvc repro` runs the same pipeline as the DAGs, without Airflow, for every model of the
project, and skips unchanged stages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml

from tests.conftest import REPO

END = date(2026, 4, 10)
MODELS = {"churn": "roc_auc", "spend": "neg_root_mean_squared_error"}


def test_dvc_repro_runs_the_pipeline_and_is_up_to_date_afterwards(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    for name in ("fti", "churn_demo"):
        shutil.copytree(REPO / name, project / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "dvc.yaml", project / "dvc.yaml")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    # Small and quick: the project's first 100 days, 200 customers.
    params["data"].update(start="2026-01-01", end=str(END), customers=200)
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / "reports").mkdir()
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "FTI_HOME": str(project / ".fti"),
        "FTI_RAW_PATH": str(project / ".fti" / "raw"),
        "FTI_PARAMS_FILE": str(project / "params.yaml"),
        "FTI_MANIFEST_PATH": str(project / ".fti" / "manifest.json"),
    }

    def sh(*args: str) -> str:
        done = subprocess.run(
            args, cwd=project, env=env, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def report(name: str) -> dict:  # type: ignore[type-arg]
        return json.loads((project / "reports" / f"{name}.json").read_text())

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    shutil.copy(REPO / ".dvcignore", project / ".dvcignore")
    stages = sh("dvc", "stage", "list", "--name-only").split()
    assert stages == [
        "generate",
        "features",
        *(f"train@{m}" for m in MODELS),
        *(f"infer@{m}" for m in MODELS),
    ]
    sh("dvc", "repro")

    features = report("features")
    assert {g: p["version"] for g, p in features["published"].items()} == {
        "customer_activity": 1,
        "customer_profile": 1,
        "churned_30d": 1,
        "spend_next_30d": 1,
    }
    assert set(features["sources"]) == {"events", "crm"}
    assert features["rows_read"] == features["rows_accepted"] + features["rows_quarantined"]
    for model, metric in MODELS.items():
        train, infer = report(f"train_{model}"), report(f"infer_{model}")
        assert (train["model"], train["metric"]) == (model, metric)
        assert train["promoted"] and train["candidate_version"] == 1
        assert train["feature_versions"] == {"customer_activity": 1, "customer_profile": 1}
        assert (infer["model"], infer["as_of_date"], infer["feature_version"]) == (
            model,
            str(END),
            1,
        )
        assert infer["rows"] > 0
    assert report("infer_churn")["rows"] == report("infer_spend")["rows"]

    second = sh("dvc", "repro")
    assert "didn't change" in second or "is up to date" in second.lower()

    # One model's parameters changed: only that model's training is out of date.
    params["train"]["spend"]["max_depth"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert list(json.loads(sh("dvc", "status", "--json"))) == ["train@spend"]
    churn_before = report("train_churn")
    sh("dvc", "repro")
    assert report("train_spend")["candidate_version"] == 2
    assert report("infer_spend")["model"] == "spend" and report("train_churn") == churn_before
