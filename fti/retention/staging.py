"""Retention in the staging folder: the staged files no build, id check or rerun reads any more
(``fti.retention.plan`` says which), listed and removed.

What staging holds (``FTI_STAGING_PATH``) and what goes:

- ``validated/<source>/<day>.parquet`` (and ``<day>.ids.npy`` beside it): a day before its
  source's cut (``staging_cuts``). A rerun or backfill of a date that needs a removed day
  validates it again from its raw file (``fti.pipelines.features.plan_group`` does), which
  retention never touches; the day's validation record stays.
- ``features/<group>/<start>_<end>_<run>`` (a build not published) and its
  ``.published.json`` record: a run whose last date lies before the group's rerun window.
- ``training/<model>/<run>.parquet|json`` and ``scores/<model>/<date>_<run>`` (spools a failed
  scoring run left): all but each model's newest ``keep_model_versions`` runs' (a cleared task
  of an older run builds its training set again first).

Nothing written in the last ``staging_min_age_hours`` hours goes (``settled``): a run may be
reading it. Removing a file is the whole step: a kill leaves the others for the next gc, and nothing reads
what a plan removes.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Collection, Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path

from fti.definitions import Project
from fti.retention.plan import StagedFile, rerun_window_start

BUILD = re.compile(r"^(\d{4}-\d{2}-\d{2})_(\d{4}-\d{2}-\d{2})_")
DAY = re.compile(r"^(\d{4}-\d{2}-\d{2})\.(parquet|ids\.npy)$")


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def newest_days(staging: Path, project: Project) -> dict[str, date | None]:
    """Per source: the day after its newest staged day (None: none staged)."""
    found: dict[str, date | None] = {}
    for source in project.sources:
        days = [
            date.fromisoformat(m.group(1))
            for p in (staging / "validated" / source.name).glob("*.parquet")
            if (m := DAY.match(p.name))
        ]
        found[source.name] = max(days) + timedelta(days=1) if days else None
    return found


def validated_removals(
    staging: Path, cuts: Mapping[str, tuple[date | None, str]]
) -> list[StagedFile]:
    gone = []
    for source, (first, why) in sorted(cuts.items()):
        if first is None:
            continue
        for path in sorted((staging / "validated" / source).glob("*")):
            found = DAY.match(path.name)
            if found and date.fromisoformat(found.group(1)) < first:
                gone.append(
                    StagedFile(
                        "validated events", path, path.stat().st_size, f"before {first}: {why}"
                    )
                )
    return gone


def build_removals(
    staging: Path, next_dates: Mapping[str, date | None], rerun_days: int, theirs: Collection[str]
) -> list[StagedFile]:
    """Staged builds that ended before their group's rerun window, but of groups other projects
    own (``theirs``: their gc's)."""
    gone = []
    for folder in sorted((staging / "features").glob("*")):
        if folder.name in theirs:
            continue
        start = rerun_window_start(next_dates.get(folder.name), rerun_days)
        if start is None:
            continue
        for path in sorted(folder.iterdir()):
            found = BUILD.match(path.name)
            if found and date.fromisoformat(found.group(2)) < start:
                what = "staged build record" if path.is_file() else "staged build"
                gone.append(StagedFile(what, path, size_of(path), f"ended before {start}"))
    return gone


def run_removals(staging: Path, keep: int, theirs: Collection[str]) -> list[StagedFile]:
    """Training sets and scoring spools of each model but the newest ``keep`` runs' (by the
    time they were written), but of models other projects own (``theirs``: their gc's)."""
    gone = []
    for kind, folder in (("training set", "training"), ("scoring spool", "scores")):
        for model in sorted((staging / folder).glob("*")):
            if model.name in theirs:
                continue
            runs: dict[str, list[Path]] = {}
            for path in model.iterdir():
                runs.setdefault(
                    path.name.removesuffix(".json").removesuffix(".parquet"), []
                ).append(path)
            newest = sorted(runs, key=lambda run: max(p.stat().st_mtime for p in runs[run]))
            for run in newest[: max(len(newest) - keep, 0)]:
                for path in sorted(runs[run]):
                    gone.append(
                        StagedFile(
                            kind, path, size_of(path), f"{keep} newer run(s) of {model.name}"
                        )
                    )
    return gone


def settled(files: Iterable[StagedFile], min_age_hours: int, now: float) -> list[StagedFile]:
    """``files`` but those written in the last ``min_age_hours`` hours (``now``: a POSIX time):
    a run may be reading them, e.g. a backfill that just validated an old day again, or a
    build still in progress."""
    limit = now - min_age_hours * 3600
    kept = []
    for staged in files:
        try:
            times = [staged.path.stat().st_mtime]
            if staged.path.is_dir():
                times += [p.stat().st_mtime for p in staged.path.rglob("*")]
        except FileNotFoundError:
            continue
        if max(times) <= limit:
            kept.append(staged)
    return kept


def remove(files: Iterable[StagedFile]) -> int:
    """Remove the files and folders; returns the bytes freed."""
    freed = 0
    for staged in files:
        try:
            if staged.path.is_dir():
                shutil.rmtree(staged.path)
            else:
                os.unlink(staged.path)
        except FileNotFoundError:
            continue
        freed += staged.bytes
    return freed
