"""How many bytes of fti state a small project leaves per byte of raw input, part by part.

One run does, in a fresh folder (``--workdir``, a temp folder by default):

1. ``fti new corner_shop`` (the scaffold: 5 stores x 120 days, one CSV a day);
2. in ``corner_shop``, with ``PYTHONPATH`` set to it, ``fti run --start 2025-01-01
   --end 2025-04-30 --nights 2`` (one history run, then two nights), exactly as the tutorial
   (docs/bring-your-own-data.md) does;
3. a table of the bytes each part of ``.fti`` holds, and per byte of raw input (``data/raw``).

Bytes are ``du -sb``'s: apparent file sizes, each inode counted once (a file hard-linked
between the DVC cache and the store's work tree counts in the cache row only, as one
``du -sb .fti`` would count it); the ``allocated`` column is what the file system gives them
(``du -s --block-size=1``: tiny files take a whole block), and ``of which folders`` the part
of the bytes that folders take (``du -sb`` counts 4,096 bytes for each). ``--demo`` measures
``fti demo`` (the churn demo, 2-10 minutes, from the repository root with FTI_HOME in the
work folder) instead of the small project.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_storage.py
    .venv/bin/python benchmarks/bench_storage.py --demo --keep --workdir /tmp/storage

FTI_* variables of the calling environment are dropped, so the project's ``.env`` decides.
Not run by pytest.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FTI = Path(sys.executable).with_name("fti")
RUN = ["run", "--start", "2025-01-01", "--end", "2025-04-30", "--nights", "2"]

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


class Counter:
    """du -sb over several paths: every inode once, the first path that reaches it owns it."""

    def __init__(self) -> None:
        self.seen: set[tuple[int, int]] = set()

    def measure(self, path: Path) -> tuple[int, int, int, int]:
        """(apparent bytes, allocated bytes, files, folder bytes) of what under ``path`` is not
        counted yet; folder bytes are the part of the apparent bytes that folders take."""
        if not path.exists() and not path.is_symlink():
            return 0, 0, 0, 0
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
        return size, blocks, count, folders


def raw_bytes(folder: Path) -> int:
    """``du -sb`` of the raw files' folder (its folders count, as in RESULTS.md's figures)."""
    return Counter().measure(folder)[0]


def ratio(size: int, raw: int) -> str:
    return f"{size / raw:.0f}" if size >= 10 * raw else f"{size / raw:.2f}"


def table(home: Path, raw: int) -> str:
    counter = Counter()
    rows = []
    for label, part in PARTS:
        rows.append((label, *counter.measure(home / part)))
    rest = [0, 0, 0, 0]
    for path in home.rglob("*"):  # what no part above holds (manifest, quarantine, ...)
        rest = [a + b for a, b in zip(rest, counter.measure(path), strict=True)]
    rows.append(("the rest (manifest, store/quarantine, ...)", *rest))
    counter.seen.clear()
    whole = counter.measure(home)
    lines = [
        f"raw input: {raw:,} bytes (du -sb)",
        "",
        "| part | bytes | per raw byte | of which folders | allocated | files |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, size, blocks, files, folders in rows:
        lines.append(
            f"| {label} | {size:,} | {ratio(size, raw)} | {folders:,} | {blocks:,} | {files:,} |"
        )
    lines.append(
        f"| **all of `.fti`** | **{whole[0]:,}** | **{ratio(whole[0], raw)}** | **{whole[3]:,}** | "
        f"**{whole[1]:,}** | **{whole[2]:,}** |"
    )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="folder to run in (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    parser.add_argument("--demo", action="store_true", help="measure `fti demo` instead")
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="fti-storage-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    clock = time.perf_counter()
    try:
        if args.demo:
            home = work / ".fti"
            env["FTI_HOME"] = str(home)
            # From the repository root, as `fti demo` runs (its params.yaml is there).
            subprocess.run([str(FTI), "demo"], cwd=REPO, env=env, check=True)
            raw = raw_bytes(home / "raw")
        else:
            subprocess.run([str(FTI), "new", "corner_shop"], cwd=work, env=env, check=True)
            project = work / "corner_shop"
            env["PYTHONPATH"] = os.pathsep.join(
                [str(project), *filter(None, [env.get("PYTHONPATH")])]
            )
            subprocess.run([str(FTI), *RUN], cwd=project, env=env, check=True)
            home = project / ".fti"
            raw = raw_bytes(project / "data" / "raw")
        print(
            f"\n{'fti demo' if args.demo else 'fti new + fti run'}: "
            f"{time.perf_counter() - clock:.0f}s in {work}\n"
        )
        print(table(home, raw))
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
