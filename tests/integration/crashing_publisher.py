"""Publish a version and die at one step.

``python -m tests.integration.crashing_publisher STORE DB_URL STEP`` publishes two new days of
``activity`` (value 2) into STORE, with its catalog row in the database at DB_URL.

The process SIGKILLs its whole process group (itself and any git/DVC child) at STEP, the way a
worker dies when its machine or container goes away:

- ``parquet``: after one partition file is half written in the staging folder;
- ``swap``: after one of two partitions has been moved into the work tree;
- ``dvc_add`` / ``dvc_push``: inside DVC's add / push, once it has copied its first file into
  the cache / to the remote;
- ``git_commit``: inside ``git commit`` (a pre-commit hook holds it with the index locked);
- ``record``: before the catalog row is written;
- ``tag``: after the catalog row, before the git tag.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from fti.db.engine import session_scope
from fti.store import versions
from fti.store.catalog import record_version
from fti.store.versions import FeatureStore

GROUP = "activity"
FIRST = date(2026, 2, 1)
NEW_DAYS = [FIRST + timedelta(days=1), FIRST + timedelta(days=2)]
STEPS = ["parquet", "swap", "dvc_add", "dvc_push", "git_commit", "record", "tag"]


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
    """Run ``step``; the first file DVC copies (to its cache or the remote) is its last."""
    from dvc_objects.fs.local import LocalFileSystem

    armed = threading.Event()
    for name in ("copy", "put_file", "upload_fobj"):
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


def die_before(original: Callable[..., Any]) -> Callable[..., Any]:
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        die()

    return wrapped


def arm(store: FeatureStore, step: str, record: list[Callable[[Any], None]]) -> None:
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
            if "feature_date=" in str(target) and ".staging" not in str(target):
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
        hook = store.path / ".git" / "hooks" / "pre-commit"
        hook.write_text("#!/bin/sh\nsleep 30\n")
        hook.chmod(0o755)
        cls._git_commit = die_during(cls._git_commit, 1.0)  # type: ignore[method-assign]
    elif step == "record":
        record[0] = die_before(record[0])
    elif step == "tag":
        cls._git_tag = die_before(cls._git_tag)  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown step {step!r}; one of {STEPS}")


def catalog_writer(
    db_url: str, store: FeatureStore, partitions: dict[date, pa.Table], run_id: str
) -> Callable[[versions.PublishedVersion], None]:
    """The ``record`` step of a publish: the version's row in fti's SQL catalog."""

    def record(published: versions.PublishedVersion) -> None:
        with session_scope(db_url, write=True) as session:
            record_version(
                session,
                published,
                partitions,
                run_id,
                lambda day: versions.read_partition_in_work_tree(store, GROUP, day),
            )

    return record


def publish(store: FeatureStore, db_url: str, partitions: dict[date, pa.Table], run_id: str) -> int:
    record = catalog_writer(db_url, store, partitions, run_id)
    return store.publish(GROUP, partitions, run_id, record=record).version


if __name__ == "__main__":
    os.setpgrp()
    store = FeatureStore(Path(sys.argv[1]))
    partitions = {day: partition(day, 2) for day in NEW_DAYS}
    record = [catalog_writer(sys.argv[2], store, partitions, "killed")]
    arm(store, sys.argv[3], record)
    store.publish(GROUP, partitions, "killed", record=record[0])
    raise SystemExit("the publish finished although it should have been killed")
