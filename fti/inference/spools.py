"""A scoring run's spools: each entity shard's scores of one (model, date), until the write.

Shard ``i`` of ``n`` scores its entities into ``<root>/shard-000i-of-000n.parquet`` (written
under a temporary name, then renamed) and then writes ``shard-000i-of-000n.json``: how many
rows it scored and what its skew profile and drift counter counted. The JSON is written last
and atomically: it is the shard's mark, and the write step refuses a date with a shard that has
none. A retried shard replaces only its own two files (and removes files a plan with another
shard count left). Once the slice is written, the folder is replaced by a record of what the
write returned (``finish``), so a retried write returns the same summary.
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from fti.errors import FtiError
from fti.features.shards import Shard
from fti.settings import file_safe

_SHARD_FILE = re.compile(r"shard-\d{4}-of-(\d{4})")  # a shard's spool, mark or their temps


def spool_root(staging: Path, model: str, as_of: date, run_id: str) -> Path:
    """Where the shards of a scoring run of ``model`` for ``as_of`` put their spools."""
    return staging / "scores" / file_safe(model) / f"{as_of}_{file_safe(run_id)}"


def spool_path(root: Path, shard: Shard) -> Path:
    return root / f"{shard.name}.parquet"


def _mark(root: Path, shard: Shard) -> Path:
    return root / f"{shard.name}.json"


def _record(root: Path) -> Path:
    return root.with_name(f"{root.name}.written.json")


def clear(root: Path) -> None:
    """Remove what an earlier plan of the same run left: spools, marks, a write's record."""
    shutil.rmtree(root, ignore_errors=True)
    _record(root).unlink(missing_ok=True)


def start_shard(root: Path, shard: Shard) -> Path:
    """Remove what an earlier try of this shard left, and any file of another shard count;
    return the temporary path to spool into (``finish_shard`` moves it into place)."""
    root.mkdir(parents=True, exist_ok=True)
    for path in root.iterdir():
        found = _SHARD_FILE.search(path.name)
        if found and (found.group(0) == shard.name or int(found.group(1)) != shard.count):
            path.unlink(missing_ok=True)
    # A name of this try's own: a second copy of the same task never writes into this file.
    return root / f".{shard.name}.{uuid.uuid4().hex}.parquet.tmp"


def finish_shard(root: Path, shard: Shard, spooled: Path, counts: dict[str, Any]) -> Path:
    """Move a shard's spool into place, then mark it whole with its ``counts``."""
    spool = spool_path(root, shard)
    spooled.replace(spool)
    temp = root / f".{shard.name}.{uuid.uuid4().hex}.json.tmp"
    temp.write_text(json.dumps(counts), encoding="utf-8")
    temp.replace(_mark(root, shard))
    return spool


def scored_shards(root: Path, count: int) -> list[tuple[Path, dict[str, Any]]]:
    """Each shard's spool and counts, in shard order.

    Raises:
        FtiError: a shard has no mark (it failed, was killed or is still running).
    """
    shards = [Shard(i, count) for i in range(count)]
    missing = [str(s) for s in shards if not _mark(root, s).is_file()]
    if missing:
        raise FtiError(
            f"{', '.join(missing)} of {root.name} not scored (no spool marked whole under "
            f"{root}): run or clear its score_shard task first"
        )
    return [
        (spool_path(root, s), json.loads(_mark(root, s).read_text(encoding="utf-8")))
        for s in shards
    ]


def finish(root: Path, summary: dict[str, Any]) -> None:
    """Replace the spools of a written slice by a record of the write's ``summary``."""
    temp = _record(root).with_name(f"{_record(root).name}.tmp")
    temp.write_text(json.dumps(summary), encoding="utf-8")
    temp.replace(_record(root))
    shutil.rmtree(root, ignore_errors=True)


def already_written(root: Path) -> dict[str, Any] | None:
    """What the write of this run returned, when it already wrote the slice (else None)."""
    record = _record(root)
    if not record.is_file():
        return None
    shutil.rmtree(root, ignore_errors=True)
    return dict(json.loads(record.read_text(encoding="utf-8")))
