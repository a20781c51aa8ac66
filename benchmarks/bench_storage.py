"""How many bytes of fti state a small project leaves per byte of raw input, part by part.

One run does, in a fresh folder (``--workdir``, a temp folder by default):

1. ``fti new corner_shop`` (the scaffold: 5 stores x 120 days, one CSV a day);
2. in ``corner_shop``, with ``PYTHONPATH`` set to it, ``fti run --start 2025-01-01
   --end 2025-04-30 --nights 2`` (one history run, then two nights), exactly as the tutorial
   (docs/bring-your-own-data.md) does;
3. a table of the bytes each part of ``.fti`` holds, and per byte of raw input (``data/raw``).

Bytes are ``du -sb``'s, each inode counted once (``home_sizes``: a file hard-linked between
the DVC cache and the store's work tree counts in the cache row only); ``allocated`` is what
the file system gives them and ``of which folders`` what folders take. ``--demo`` measures
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
import subprocess
import sys
import time
from pathlib import Path

from home_sizes import WHOLE, home_sizes, raw_bytes, work_folder

REPO = Path(__file__).resolve().parents[1]
FTI = Path(sys.executable).with_name("fti")
RUN = ["run", "--start", "2025-01-01", "--end", "2025-04-30", "--nights", "2"]


def ratio(size: int, raw: int) -> str:
    return f"{size / raw:.0f}" if size >= 10 * raw else f"{size / raw:.2f}"


def table(home: Path, raw: int) -> str:
    lines = [
        f"raw input: {raw:,} bytes (du -sb)",
        "",
        "| part | bytes | per raw byte | of which folders | allocated | files |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, size in home_sizes(home, rest="the rest (manifest, store/quarantine, ...)").items():
        bold = "**" if label == WHOLE else ""
        lines.append(
            f"| {label} | {bold}{size.bytes:,}{bold} | {bold}{ratio(size.bytes, raw)}{bold} | "
            f"{bold}{size.folders:,}{bold} | {bold}{size.allocated:,}{bold} | "
            f"{bold}{size.files:,}{bold} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, help="folder to run in (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the folder afterwards")
    parser.add_argument("--demo", action="store_true", help="measure `fti demo` instead")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FTI_")}
    clock = time.perf_counter()
    with work_folder(args.workdir, args.keep, "fti-storage-") as work:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
