"""The feature rows a model version scores, from one or more feature groups.

Batch: the spine group's partition of the date is streamed in record batches (memory stays at
one batch); each other group contributes its newest row per entity at or before the date and at
most its TTL old, joined onto every batch by entity, the way training joined it.

Serving (fti.serve) reads each group's rows of the requested entities from the online store
and assembles them with the same two functions, ``model_groups`` (which group supplies which
columns) and ``model_rows`` (the join, in the trained column order), so the two paths cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa

from fti.store.versions import DATE_COLUMN, FeatureStore


@dataclass(frozen=True)
class GroupRead:
    """One group a model version reads: its version, entity key, columns and TTL in days."""

    group: str
    version: int
    key: str
    columns: list[str]
    ttl_days: int = 0


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


def within_ttl(
    rows: pd.DataFrame, spine_dates: pd.Series, ttl_days: int, date_column: str = DATE_COLUMN
) -> pd.DataFrame:
    """The rows of another group (indexed by entity, with their ``date_column``) that join onto
    spine rows of the dates ``spine_dates`` (by entity): none older than ``oldest_joined``,
    as ``newest_rows`` reads for a whole date. For the scoring service's online rows."""
    spine = spine_dates.reindex(rows.index)
    first = spine.map(lambda day: None if pd.isna(day) else oldest_joined(day, ttl_days))
    keep = [
        start is not None and day >= start
        for day, start in zip(rows[date_column], first, strict=True)
    ]
    # A boolean mask, also when empty (an empty list would select no columns).
    return rows[pd.Series(keep, index=rows.index, dtype=bool)]


def newest_rows(store: FeatureStore, read: GroupRead, as_of: date) -> pd.DataFrame:
    """Each entity's newest row of ``read`` in [as_of - ttl, as_of], indexed by entity."""
    first = oldest_joined(as_of, read.ttl_days)
    dates = [d for d in store.partition_dates(read.group, read.version) if first <= d <= as_of]
    if not dates:
        schema = store.schema(read.group, read.version)
        empty = pa.schema([schema.field(c) for c in [read.key, *read.columns]]).empty_table()
        return empty.to_pandas().set_index(read.key)
    rows = store.read(read.group, read.version, [read.key, DATE_COLUMN, *read.columns], dates)
    frame = rows.to_pandas().sort_values([read.key, DATE_COLUMN], kind="stable")
    return (
        frame.drop_duplicates(read.key, keep="last").drop(columns=DATE_COLUMN).set_index(read.key)
    )


def feature_batches(
    store: FeatureStore, reads: Sequence[GroupRead], as_of: date, features: Sequence[str]
) -> Iterator[pa.RecordBatch]:
    """Record batches of the spine's entity and ``features`` (in that order) for ``as_of``."""
    spine, others = reads[0], reads[1:]
    scan = store.scanner(spine.group, spine.version, [spine.key, *spine.columns], [as_of])
    if not others:
        yield from scan.to_batches()
        return
    joined = [newest_rows(store, read, as_of) for read in others]
    for batch in scan.to_batches():
        yield model_rows(batch.to_pandas(), joined, spine.key, features)
