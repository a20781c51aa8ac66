"""What produced a model: the code version and the library versions, recorded at training."""

from __future__ import annotations

import platform
import subprocess
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fti import __version__

LIBRARIES = ["scikit-learn", "skops", "pandas", "pyarrow", "numpy", "dvc"]
CHECKOUT = Path(__file__).resolve().parents[1]


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "fti": __version__}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=CHECKOUT, capture_output=True, text=True, check=True
    ).stdout.strip()


@lru_cache(maxsize=1)
def code_version() -> str:
    """fti's version plus the git commit of its checkout (``.dirty`` with local changes)."""
    if not (CHECKOUT / ".git").exists():
        return __version__
    try:
        rev = _git("rev-parse", "--short=12", "HEAD")
        dirty = _git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return __version__
    return f"{__version__}+g{rev}{'.dirty' if dirty else ''}"
