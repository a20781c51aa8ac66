"""The DVC data registry behind the feature store: a git repo, a DVC cache and a DVC remote."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

from fti.errors import StoreError

GIT_IDENTITY = [
    "-c",
    "user.name=fti",
    "-c",
    "user.email=fti@localhost",
    "-c",
    "commit.gpgsign=false",
]


def git(store: Path, *args: str) -> str:
    """Run one git command in the store; raise StoreError with git's message when it fails."""
    done = subprocess.run(
        ["git", *GIT_IDENTITY, *args], cwd=store, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise StoreError(f"git {' '.join(args)} failed in {store}: {done.stderr.strip()}")
    return done.stdout.strip()


def open_dvc(store: Path):  # type: ignore[no-untyped-def]
    from dvc.repo import Repo

    logging.getLogger("dvc").setLevel(logging.WARNING)
    return Repo(str(store))


def init_store(store: Path, remote: str) -> None:
    """Create the registry (idempotent): git repo, DVC with the remote as default."""
    store.mkdir(parents=True, exist_ok=True)
    if not (store / ".git").exists():
        git(store, "init", "-q", "-b", "main")
    if not (store / ".dvc").exists():
        from dvc.repo import Repo

        Repo.init(str(store))
    repo = open_dvc(store)
    with repo.config.edit() as conf:
        # Keep other options of the remote (endpointurl, credentials in config.local).
        conf["remote"].setdefault("storage", {})["url"] = remote
        conf["core"]["remote"] = "storage"
        conf["core"]["autostage"] = True
        conf["core"]["analytics"] = False
    if remote and "://" not in remote:
        Path(remote).mkdir(parents=True, exist_ok=True)
    gitignore = store / ".gitignore"
    ignored = gitignore.read_text().splitlines() if gitignore.exists() else []
    wanted = [".staging/", ".trash/", "*.lock", "/quarantine/"]  # quarantine: Parquet copies
    if missing := [line for line in wanted if line not in ignored]:
        gitignore.write_text("\n".join([*ignored, *missing]) + "\n")
    git(store, "add", "-A")
    if git(store, "status", "--porcelain"):
        git(store, "commit", "-q", "-m", "Initialise fti feature store")
