"""Entity shards: a group's build split by stable hash buckets of the entity key.

Every entity key falls into one of ``SLOTS`` slots (a stable hash, the same on every machine
and run); shard ``i`` of ``n`` holds the contiguous slots ``[i * SLOTS // n, (i + 1) * SLOTS
// n)``. Validated events are staged sorted by slot (``SLOT_COLUMN``), so a shard reads its
slots with Parquet row-group pushdown. A build handed one shard's events sees every event of
its entities and none of the others': its memory follows the shard, not the customer base.

How many shards a group's run uses: ``shards.groups.<group>`` in params.yaml when set, else
enough that one shard's chunk of dates loads at most ``shards.rows_per_shard`` validated
events (a build's memory follows the events it loads, about 300 bytes a row for the demo's
events; counted from the staged files' Parquet footers, no data read), at most ``shards.max``.
Shards are how a run is executed, never what it publishes: one shard or many publish the same
version.

A model's scoring of a date is split by the same slots (fti.pipelines.inference): into
``shards.models.<model>`` shards when set, else enough that a shard reads at most
``shards.score_rows_per_shard`` feature rows (the spine's rows of the date and every other
group's rows over its TTL window, counted from Parquet footers), at most ``shards.max``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from fti.errors import ConfigError

SLOTS = 1024  # the most shards a group can have
SLOT_COLUMN = "_fti_slot"  # in staged events: the slot of the row's entity key
SLOT_KEY = b"fti.slot_key"  # staged file metadata: which column the slots are of
ROWS_PER_SHARD = 4_000_000  # validated events one shard's chunk of dates may load
MAX_SHARDS = 64
DATES_PER_CHUNK = 92  # a range run builds at most this many dates at once per shard
SCORE_ROWS_PER_SHARD = 2_000_000  # feature rows one scoring shard reads
KEYS = ("rows_per_shard", "score_rows_per_shard", "max", "dates_per_chunk", "groups", "models")


def slots_of(keys: Any, dtype: str = "int64") -> np.ndarray:
    """The slot of each entity key (``int64`` or ``string`` keys), as int16."""
    if isinstance(keys, pa.ChunkedArray | pa.Array):
        keys = keys.to_numpy(zero_copy_only=False)
    values = np.asarray(keys, dtype="int64" if dtype == "int64" else object)
    if dtype != "int64":
        values = np.array([str(v) for v in values], dtype=object)
    hashed = pd.util.hash_array(values, categorize=False)
    return (hashed % np.uint64(SLOTS)).astype(np.int16)


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count``."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not (1 <= self.count <= SLOTS and 0 <= self.index < self.count):
            raise ConfigError(f"shard {self.index} of {self.count} does not exist (1..{SLOTS})")

    @property
    def whole(self) -> bool:
        return self.count == 1

    @property
    def slots(self) -> tuple[int, int]:
        """``[first, end)`` of the slots this shard holds."""
        return self.index * SLOTS // self.count, (self.index + 1) * SLOTS // self.count

    def holds(self, slots: np.ndarray) -> np.ndarray:
        first, end = self.slots
        return (slots >= first) & (slots < end)

    @property
    def name(self) -> str:
        """``shard-0003-of-0008``: how its files are named."""
        return f"shard-{self.index:04d}-of-{self.count:04d}"

    def __str__(self) -> str:
        return f"shard {self.index + 1} of {self.count}"


def scale_section(params: Mapping[str, Any]) -> dict[str, Any]:
    """params.yaml's ``shards`` section, checked, with defaults.

    Raises:
        ConfigError: an unknown key, or a value that is not a positive whole number (naming it).
    """
    section = dict(params or {})
    unknown = set(section) - set(KEYS)
    if unknown:
        raise ConfigError(
            f"params.yaml shards: unknown key(s) {sorted(unknown)}; known: {', '.join(KEYS)}"
        )
    found = {
        "rows_per_shard": section.get("rows_per_shard", ROWS_PER_SHARD),
        "score_rows_per_shard": section.get("score_rows_per_shard", SCORE_ROWS_PER_SHARD),
        "max": section.get("max", MAX_SHARDS),
        "dates_per_chunk": section.get("dates_per_chunk", DATES_PER_CHUNK),
    }
    fixed = {kind: section.get(kind) or {} for kind in ("groups", "models")}
    for kind, counts in fixed.items():
        if not isinstance(counts, dict):
            raise ConfigError(f"params.yaml shards.{kind}: expected a mapping of name: shards")
    numbers = [*found.items(), *((f"{k}.{n}", v) for k, c in fixed.items() for n, v in c.items())]
    for name, value in numbers:
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value:
            raise ConfigError(f"params.yaml shards.{name}: {value!r} is not a whole number >= 1")
    if found["max"] > SLOTS or any(n > SLOTS for c in fixed.values() for n in c.values()):
        raise ConfigError(f"params.yaml shards: at most {SLOTS} shards a group or model")
    return found | fixed


def shard_count(group: str, rows: float, section: Mapping[str, Any]) -> int:
    """How many shards a run of ``group`` uses when a chunk of its dates loads ``rows``
    validated events."""
    return _count(section["groups"].get(group), rows, section["rows_per_shard"], section)


def scoring_shard_count(model: str, rows: float, section: Mapping[str, Any]) -> int:
    """How many shards score a date of ``model`` whose feature reads hold ``rows`` rows."""
    return _count(section["models"].get(model), rows, section["score_rows_per_shard"], section)


def _count(fixed: int | None, rows: float, budget: int, section: Mapping[str, Any]) -> int:
    if fixed is not None:
        return int(fixed)
    return max(1, min(math.ceil(max(rows, 1) / budget), section["max"]))
