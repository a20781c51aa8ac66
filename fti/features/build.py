"""Build a feature group's partitions for a range of dates from validated events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fti.errors import StoreError
from fti.project import FeatureGroup
from fti.store.versions import DATE_COLUMN, PARTITION, partition_dir


def window_start(group: FeatureGroup, first: date) -> date:
    """First day of events the group needs to compute features for ``first``."""
    return first - timedelta(days=group.lookback_days - 1)


def build_partitions(
    group: FeatureGroup, events: pd.DataFrame, dates: Sequence[date]
) -> dict[date, pa.Table]:
    """One Arrow table per date, sorted by entity, with ``feature_date`` as a date32 column."""
    frame = group.build(events, list(dates))
    for column in (group.entity, DATE_COLUMN):
        if column not in frame.columns:
            raise StoreError(f"feature group {group.name!r}: build() returned no {column!r} column")
    frame = frame.sort_values([DATE_COLUMN, group.entity], kind="stable")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.set_column(
        table.schema.get_field_index(DATE_COLUMN),
        DATE_COLUMN,
        table.column(DATE_COLUMN).cast(pa.date32()),
    )
    days = table.column(DATE_COLUMN)
    return {day: table.filter(pc.equal(days, pa.scalar(day, pa.date32()))) for day in dates}


def write_partitions(root: Path, partitions: dict[date, pa.Table]) -> Path:
    """Stage partitions under ``root`` so the publish step can pick them up by path."""
    for day, table in partitions.items():
        target = partition_dir(root, day)
        target.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target / "part-0.parquet")
    return root


def read_partitions(root: Path) -> dict[date, pa.Table]:
    found = {}
    for path in sorted(root.glob("*/part-0.parquet")):
        match = PARTITION.match(path.parent.name)
        if match:
            found[date.fromisoformat(match.group(1))] = pq.read_table(path)
    return found
