"""Recovery from a publish that died: the in-progress marker that names the tag being
published, the locks a killed git or DVC process leaves, the commit that never got its tag
and the work tree, all undone by the next publisher under the publish lock (see
``FeatureStore.publish``); and the fault points where the kill tests stop a publish.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

from fti.store.layout import NAME
from fti.store.registry_repo import git, open_dvc

IN_PROGRESS = ".git/fti-publish-in-progress"  # names the tag being published until it exists
IN_PROGRESS_TAG = re.compile(rf"^({NAME})/v\d+$")  # what a whole marker holds
PUBLISH_COMMIT = re.compile(rf"^({NAME}/v\d+): ")  # the subject of a version's commit
DVC_RWLOCK = ".dvc/tmp/rwlock"  # DVC's stage read/write lock (JSON, rewritten in place)
# Named points of a publish where ``FTI_FAULT_POINT=<name>`` kills the process (see fault_point).
FAULT_POINTS = (
    "build.shard",  # a shard's build wrote its first chunk's parts, not the rest, not its mark
    "publish.marker",  # the in-progress marker's temp file exists, nothing written into it yet
    "publish.partition",  # one partition of a publish is written to its staging folder
    "recover.locks",  # recovery removed the stale locks; the work tree is not reset yet
    "recover.dropped",  # recovery dropped a commit that never got its tag
    "recover.checkout",  # recovery restored the work tree; the marker still exists
)


def fault_point(name: str) -> None:
    """Let a test kill the publisher here: SIGKILL this process if ``FTI_FAULT_POINT`` is ``name``.

    The kill tests (tests/integration/test_publish_kills.py) set the variable to one of
    ``FAULT_POINTS`` to stop a publish, or its recovery, exactly between two of its steps, as
    a machine going away would. Unset (as always outside those tests) it does nothing.
    """
    if os.environ.get("FTI_FAULT_POINT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _group_in_marker(marker: Path) -> str | None:
    """The group an in-progress marker names, or None when it cannot be read (empty, cut short)."""
    try:
        found = IN_PROGRESS_TAG.match(marker.read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        return None
    return found.group(1) if found else None


def _is_empty_rwlock(path: Path) -> bool:
    """Whether DVC's rwlock file is a lock nobody holds: ``{}``, ``{"read": {}}`` and so on.

    DVC's format (``dvc/rwlock.py``) is ``{"read": {path: [holder, ...]}, "write": {path:
    holder}}``, each key optional; an entry, a file cut short or any other shape is not empty.
    """
    try:
        lock = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(lock, dict) and all(
        key in ("read", "write") and value == {} for key, value in lock.items()
    )


class PublishRecovery:
    """The steps of ``FeatureStore.publish`` that write the in-progress marker and undo what
    an interrupted publish left (``FeatureStore`` inherits them)."""

    path: Path

    def group_dir(self, group: str) -> Path:
        raise NotImplementedError  # FeatureStore's

    def _write_marker(self, tag: str) -> None:
        """Name the tag being published in the in-progress marker, atomically.

        The tag goes to a temp file that is then renamed over the marker, so a kill leaves no
        marker or a whole one (and at worst an empty temp file, which the next marker replaces;
        with no marker there is nothing to recover, as nothing was written yet). No fsync:
        after a power loss a marker could still come back empty, and ``_recover`` then
        recovers every group, which is correct, only slower.
        """
        marker = self.path / IN_PROGRESS
        temp = marker.with_name(f"{marker.name}.tmp")
        with temp.open("w", encoding="utf-8") as out:
            fault_point("publish.marker")
            out.write(tag)
        os.replace(temp, marker)

    def _recover(self) -> None:
        """Undo whatever an interrupted publish left; a no-op after a clean one.

        Only called under the publish lock: no other fti process is writing the store, so a
        lock file of git or DVC found here is one a killed process left (see
        ``_clear_stale_locks``); they go first, since every later step needs git or DVC. With
        an in-progress marker, the commit that never got its tag is dropped and the work tree
        returns to HEAD: for the group the marker names, or for every group when the marker
        cannot be read (a publish killed while writing it, before atomic markers). Each step is
        safe to be killed in: the marker goes last, so the next publish recovers again.
        """
        self._clear_stale_locks()
        for temp in (".staging", ".trash"):
            shutil.rmtree(self.path / temp, ignore_errors=True)
        marker = self.path / IN_PROGRESS
        if not marker.exists():
            return
        fault_point("recover.locks")
        self._drop_untagged_commits()
        fault_point("recover.dropped")
        git(self.path, "reset", "-q", "--hard", "HEAD")
        git(self.path, "clean", "-q", "-fd", "--", "data")  # untracked files of that publish
        self._restore_work_tree(_group_in_marker(marker))
        fault_point("recover.checkout")
        marker.unlink()

    def _clear_stale_locks(self) -> None:
        """Remove the locks a git or DVC process leaves behind when it is killed holding them.

        git takes ``<file>.lock`` beside each file it rewrites (``HEAD``, ``index``,
        ``ORIG_HEAD``, ``packed-refs``, ``config``, each ref under ``refs/``, ...) and refuses
        to run while one exists, and dulwich (through which DVC stages ``.dvc`` files) writes a
        loose object as ``objects/<2>/<38>.lock`` before renaming it: a retry writing the same
        object would fail on it forever. So every ``*.lock`` under ``.git`` goes, loose-object
        folders included: under the store's publish lock no git process of ours runs, and
        ``gc.autoDetach=false`` leaves no background one; so does git's temp file for a new
        ``packed-refs`` (``packed-refs.new``, which a killed ``git tag -d`` leaves). DVC's stage lock ``.dvc/tmp/rwlock`` is a JSON file
        rewritten in place: a kill can leave it truncated, and then every DVC command fails;
        since no fti publisher is inside a DVC command now, any entry it holds is stale too,
        so it goes unless it is an empty lock. DVC's repo locks (``.dvc/tmp/lock``,
        ``rwlock.lock``) are ``fcntl`` locks that the kernel releases when their process dies:
        a leftover file blocks nobody, and a reader fetching from the remote may hold one now,
        so they stay.
        """
        for folder, _, files in os.walk(self.path / ".git"):
            for name in files:
                if name.endswith(".lock"):
                    (Path(folder) / name).unlink(missing_ok=True)
        # git rewrites packed-refs (a tag deleted, refs packed) through this temp file, which
        # it creates exclusively: left by a kill, every later rewrite fails on it.
        (self.path / ".git" / "packed-refs.new").unlink(missing_ok=True)
        rwlock = self.path / DVC_RWLOCK
        if rwlock.exists() and not _is_empty_rwlock(rwlock):
            rwlock.unlink()  # DVC reads a missing rwlock as an empty one

    def _drop_untagged_commits(self) -> None:
        """Drop the commit of a publish killed before its tag (``<group>/v<N>: ...``, no tag)."""
        while True:
            subject = git(self.path, "log", "-1", "--format=%s")
            unfinished = PUBLISH_COMMIT.match(subject)
            if not unfinished or git(self.path, "tag", "--list", unfinished.group(1)):
                return
            git(self.path, "reset", "-q", "--hard", "HEAD~1")

    def _restore_work_tree(self, group: str | None) -> None:
        """Put the DVC-tracked data of ``group`` (``None``: every group) back as HEAD has it.

        A group folder without a ``.dvc`` file at HEAD belongs to a first version that was never
        made, and is removed.
        """
        data = self.path / "data"
        folders = [self.group_dir(group)] if group else [p for p in data.glob("*") if p.is_dir()]
        tracked = [str(f.with_suffix(".dvc")) for f in folders if f.with_suffix(".dvc").exists()]
        if tracked:
            with open_dvc(self.path) as repo:
                repo.checkout(tracked, force=True)
        for folder in folders:
            if folder.exists() and not folder.with_suffix(".dvc").exists():
                shutil.rmtree(folder)
