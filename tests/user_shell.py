"""`fti` as a user runs it: in a shell of its own, with none of the test session's FTI_ or
Airflow settings, from the repository's folder unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

FTI = str(Path(sys.executable).parent / "fti")


def user_env(**fti: str | Path) -> dict[str, str]:
    """This process's environment without FTI_ and AIRFLOW variables, and ``fti``'s settings
    (``FTI_HOME=...``) over it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTI_", "AIRFLOW"))}
    return env | {key: str(value) for key, value in fti.items()}


def run_fti(
    env: dict[str, str], *args: str, cwd: Path = REPO, timeout: float = 1800
) -> subprocess.CompletedProcess[str]:
    """``fti ARGS`` in ``env``; its output captured, its exit code left to the caller."""
    return subprocess.run(
        [FTI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
