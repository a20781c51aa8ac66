"""The DVC data registry behind the feature store: a git repo, a DVC cache and a DVC remote."""

from __future__ import annotations

import logging
import os
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
    # A commit's automatic `git gc` runs in the foreground, inside the publish lock: no git
    # process outlives the command that started it, so the next publish may clear every lock
    # git left (recovery does) without touching a live one.
    "-c",
    "gc.autoDetach=false",
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


def _dvc_config_files(store: Path) -> list[Path]:
    """DVC's config files for the store, lowest priority first, as ``dvc.config.Config`` has them."""
    import platformdirs

    system = os.getenv("DVC_SYSTEM_CONFIG_DIR") or platformdirs.site_config_dir("dvc", "iterative")
    user = os.getenv("DVC_GLOBAL_CONFIG_DIR") or platformdirs.user_config_dir("dvc", "iterative")
    dvc_dir = store / ".dvc"
    return [
        Path(system) / "config",
        Path(user) / "config",
        dvc_dir / "config",
        dvc_dir / "config.local",
    ]


def cache_objects_dir(store: Path) -> Path:
    """Where DVC 3 keeps the store's objects: ``<cache dir>/files/md5`` (then ``ab/cdef...``).

    The cache dir is ``cache.dir`` of the last DVC config file that sets it (system, global,
    the store's ``.dvc/config``, then ``.dvc/config.local``), a relative path being relative
    to that file's folder, or ``.dvc/cache`` by default, as DVC resolves it. The files are
    read with configobj, as DVC reads them, so finding an object costs no DVC ``Repo``
    (tens of milliseconds). A cache named as ``cache.local = <remote>`` is not followed here:
    its objects then look missing, and the reader asks DVC itself while fetching them.
    """
    from configobj import ConfigObj

    cache = store / ".dvc" / "cache"
    for config in _dvc_config_files(store):
        if not config.is_file():
            continue
        try:  # DVC lower-cases section and option names
            sections = {k.lower(): v for k, v in ConfigObj(str(config)).items()}
            setting = {k.lower(): v for k, v in (sections.get("cache") or {}).items()}.get("dir")
        except Exception as error:  # noqa: BLE001 - DVC itself will say what is wrong
            logging.getLogger(__name__).warning("could not read %s: %s", config, error)
            continue
        if setting:
            cache = config.parent / os.path.expanduser(str(setting))
    return Path(os.path.abspath(cache)) / "files" / "md5"


# How DVC puts a cached object into the work tree: a hard link (the work tree and the cache
# share one file, which DVC makes read-only), else a copy (e.g. a cache on another disk). Not
# "reflink" first: DVC then takes any single-link file for a reflink and keeps copies where the
# file system has no reflinks (ext4). fti never writes into a partition file in place: a
# publish writes new files elsewhere and renames their folders in, and recovery asks DVC to
# check out, which unlinks before it links.
CACHE_TYPE = "hardlink,copy"


def init_store(store: Path, remote: str) -> None:
    """Create the registry (idempotent): git repo, DVC with the remote as default.

    Run on an existing store (every ``fti init`` and ``fti run`` does), it sets what an older
    fti did not: e.g. ``cache.type`` (``CACHE_TYPE``, unless the store's DVC config names one)
    then applies to the partitions published from then on; partitions already in the work
    tree stay copies until ``dvc checkout --relink`` (run in the store, with no publish
    running) makes them links.
    """
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
        conf["cache"].setdefault("type", CACHE_TYPE)  # not a second copy of every partition
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
