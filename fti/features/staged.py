"""Staged events: a source's accepted rows of one day as Parquet (``staged_file``), sorted by the
slot of their entity's key so that a shard reads only its own row groups, and read back by
day range and shard (``load_events``)."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fti.definitions import Entity, Source
from fti.errors import FtiError
from fti.features.shards import SLOT_COLUMN, SLOT_KEY, Shard, slots_of
from fti.validation import empty_rows

STAGED_ROW_GROUP = 64 * 1024  # rows: a shard of a big day reads a few row groups, not all


def staged_file(staging_root: Path, source: Source, day: date) -> Path:
    return staging_root / "validated" / source.name / f"{day.isoformat()}.parquet"


def ids_file(staged: Path) -> Path:
    """Beside a staged file, the sorted hashes of its ids (``fti.features.accepted_ids``)."""
    return staged.with_name(staged.name.removesuffix(".parquet") + ".ids.npy")


def write_staged(target: Path, events: pd.DataFrame, entity: Entity | None) -> None:
    """Stage a day's accepted events (atomically), sorted by the slot of ``entity``'s key
    (``SLOT_COLUMN``, in row groups of ``STAGED_ROW_GROUP`` rows) so that one shard's entities
    are read with Parquet pushdown; without an entity (the source has no entity key column)
    as they are. The hashes of the file's ids it replaces go first (they are rebuilt from the
    new file when missing)."""
    table = pa.Table.from_pandas(events, preserve_index=False)
    if entity is not None and entity.key in events.columns:
        slots = slots_of(table.column(entity.key), entity.dtype)
        order = np.argsort(slots, kind="stable")
        table = table.take(order).append_column(SLOT_COLUMN, pa.array(slots[order], pa.int16()))
        metadata = (table.schema.metadata or {}) | {
            SLOT_KEY: f"{entity.key}:{entity.dtype}".encode()
        }
        table = table.replace_schema_metadata(metadata)
    target.parent.mkdir(parents=True, exist_ok=True)
    ids_file(target).unlink(missing_ok=True)
    tmp = target.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp, row_group_size=STAGED_ROW_GROUP)
    tmp.replace(target)


def read_staged(path: Path) -> pd.DataFrame:
    """A day's staged events, whole (without the slot column)."""
    return staged_table(path).to_pandas()


def staged_table(path: Path, shard: Shard | None = None, entity: Entity | None = None) -> pa.Table:
    """A day's staged events as Arrow (of ``shard``'s entities of ``entity`` only, when given).

    A file staged sorted by the slots of ``entity``'s key is read with pushdown (only the row
    groups holding the shard's slots); any other (staged before shards, or by another key)
    is read whole and filtered, so the result is the same either way.
    """
    if shard is None or shard.whole or entity is None:
        return _without_slots(pq.read_table(path))
    first, end = shard.slots
    if (pq.read_schema(path).metadata or {}).get(SLOT_KEY) == _slot_key(entity):
        filters = [(SLOT_COLUMN, ">=", first), (SLOT_COLUMN, "<", end)]
        return _without_slots(pq.read_table(path, filters=filters))
    table = _without_slots(pq.read_table(path))
    if entity.key not in table.column_names:
        raise FtiError(
            f"{path}: no column {entity.key!r} to split {entity.name!r} entities into shards; "
            "give the group one shard (params.yaml shards.groups)"
        )
    return table.filter(shard.holds(slots_of(table.column(entity.key), entity.dtype)))


def _slot_key(entity: Entity) -> bytes:
    return f"{entity.key}:{entity.dtype}".encode()


def staged_entity(path: Path) -> Entity | None:
    """The entity whose key a staged file is sorted by (None: not sorted by one)."""
    if not path.exists():
        return None
    said = (pq.read_schema(path).metadata or {}).get(SLOT_KEY)
    if said is None:
        return None
    key, _, dtype = said.decode().rpartition(":")
    return Entity(key, key=key, dtype="string" if dtype == "string" else "int64")


def _without_slots(table: pa.Table) -> pa.Table:
    return table.drop_columns([SLOT_COLUMN]) if SLOT_COLUMN in table.column_names else table


def load_events(
    staging_root: Path,
    source: Source,
    first: date,
    last: date,
    shard: Shard | None = None,
    entity: Entity | None = None,
) -> pd.DataFrame:
    """Validated rows of the days in [first, last] that have been staged (of the entities of
    ``entity`` in ``shard`` only, when given: see ``staged_table``).

    With none, an empty frame of the source's columns in their validated dtypes (time columns
    are UTC datetimes), never an untyped one.
    """
    tables = []
    day = first
    while day <= last:
        path = staged_file(staging_root, source, day)
        if path.exists():
            table = staged_table(path, shard, entity)
            if table.num_rows:
                tables.append(table)
        day += timedelta(days=1)
    if not tables:
        return empty_rows(source)
    return pa.concat_tables(tables, promote_options="default").to_pandas()
