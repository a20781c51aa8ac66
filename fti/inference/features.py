"""The feature rows a model version scores on a date, from one or more feature groups.

The spine group's partition of the date is streamed in record batches (memory stays at one
batch); each other group contributes its newest row per entity at or before the date and at
most its TTL old, joined onto every batch by entity, the way training joined it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

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


def newest_rows(store: FeatureStore, read: GroupRead, as_of: date) -> pd.DataFrame:
    """Each entity's newest row of ``read`` in [as_of - ttl, as_of], indexed by entity."""
    first = as_of - timedelta(days=read.ttl_days)
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
        frame = batch.to_pandas()
        for rows in joined:
            frame = frame.join(rows, on=spine.key)
        yield pa.RecordBatch.from_pandas(frame[[spine.key, *features]], preserve_index=False)
