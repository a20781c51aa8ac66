"""What ``bench_storage.py`` and ``bench_retention.py`` share: the bytes each part of an
FTI_HOME holds, as ``du -sb`` counts them, and the work folder each script runs in.

Bytes are ``du -sb``'s: apparent file sizes, each inode counted once (a file hard-linked
between the DVC cache and the store's work tree counts in the cache row only, as one
``du -sb .fti`` would count it); ``allocated`` is what the file system gives them
(``du -s --block-size=1``: tiny files take a whole block), ``folders`` the part of the bytes
that folders take (``du -sb`` counts 4,096 bytes for each).
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# (label, path under FTI_HOME); earlier rows claim shared inodes first; "rest" takes the others.
PARTS = [
    ("Airflow metadata and logs (`airflow/`)", "airflow"),
    ("DVC cache in the store (`store/.dvc`)", "store/.dvc"),
    ("feature store work tree (`store/data`)", "store/data"),
    ("DVC remote (`remote`)", "remote"),
    ("staging: group builds (`staging/features`)", "staging/features"),
    ("staging: validated events (`staging/validated`)", "staging/validated"),
    ("staging: training sets (`staging/training`)", "staging/training"),
    ("fti database (`fti.db`)", "fti.db"),
    ("git history of the store (`store/.git`)", "store/.git"),
    ("artifacts (`artifacts`)", "artifacts"),
    ("raw input kept in FTI_HOME (`raw`, the demo's)", "raw"),
]
WHOLE = "**all of FTI_HOME**"


@dataclass(frozen=True)
class Size:
    """``du`` of one part: apparent bytes, allocated bytes, regular files, folder bytes."""

    bytes: int = 0
    allocated: int = 0
    files: int = 0
    folders: int = 0

    def __add__(self, other: Size) -> Size:
        return Size(
            self.bytes + other.bytes,
            self.allocated + other.allocated,
            self.files + other.files,
            self.folders + other.folders,
        )


class Counter:
    """du -sb over several paths: every inode once, the first path that reaches it owns it."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def measure(self, path: Path) -> Size:
        """The size of what under ``path`` is not counted yet."""
        if not path.exists() and not path.is_symlink():
            return Size()
        found = [path] if not path.is_dir() or path.is_symlink() else []
        if not found:
            for folder, _, files in os.walk(path):
                found.append(Path(folder))
                found.extend(Path(folder) / name for name in files)
        size = blocks = count = folders = 0
        for item in found:
            info = item.lstat()
            if (info.st_dev, info.st_ino) in self.seen:
                continue
            self.seen.add((info.st_dev, info.st_ino))
            size += info.st_size
            blocks += info.st_blocks * 512
            count += stat.S_ISREG(info.st_mode)
            folders += info.st_size if stat.S_ISDIR(info.st_mode) else 0
        return Size(size, blocks, count, folders)


def home_sizes(
    home: Path, parts: Sequence[tuple[str, str]] = PARTS, rest: str = "the rest"
) -> dict[str, Size]:
    """The size of each of ``parts`` of ``home`` ((label, path under it); the SQLite database
    with its WAL and shared-memory files), of what no part holds (``rest``), and of the whole
    (``WHOLE``)."""
    counter = Counter()
    sizes = {}
    for label, part in parts:
        suffixes = ("", "-wal", "-shm") if part == "fti.db" else ("",)
        sizes[label] = sum((counter.measure(home / f"{part}{s}") for s in suffixes), Size())
    sizes[rest] = sum((counter.measure(path) for path in home.rglob("*")), Size())
    counter.seen.clear()
    sizes[WHOLE] = counter.measure(home)
    return sizes


def raw_bytes(folder: Path) -> int:
    """``du -sb`` of the raw files' folder (its folders count, as in RESULTS.md's figures)."""
    return Counter().measure(folder).bytes


@contextmanager
def work_folder(workdir: Path | None, keep: bool, prefix: str) -> Iterator[Path]:
    """``workdir``, or a new temp folder that is removed afterwards unless ``keep``."""
    work = workdir or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if not keep and workdir is None:
            shutil.rmtree(work, ignore_errors=True)
