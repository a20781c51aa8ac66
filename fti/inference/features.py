"""The feature rows a model version scores, from one or more feature groups.

Batch: the spine group's partition of the date is streamed in record batches (memory stays at
one batch); each other group contributes its newest row per entity at or before the date and at
most its TTL old, joined onto every batch by entity, the way training joined it. A scoring shard
(``fti.features.shards.Shard``) reads the same rows of its own entities only: every group's
batches are streamed and kept to the shard's slots as they are read, so what it holds (the
other groups' newest rows) follows the shard, not the customer base. (Published partitions are
sorted by entity key, not by slot: a shard's entities are spread over every row group, so each
shard scans the columns it needs and drops the other shards' rows batch by batch.)

Serving (fti.serve) reads each group's rows of the requested entities from the online store:
a few rows, which it joins row-wise (``entity_model_rows``), without pandas, into the same
record batch, in the trained column order. The join exists in two forms, here next to each
other: ``within_ttl`` + ``model_rows`` (pandas, batch) and ``entity_model_rows`` (row-wise,
online); both decide with ``joins`` which row of another group joins onto a spine row, and a
property test (tests/unit/test_entity_rows.py) checks that they give the same rows on random
inputs, so the two paths cannot drift apart. ``model_groups`` says which group supplies which
columns for both.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

from fti.features.shards import Shard, slots_of
from fti.store.versions import DATE_COLUMN, FeatureStore

WHOLE = Shard()  # every entity: the default shard of a read


@dataclass(frozen=True)
class GroupRead:
    """One group a model version reads: its version, entity key, columns and TTL in days, and
    the key's dtype (``int64`` or ``string``: how its slots are hashed)."""

    group: str
    version: int
    key: str
    columns: list[str]
    ttl_days: int = 0
    key_dtype: str = "int64"


def model_groups(
    spine: str, features: Sequence[dict[str, Any]]
) -> list[tuple[str, list[dict[str, Any]]]]:
    """The groups a model version reads, spine first, each with its registry feature entries
    (``name``, ``dtype``, ``group``, ``ttl_days``) in the estimator's column order."""
    by_group: dict[str, list[dict[str, Any]]] = {}
    for feature in features:
        by_group.setdefault(feature.get("group", spine), []).append(feature)
    return [(spine, by_group[spine]), *[(g, f) for g, f in by_group.items() if g != spine]]


def model_rows(
    spine: pd.DataFrame, others: Sequence[pd.DataFrame], key: str, features: Sequence[str]
) -> pa.RecordBatch:
    """The rows a model scores: ``spine`` (the entity ``key`` as a column) left-joined with
    each other group's rows (indexed by the key), as a record batch of the key and
    ``features`` in that order. An entity another group lacks gets nulls there."""
    frame = spine
    for rows in others:
        frame = frame.join(rows, on=key)
    return pa.RecordBatch.from_pandas(frame[[key, *features]], preserve_index=False)


def oldest_joined(as_of: date, ttl_days: int) -> date:
    """The oldest feature date of another group that joins onto a spine row of ``as_of``."""
    return as_of - timedelta(days=ttl_days)


def joins(row_date: date, spine_date: date, ttl_days: int) -> bool:
    """Whether another group's row of ``row_date`` joins onto a spine row of ``spine_date``:
    when it is at most ``ttl_days`` older (a newer row joins too: the online store holds only
    each entity's newest row)."""
    return row_date >= oldest_joined(spine_date, ttl_days)


def within_ttl(
    rows: pd.DataFrame, spine_dates: pd.Series, ttl_days: int, date_column: str = DATE_COLUMN
) -> pd.DataFrame:
    """The rows of another group (indexed by entity, with their ``date_column``) that join onto
    spine rows of the dates ``spine_dates`` (by entity): none older than ``oldest_joined``,
    as ``newest_rows`` reads for a whole date. With ``model_rows``, the pandas form of the
    online join, which ``entity_model_rows`` is tested against (tests/unit/test_entity_rows.py)."""
    spine = spine_dates.reindex(rows.index)
    keep = [
        not pd.isna(spine_day) and joins(day, spine_day, ttl_days)
        for day, spine_day in zip(rows[date_column], spine, strict=True)
    ]
    # A boolean mask, also when empty (an empty list would select no columns).
    return rows[pd.Series(keep, index=rows.index, dtype=bool)]


@dataclass(frozen=True)
class EntityRows:
    """Some entities' rows of one group, row-wise (the online store's rows of a request): each
    row's entity key and feature date, the group's columns typed as published (one table row
    per key), and the model's TTL for the group."""

    keys: Sequence[Any]
    dates: Sequence[date]
    table: pa.Table
    ttl_days: int = 0


def joined_positions(spine: EntityRows, other: EntityRows) -> list[int | None]:
    """For each spine row, the position in ``other`` of the row of the same entity that joins
    onto it (``joins``), else None."""
    at = {key: i for i, key in enumerate(other.keys)}
    positions: list[int | None] = []
    for key, day in zip(spine.keys, spine.dates, strict=True):
        i = at.get(key)
        joined = i is not None and joins(other.dates[i], day, other.ttl_days)
        positions.append(i if joined else None)
    return positions


def entity_model_rows(
    spine: EntityRows,
    others: Sequence[EntityRows],
    key: str,
    key_type: pa.DataType,
    features: Sequence[str],
) -> pa.RecordBatch:
    """The rows a model scores for a few entities, row-wise: what ``within_ttl`` then
    ``model_rows`` give, without pandas. Every row of ``spine`` (duplicates kept), each other
    group's row of the same entity joined when ``joins`` says so, else nulls there; a record
    batch of ``key`` (as ``key_type``) and ``features``, each column with its published type."""
    columns = dict(zip(spine.table.column_names, spine.table.columns, strict=True))
    for other in others:
        picked = other.table.take(pa.array(joined_positions(spine, other), pa.int64()))
        columns.update(zip(picked.column_names, picked.columns, strict=True))
    arrays = [pa.array(spine.keys, key_type), *(columns[f].combine_chunks() for f in features)]
    return pa.RecordBatch.from_arrays(arrays, names=[key, *features])


def window_dates(store: FeatureStore, read: GroupRead, as_of: date) -> list[date]:
    """The dates of ``read``'s version whose rows may join onto a spine row of ``as_of``."""
    first = oldest_joined(as_of, read.ttl_days)
    return [d for d in store.partition_dates(read.group, read.version) if first <= d <= as_of]


def in_shard(batch: pa.RecordBatch, read: GroupRead, shard: Shard) -> pa.RecordBatch:
    """The rows of ``batch`` whose entity is in ``shard`` (all of them for a whole shard)."""
    if shard.whole:
        return batch
    slots = slots_of(batch.column(read.key), read.key_dtype)
    return batch.filter(pa.array(shard.holds(slots)))


def newest_rows(
    store: FeatureStore, read: GroupRead, as_of: date, shard: Shard = WHOLE
) -> pd.DataFrame:
    """Each entity's newest row of ``read`` in [as_of - ttl, as_of], indexed by entity: of the
    entities of ``shard`` (default: all)."""
    dates = window_dates(store, read, as_of)
    columns = [read.key, DATE_COLUMN, *read.columns]
    if not dates:
        schema = store.schema(read.group, read.version)
        empty = pa.schema([schema.field(c) for c in [read.key, *read.columns]]).empty_table()
        return empty.to_pandas().set_index(read.key)
    if shard.whole:
        rows = store.read(read.group, read.version, columns, dates)
    else:
        scan = store.scanner(read.group, read.version, columns, dates)
        kept = (in_shard(batch, read, shard) for batch in scan.to_batches())
        rows = pa.Table.from_batches(kept, schema=scan.projected_schema)
    frame = rows.to_pandas().sort_values([read.key, DATE_COLUMN], kind="stable")
    return (
        frame.drop_duplicates(read.key, keep="last").drop(columns=DATE_COLUMN).set_index(read.key)
    )


def feature_batches(
    store: FeatureStore,
    reads: Sequence[GroupRead],
    as_of: date,
    features: Sequence[str],
    shard: Shard = WHOLE,
) -> Iterator[pa.RecordBatch]:
    """Record batches of the spine's entity and ``features`` (in that order) for ``as_of``, of
    the entities of ``shard`` (default: all)."""
    spine, others = reads[0], reads[1:]
    scan = store.scanner(spine.group, spine.version, [spine.key, *spine.columns], [as_of])
    kept = (in_shard(batch, spine, shard) for batch in scan.to_batches())
    batches = (batch for batch in kept if batch.num_rows)
    if not others:
        yield from batches
        return
    joined = [newest_rows(store, read, as_of, shard) for read in others]
    for batch in batches:
        yield model_rows(batch.to_pandas(), joined, spine.key, features)


def rows_read(store: FeatureStore, reads: Sequence[GroupRead], as_of: date) -> int:
    """How many feature rows scoring ``as_of`` reads: the spine's of the date and every other
    group's over its TTL window (from Parquet footers and row-group statistics)."""
    spine, others = reads[0], reads[1:]
    rows = store.scanner(spine.group, spine.version, [spine.key], [as_of]).count_rows()
    for read in others:
        dates = window_dates(store, read, as_of)
        if dates:
            rows += store.scanner(read.group, read.version, [read.key], dates).count_rows()
    return int(rows)
