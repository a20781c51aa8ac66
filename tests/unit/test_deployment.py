"""fti.deployment.project_env: a project's task runs in its environment, and the process's
own is back afterwards, even when the task failed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from fti.deployment import project_env


def test_a_projects_environment_is_set_for_the_block_and_restored_after_a_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FTI_PROJECT", "churn_demo.project:project")
    monkeypatch.delenv("FTI_RAW_PATH", raising=False)
    monkeypatch.setenv("FTI_PARAMS_FILE", "/elsewhere/params.yaml")
    path = list(sys.path)
    manifest = {
        "reference": "shop.project:project",
        "params_file": str(tmp_path / "params.yaml"),
        "raw_path": str(tmp_path / "raw"),
        "folder": str(tmp_path),
    }
    with pytest.raises(RuntimeError), project_env(manifest):
        assert os.environ["FTI_PROJECT"] == "shop.project:project"
        assert os.environ["FTI_PARAMS_FILE"] == str(tmp_path / "params.yaml")
        assert os.environ["FTI_RAW_PATH"] == str(tmp_path / "raw")
        assert sys.path[0] == str(tmp_path)
        raise RuntimeError("the task failed")
    assert os.environ["FTI_PROJECT"] == "churn_demo.project:project"
    assert os.environ["FTI_PARAMS_FILE"] == "/elsewhere/params.yaml"
    assert "FTI_RAW_PATH" not in os.environ
    assert sys.path == path
    # A one-file deployment's manifest records no environment: the process's own stays.
    with project_env({"reference": "churn_demo.project:project", "params_file": None}):
        assert os.environ["FTI_PARAMS_FILE"] == "/elsewhere/params.yaml"
        assert sys.path == path
