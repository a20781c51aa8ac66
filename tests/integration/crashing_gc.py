"""Run the feature store's part of `fti gc` and die at one step.

``python -m tests.integration.crashing_gc --whole HOME DB_URL PARAMS STEP`` runs the whole gc
(``fti.pipelines.retention.collect_garbage``) and dies at the fault point STEP;
``python -m tests.integration.crashing_gc STORE DB_URL STAGING STEP`` drops the versions
retention does not keep (``fti.retention.store.drop_versions``, every group's newest version
kept) and SIGKILLs its process group (itself and any git child) at STEP, as a machine going
away would:

- a name in ``fti.retention.store.FAULT_POINTS`` (``gc.untagged``: catalog rows marked
  untagged, no tag deleted; ``gc.tags``: tags deleted, catalog not reconciled;
  ``gc.reconciled``: catalog reconciled, ``dvc gc`` not run), through ``FTI_FAULT_POINT``;
- ``tag_delete``: inside ``git tag -d``, holding git's ref locks (a ``reference-transaction``
  hook kills the group once git has prepared the deletion);
- ``dvc_gc``: inside ``dvc gc``, once it has removed the first of the objects it removes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from fti.retention.store import FAULT_POINTS, drop_versions
from fti.settings import Settings
from fti.store.versions import FeatureStore
from tests.integration.crashing_publisher import (
    KEYS,
    die,
    install_hook,
    remove_hooks,
    run_module_killed,
)

MODULE = "tests.integration.crashing_gc"

STEPS = [*FAULT_POINTS, "tag_delete", "dvc_gc"]
TAG_DELETE_HOOK = """#!/bin/sh
if [ "$1" = prepared ] && grep -q ' refs/tags/'; then
    kill -KILL 0
fi
exit 0
"""


def arm(store: FeatureStore, step: str) -> None:
    if step in FAULT_POINTS:
        os.environ["FTI_FAULT_POINT"] = step
    elif step == "tag_delete":
        install_hook(store, "reference-transaction", TAG_DELETE_HOOK)
    elif step == "dvc_gc":
        from dvc_objects.fs.base import FileSystem

        real_remove = FileSystem.remove

        def remove_one_then_die(self: Any, path: Any, *args: Any, **kwargs: Any) -> None:
            paths = path if isinstance(path, list) else [path]
            real_remove(self, paths[:1], *args, **kwargs)
            die()

        FileSystem.remove = remove_one_then_die  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown step {step!r}; one of {STEPS}")


def run_killed(store: FeatureStore, db_url: str, staging: Path, step: str) -> None:
    """Run the gc in another process, SIGKILLed at ``step``; then remove the test's hooks."""
    run_module_killed(MODULE, str(store.path), db_url, str(staging), step)
    remove_hooks(store.path)


def run_whole_killed(settings: Settings, step: str) -> None:
    """Run the whole gc (``collect_garbage``) of ``settings`` in another process, SIGKILLed at
    ``step`` (``gc.pruned``: model versions marked pruned, their artifacts not removed)."""
    home, params = str(settings.home), str(settings.params_file)
    run_module_killed(MODULE, "--whole", home, settings.db_url, params, step)


if __name__ == "__main__":
    os.setpgrp()
    if sys.argv[1] == "--whole":
        from fti.pipelines.retention import collect_garbage
        from tests.conftest import MANIFEST

        home, db_url, params, step = sys.argv[2:6]
        os.environ["FTI_FAULT_POINT"] = step
        collect_garbage(
            Settings(home=home, db_url=db_url, params_file=params, manifest_path=MANIFEST)
        )
    else:
        store = FeatureStore(Path(sys.argv[1]))
        arm(store, sys.argv[4])
        drop_versions(store, sys.argv[2], Path(sys.argv[3]), keep=1, keys=KEYS)
    raise SystemExit("the gc finished although it should have been killed")
