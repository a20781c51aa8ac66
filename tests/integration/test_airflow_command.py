"""`fti airflow` and `fti airflow-env` from a project folder outside the repository: the set-up
before `airflow standalone` (fti's home, the manifest, Airflow's database, the publish pool) is
done for real, and the environment printed is everything Airflow needs to run that project's
DAGs from any folder. `airflow standalone` itself is not started here: the browser test
(tests/browser) runs it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from fti.runner import PUBLISH_POOL
from tests.conftest import REPO
from tests.user_shell import user_env

HANG_GUARD = 1800  # seconds: a guard against a hang, not a speed limit
PORT = 8793  # printed, never listened on: nothing is started


def user_shell(pythonpath: str | None) -> dict[str, str]:
    """A user's environment: fti's virtual environment on PATH, none of the test session's
    FTI_ or Airflow settings (fti reads the project's .env)."""
    env = user_env()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=HANG_GUARD
    )


def parse(lines: str) -> dict[str, str]:
    """``KEY='value'`` lines as a shell reads them."""
    pairs = [shlex.split(line)[0].split("=", 1) for line in lines.splitlines() if line.strip()]
    return {key: value for key, value in pairs}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """`fti new corner_shop` in a tmp folder, outside the repository."""
    done = run(tmp_path, user_shell(None), "fti", "new", "corner_shop")
    assert done.returncode == 0, done.stdout + done.stderr
    folder = (tmp_path / "corner_shop").resolve()
    assert not folder.is_relative_to(REPO)
    return folder


def test_airflow_env_prints_everything_airflow_needs_for_the_project(project: Path) -> None:
    # PYTHONPATH=. as a user types it: the printed one is absolute, the project's folder first.
    env = user_shell(".")
    done = run(project, env, "fti", "airflow-env", "--port", str(PORT))
    assert done.returncode == 0, done.stderr
    printed = parse(done.stdout)
    assert printed["PYTHONPATH"].split(os.pathsep) == [str(project)]
    assert printed["FTI_PROJECT"] == "corner_shop.project:project"
    # Every path is absolute and the project's own (from its .env), so Airflow's processes find
    # them whatever folder they start in.
    assert printed["FTI_HOME"] == str(project / ".fti")
    assert printed["FTI_RAW_PATH"] == str(project / "data" / "raw")
    assert printed["FTI_PARAMS_FILE"] == str(project / "params.yaml")
    assert printed["FTI_MANIFESTS"] == str(project / ".fti" / "manifests")
    assert "FTI_MANIFEST_PATH" not in printed  # the folder: other projects may join it
    assert printed["FTI_STORE_PATH"] == str(project / ".fti" / "store")
    assert printed["FTI_DB_URL"] == f"sqlite:///{project / '.fti' / 'fti.db'}"
    assert printed["AIRFLOW_HOME"] == str(project / ".fti" / "airflow")
    assert printed["AIRFLOW__CORE__DAGS_FOLDER"] == str(REPO / "dags")
    assert printed["AIRFLOW__CORE__PLUGINS_FOLDER"] == str(REPO / "plugins")
    assert printed["AIRFLOW__API__BASE_URL"] == f"http://localhost:{PORT}"
    # A setting from the environment wins over .env, and is passed on too.
    env["FTI_MAX_QUARANTINE_SHARE"] = "0.05"
    done = run(project, env, "fti", "airflow-env")
    assert parse(done.stdout)["FTI_MAX_QUARANTINE_SHARE"] == "0.05"
    assert "AIRFLOW__API__PORT" not in parse(done.stdout)


def test_airflow_prepares_the_project_and_prints_its_environment(project: Path) -> None:
    env = user_shell(".")
    done = run(project, env, "fti", "airflow", "--port", str(PORT), "--prepare-only")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Traceback" not in done.stderr
    printed = parse(done.stdout)  # the same lines as airflow-env's: stdout holds nothing else
    assert printed == parse(run(project, env, "fti", "airflow-env", "--port", str(PORT)).stdout)
    assert printed["PYTHONPATH"].split(os.pathsep)[0] == str(project)
    assert (printed["AIRFLOW__CORE__DAGS_FOLDER"], printed["AIRFLOW__CORE__PLUGINS_FOLDER"]) == (
        str(REPO / "dags"),
        str(REPO / "plugins"),
    )
    # What fti init does: the manifest of this project, which the DAG files are generated from.
    manifest = json.loads((project / ".fti" / "manifests" / "corner_shop.json").read_text())
    assert (manifest["project"], manifest["reference"]) == (
        "corner_shop",
        "corner_shop.project:project",
    )
    assert (project / ".fti" / "fti.db").exists() and (project / ".fti" / "store").is_dir()

    # Airflow's own commands, in the printed environment, see a migrated database with the pool.
    airflow_env = {**env, **printed}
    migrated = run(project, airflow_env, "airflow", "db", "check-migrations", "-t", "0")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert (project / ".fti" / "airflow" / "airflow.db").exists()
    pool = run(project, airflow_env, "airflow", "pools", "get", PUBLISH_POOL, "-o", "json")
    assert pool.returncode == 0, pool.stdout + pool.stderr
    [row] = json.loads(pool.stdout)
    assert (row["pool"], int(row["slots"])) == (PUBLISH_POOL, 1)


def test_the_pool_is_the_one_the_publish_tasks_run_in() -> None:
    sys.path.insert(0, str(REPO / "dags"))
    try:
        from fti_common import PUBLISH_POOL as dags_pool
    finally:
        sys.path.remove(str(REPO / "dags"))
    assert dags_pool == PUBLISH_POOL


def test_airflow_refuses_a_project_it_cannot_import_before_touching_anything(
    project: Path,
) -> None:
    # fti imports a package from the folder it runs in: moved into src/, it is not found there.
    (project / "src").mkdir()
    (project / "corner_shop").rename(project / "src" / "corner_shop")
    done = run(project, user_shell(None), "fti", "airflow", "--prepare-only")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: cannot load project definition 'corner_shop.project:project'")
    assert f"PYTHONPATH={project / 'src'}" in line
    assert not (project / ".fti").exists() and done.stdout == ""
