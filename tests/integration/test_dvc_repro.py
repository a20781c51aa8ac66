"""`dvc repro` runs the same pipeline as the DAGs, without Airflow, for every model of any project,
and skips unchanged stages: the churn demo in a copy of this repository's files, and a project
written by `fti new` in a folder of its own, outside the repository, with nothing of fti but the
installed package and the dvc.yaml `fti new` wrote."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from fti.scaffold import SAMPLE
from tests.conftest import REPO
from tests.user_shell import user_env

END = date(2026, 4, 10)
MODELS = {"churn": "roc_auc", "spend": "neg_root_mean_squared_error"}
HANG_GUARD = 1800  # seconds: a guard against a hang, not a speed limit


def user_shell(project: Path) -> dict[str, str]:
    """A user's environment: fti's virtual environment on PATH, the project importable, none of
    the test session's FTI_ or Airflow settings (each command reads the project's .env)."""
    env = user_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(project)  # as `export PYTHONPATH=$PWD` or `pip install -e .`
    return env


def shell(project: Path, env: dict[str, str]) -> Callable[..., str]:
    def sh(*args: str) -> str:
        done = subprocess.run(
            args,
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=HANG_GUARD,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    return sh


def reader(project: Path) -> Callable[[str], dict[str, Any]]:
    def report(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((project / "reports" / f"{name}.json").read_text())
        return loaded

    return report


def up_to_date(output: str) -> bool:
    return "didn't change" in output or "is up to date" in output.lower()


def test_dvc_repro_runs_the_churn_demo_and_is_up_to_date_afterwards(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    shutil.copytree(
        REPO / "churn_demo", project / "churn_demo", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, project / name)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    assert params["project"] == {"package": "churn_demo"}
    # Small and quick: the project's first 100 days.
    params["data"].update(start="2026-01-01", end=str(END))
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    (project / "reports").mkdir()
    env = user_shell(project)  # the churn demo is fti's default project
    sh, report = shell(project, env), reader(project)

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")
    stages = sh("dvc", "stage", "list", "--name-only").split()
    assert stages == [
        "features",
        *(f"train@{m}" for m in MODELS),
        *(f"infer@{m}" for m in MODELS),
    ]
    # Raw data is the input, not a stage: generated first (docs/bring-your-own-data.md), 200 customers.
    raw = project / params["data"]["raw"]
    sh(
        sys.executable,
        "-m",
        "churn_demo.generate",
        *("--out", str(raw), "--start", "2026-01-01", "--end", str(END), "--customers", "200"),
    )
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

    assert up_to_date(sh("dvc", "repro"))

    # One model's parameters changed: only that model's training is out of date.
    params["train"]["spend"]["max_depth"] = 3
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert list(json.loads(sh("dvc", "status", "--json"))) == ["train@spend"]
    churn_before = report("train_churn")
    sh("dvc", "repro")
    assert report("train_spend")["candidate_version"] == 2
    assert report("infer_spend")["model"] == "spend" and report("train_churn") == churn_before


def test_dvc_repro_runs_a_new_project_outside_the_repository(tmp_path: Path) -> None:
    env = user_shell(tmp_path / "corner_shop")
    shell(tmp_path, env)("fti", "new", "corner_shop")
    project = tmp_path / "corner_shop"
    assert not project.resolve().is_relative_to(REPO)
    sh, report = shell(project, env), reader(project)
    dvc_yaml = (project / "dvc.yaml").read_text()
    assert dvc_yaml == (REPO / "dvc.yaml").read_text()  # one pipeline file for every project
    assert "churn" not in dvc_yaml

    sh("git", "init", "-q")
    sh("dvc", "init", "-q")  # keeps the .dvcignore fti new wrote (.fti/ holds its own DVC repo)
    assert ".fti/" in (project / ".dvcignore").read_text().splitlines()
    assert sh("dvc", "stage", "list", "--name-only").split() == [
        "features",
        "train@sales_forecast",
        "infer@sales_forecast",
    ]
    sh("dvc", "repro")

    features = report("features")
    assert {g: p["version"] for g, p in features["published"].items()} == {
        "store_sales": 1,
        "sales_next_7d": 1,
    }
    assert features["rows_read"] == features["rows_accepted"] == SAMPLE.stores * SAMPLE.days
    train, infer = report("train_sales_forecast"), report("infer_sales_forecast")
    assert (train["model"], train["metric"]) == ("sales_forecast", "neg_mean_absolute_error")
    assert train["promoted"] and train["candidate_version"] == 1
    assert train["feature_versions"] == {"store_sales": 1}
    assert (infer["model"], infer["as_of_date"], infer["rows"]) == (
        "sales_forecast",
        str(SAMPLE.end),
        SAMPLE.stores,
    )
    assert (project / ".fti" / "fti.db").exists()  # the .env's FTI_HOME, inside the project

    assert up_to_date(sh("dvc", "repro"))
    # The project's code is a dependency: editing it re-runs every stage that runs it.
    with (project / "corner_shop" / "project.py").open("a") as code:
        code.write("\n# edited\n")
    assert sorted(json.loads(sh("dvc", "status", "--json"))) == [
        "features",
        "train@sales_forecast",
    ]
