"""Publish a version and die at one step.

``python -m tests.integration.crashing_publisher STORE DB_URL STEP [GROUP [PERIOD]]`` publishes
two new days of ``activity`` (or GROUP; value 2; stored by PERIOD, ``day`` or ``month``) into
STORE as fti does (``publish_cataloged``): its catalog row and its online rows in the database
at DB_URL.

The process SIGKILLs its whole process group (itself and any git/DVC child) at STEP, the way a
worker dies when its machine or container goes away:

- ``parquet``: after one partition file is half written in the staging folder;
- ``swap``: after one of two partitions has been moved into the work tree;
- ``dvc_add`` / ``dvc_push``: inside DVC's add / push, once it has copied its first file into
  the cache / to the remote;
- ``git_commit``: inside ``git commit`` (a pre-commit hook holds it with the index locked);
- ``record``: before the catalog row is written;
- ``tag``: after the catalog row, before the git tag;
- ``tagged``: after the git tag, before the transaction that marks the catalog row and puts
  the version online;
- ``head_lock``: inside the first git command that moves HEAD, holding ``.git/HEAD.lock`` and
  the branch's ref lock (a ``reference-transaction`` hook kills the group when git has taken
  them): the publish's ``git commit``, or the ``git reset`` of its recovery when the store has
  a killed publish to recover;
- ``rwlock``: inside DVC's add, half way through rewriting its ``.dvc/tmp/rwlock`` file;
- ``object_lock``: inside DVC's add, once dulwich (staging the ``.dvc`` file in git) has
  created a loose object's ``.git/objects/<2>/<38>.lock`` and before it renames it;
- a name in ``versions.FAULT_POINTS`` (``publish.marker``, ``recover.*``): there, through
  ``FTI_FAULT_POINT``.

The hooks stay in the store: ``remove_hooks`` takes them away before the next publish.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fti.store import tagged, versions
from fti.store.versions import FeatureStore

GROUP = "activity"
OTHER = "visits"  # a second group of the same store
KEYS = {GROUP: "entity", OTHER: "entity"}  # both served online
FIRST = date(2026, 2, 1)
NEW_DAYS = [FIRST + timedelta(days=1), FIRST + timedelta(days=2)]
STEPS = [
    "parquet",
    "swap",
    "dvc_add",
    "dvc_push",
    "git_commit",
    "record",
    "tag",
    "tagged",
    "publish.marker",
    "head_lock",
    "rwlock",
    "object_lock",
]
HOOKS = ("pre-commit", "reference-transaction")  # what ``git_commit`` and ``head_lock`` install
# Kill the process group once git holds the locks of a transaction that moves HEAD.
HEAD_LOCK_HOOK = """#!/bin/sh
if [ "$1" = prepared ] && grep -q ' HEAD$'; then
    kill -KILL 0
fi
exit 0
"""


def partition(day: date, value: int, rows: int = 2_000) -> pa.Table:
    return pa.table(
        {
            "entity": pa.array(range(rows), pa.int64()),
            "feature_date": pa.array([day] * rows, pa.date32()),
            "x": pa.array([value] * rows, pa.int64()),
        }
    )


def die() -> None:
    os.killpg(os.getpgid(0), signal.SIGKILL)


def die_during(original: Callable[..., Any], seconds: float) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        threading.Timer(seconds, die).start()
        return original(*args, **kwargs)

    return wrapped


def die_after_first_copy(step: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``step``; the first file DVC copies or links (to its cache or the remote) is its last."""
    from dvc_objects.fs.local import LocalFileSystem

    armed = threading.Event()
    for name in ("copy", "put_file", "upload_fobj", "hardlink"):
        original = getattr(LocalFileSystem, name)

        def copy_then_die(*args: Any, _original: Any = original, **kwargs: Any) -> Any:
            result = _original(*args, **kwargs)
            if armed.is_set():
                die()
            return result

        setattr(LocalFileSystem, name, copy_then_die)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        armed.set()
        return step(*args, **kwargs)

    return wrapped


def install_hook(store: FeatureStore, name: str, script: str) -> None:
    hook = store.path / ".git" / "hooks" / name
    hook.write_text(script)
    hook.chmod(0o755)


def run_module_killed(module: str, *args: str) -> None:
    """Run ``python -m module args...`` from the repository root; it must die by SIGKILL."""
    killed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=1800,  # a guard against a hang, not a speed limit
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def run_killed(
    store: FeatureStore, catalog: str, step: str, group: str = GROUP, period: str = "day"
) -> None:
    """Run a publish of the new days of ``group`` in another process, SIGKILLed at ``step``;
    then remove the test's own git hooks (what the kill left is the next publisher's to
    recover)."""
    run_module_killed(
        "tests.integration.crashing_publisher", str(store.path), catalog, step, group, period
    )
    remove_hooks(store.path)


def remove_hooks(store: Path) -> None:
    """Take away the git hooks ``arm`` installs (the next publish must run without them)."""
    for name in HOOKS:
        (store / ".git" / "hooks" / name).unlink(missing_ok=True)


class HalfWrittenJson:
    """``json`` for ``dvc.rwlock``: its next ``dump`` writes half the text, then the group dies."""

    def __getattr__(self, name: str) -> Any:
        return getattr(json, name)

    @staticmethod
    def dump(obj: Any, fobj: Any, **kwargs: Any) -> None:
        text = json.dumps(obj, **kwargs)
        fobj.write(text[: len(text) // 2])
        fobj.flush()
        die()


def die_before(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        die()

    return wrapped


def arm(store: FeatureStore, step: str) -> None:
    cls = FeatureStore
    if step == "parquet":
        real_write = pq.write_table

        def half_written(table: pa.Table, where: Any, **kwargs: Any) -> None:
            real_write(table, where, **kwargs)
            Path(where).write_bytes(Path(where).read_bytes()[:100])
            die()

        versions.pq.write_table = half_written  # type: ignore[assignment]
    elif step == "swap":
        real_rename = Path.rename
        moved: list[Path] = []

        def rename_then_die(self: Path, target: Any) -> Any:
            result = real_rename(self, target)
            is_partition = "feature_date=" in str(target) or "feature_month=" in str(target)
            if is_partition and ".staging" not in str(target):
                moved.append(Path(target))
                if len(moved) == 1:
                    die()
            return result

        Path.rename = rename_then_die  # type: ignore[method-assign]
    elif step == "dvc_add":
        cls._dvc_add = die_after_first_copy(cls._dvc_add)  # type: ignore[method-assign]
    elif step == "dvc_push":
        cls._dvc_push = die_after_first_copy(cls._dvc_push)  # type: ignore[method-assign]
    elif step == "git_commit":
        install_hook(store, "pre-commit", "#!/bin/sh\nsleep 30\n")
        cls._git_commit = die_during(cls._git_commit, 1.0)  # type: ignore[method-assign]
    elif step == "record":
        tagged.record_version = die_before(tagged.record_version)  # type: ignore[assignment]
    elif step == "tag":
        cls._git_tag = die_before(cls._git_tag)  # type: ignore[method-assign]
    elif step == "tagged":
        tagged.confirm_published = die_before(tagged.confirm_published)  # type: ignore[assignment]
    elif step == "head_lock":
        install_hook(store, "reference-transaction", HEAD_LOCK_HOOK)
    elif step == "rwlock":
        import dvc.rwlock

        dvc.rwlock.json = HalfWrittenJson()  # type: ignore[assignment]
    elif step == "object_lock":
        import dulwich.object_store

        real_file = dulwich.object_store.GitFile

        def lock_then_die(path: Any, *args: Any, **kwargs: Any) -> Any:
            held = real_file(path, *args, **kwargs)  # creates <object>.lock, read-only
            die()  # (held: a dropped GitFile would remove its lock first)
            return held

        dulwich.object_store.GitFile = lock_then_die  # type: ignore[assignment]
    elif step in versions.FAULT_POINTS:
        os.environ["FTI_FAULT_POINT"] = step
    else:
        raise SystemExit(f"unknown step {step!r}; one of {STEPS}")


def publish(
    store: FeatureStore,
    db_url: str,
    partitions: dict[date, pa.Table],
    run_id: str,
    group: str = GROUP,
    period: str = "day",
) -> int:
    """Publish as ``publish_group`` does: catalog row, tag, then marked and online."""
    return tagged.publish_cataloged(
        store, db_url, group, partitions, run_id, run_id, keys=KEYS, period=period
    ).version


if __name__ == "__main__":
    os.setpgrp()
    store = FeatureStore(Path(sys.argv[1]))
    arm(store, sys.argv[3])
    group = sys.argv[4] if len(sys.argv) > 4 else GROUP
    period = sys.argv[5] if len(sys.argv) > 5 else "day"
    new = {day: partition(day, 2) for day in NEW_DAYS}
    publish(store, sys.argv[2], new, "killed", group, period)
    raise SystemExit("the publish finished although it should have been killed")
