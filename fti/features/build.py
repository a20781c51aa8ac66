"""Build a feature or label group's partitions for a range of dates from validated events.

A group's ``build`` is the team's code. fti hands it the events of the days a date may see and
checks that it used no more: a range build (one call for every date, the events of the whole
range) must give, for sampled dates, the same partition as building that date alone with the
events up to the last day it may see. A build that peeks ahead differs, and the publish is
refused, naming the group, the date and the column (``LeakageError``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fti.definitions import LABEL, LABEL_DATE, FeatureGroup, LabelGroup, Source
from fti.errors import LeakageError, StoreError
from fti.store.versions import DATE_COLUMN, PARTITION, partition_dir
from fti.validation import day_bounds

Group = FeatureGroup | LabelGroup
LEAKAGE_CHECK_DATES = 3  # dates of a range build rebuilt alone (the first, the middle, one more)


def first_event_day(group: Group, day: date) -> date:
    """The first day of events computing ``day`` may use."""
    return day - timedelta(days=group.lookback_days - 1)


def last_event_day(group: Group, day: date) -> date:
    """The last day of events computing ``day`` may use: the day itself, or for a label the
    end of its horizon."""
    return day + timedelta(days=group.horizon)


def columns_of(group: Group) -> list[str]:
    """What a group's build must return, in the store's names (the date as ``feature_date``)."""
    values = [LABEL] if isinstance(group, LabelGroup) else list(group.features)
    return [group.entity.key, DATE_COLUMN, *values]


def build_partitions(
    group: Group,
    events: Mapping[str, pd.DataFrame],
    dates: Sequence[date],
    check_dates: int = LEAKAGE_CHECK_DATES,
) -> dict[date, pa.Table]:
    """One Arrow table per date, sorted by entity, with ``feature_date`` as a date32 column.

    ``events`` holds each of the group's sources' validated events for every day the range
    may see (by source name).

    Raises:
        StoreError: the build returned the wrong columns or an entity of the wrong type.
        LeakageError: a sampled date differs when built alone (the build looked ahead).
    """
    dates = sorted(set(dates))
    whole = _conform(group, group.build(events, dates), dates)
    partitions = _split(whole, dates)
    if len(dates) > 1:
        for day in _sample(dates, check_dates):
            until = last_event_day(group, day)
            alone = {
                source.name: _until(events[source.name], source, until) for source in group.sources
            }
            single = _split(_conform(group, group.build(alone, [day]), [day]), [day])[day]
            _compare(group, day, partitions[day], single, max(dates))
    return partitions


def _sample(dates: list[date], count: int) -> list[date]:
    """The first date (whose future is longest), then evenly spaced ones."""
    if count <= 0:
        return []
    picks = np.linspace(0, len(dates) - 1, num=min(count, len(dates))).round().astype(int)
    return [dates[i] for i in dict.fromkeys(picks.tolist())]


def _until(frame: pd.DataFrame, source: Source, last_day: date) -> pd.DataFrame:
    """The events of the source's days up to ``last_day`` (days in the source's time zone)."""
    if frame.empty:
        return frame
    times = pd.to_datetime(frame[source.time_column], utc=True)
    return frame[(times < day_bounds(last_day, source.timezone)[1]).to_numpy()]


def _conform(group: Group, frame: pd.DataFrame, dates: Sequence[date]) -> pa.Table:
    """The build's frame as an Arrow table of the group's columns, in the store's names."""
    kind = group.noun
    if isinstance(group, LabelGroup) and LABEL_DATE in frame.columns:
        frame = frame.rename(columns={LABEL_DATE: DATE_COLUMN})
    wanted = columns_of(group)
    missing = [c for c in wanted if c not in frame.columns]
    extra = [c for c in frame.columns if c not in wanted]
    if missing or extra:
        said = LABEL_DATE if isinstance(group, LabelGroup) else DATE_COLUMN
        raise StoreError(
            f"{kind} {group.name!r}: build() returned "
            + "; ".join(
                part
                for part in (
                    f"no column(s) {', '.join(missing)}".replace(DATE_COLUMN, said)
                    if missing
                    else "",
                    f"undeclared column(s) {', '.join(extra)}" if extra else "",
                )
                if part
            )
            + f"; it must return {', '.join(c if c != DATE_COLUMN else said for c in wanted)}"
        )
    frame = frame[wanted]
    key = group.entity.key
    if frame[key].isna().any():
        raise StoreError(f"{kind} {group.name!r}: build() returned rows with a null {key!r}")
    try:
        keys = frame[key].astype("int64" if group.entity.dtype == "int64" else "str")
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"{kind} {group.name!r}: column {key!r} is not {group.entity.dtype} "
            f"as entity {group.entity.name!r} declares ({exc})"
        ) from exc
    frame = frame.assign(**{key: keys})
    days = pd.to_datetime(frame[DATE_COLUMN]).dt.date
    outside = sorted(set(days) - set(dates))
    if outside:
        raise StoreError(
            f"{kind} {group.name!r}: build() returned rows for {outside[0]}, which it was not "
            f"asked for (dates {dates[0]}..{dates[-1]})"
        )
    frame = frame.assign(**{DATE_COLUMN: days}).sort_values([DATE_COLUMN, key], kind="stable")
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return table.set_column(
        table.schema.get_field_index(DATE_COLUMN),
        DATE_COLUMN,
        table.column(DATE_COLUMN).cast(pa.date32()),
    )


def _split(table: pa.Table, dates: Sequence[date]) -> dict[date, pa.Table]:
    days = table.column(DATE_COLUMN)
    return {day: table.filter(pc.equal(days, pa.scalar(day, pa.date32()))) for day in dates}


def _compare(group: Group, day: date, ranged: pa.Table, alone: pa.Table, last: date) -> None:
    kind = group.noun
    if ranged.num_rows != alone.num_rows or not ranged.column(group.entity.key).equals(
        alone.column(group.entity.key)
    ):
        raise LeakageError(
            f"{kind} {group.name!r}: the entities of {day} differ when built with events up to "
            f"{last_event_day(group, day)} only ({alone.num_rows} rows) and within a range to "
            f"{last} ({ranged.num_rows} rows): build() uses rows after the date it computes. "
            "Compute each date from events up to it only; nothing was published."
        )
    if ranged.num_rows == 0:
        return  # nothing to differ (an empty frame's columns may have no type)
    for name in ranged.column_names:
        if not _same(ranged.column(name), alone.column(name)):
            raise LeakageError(
                f"{kind} {group.name!r}: column {name!r} of {day} differs when built with "
                f"events up to {last_event_day(group, day)} only and within a range to {last}: "
                "build() uses rows after the date it computes. Compute each date from events "
                "up to it only; nothing was published."
            )


def _same(left: pa.ChunkedArray, right: pa.ChunkedArray) -> bool:
    """Equal values; floats within 1e-9 relative (sums over a longer prefix round differently)."""
    if left.type != right.type:
        return False
    if not pa.types.is_floating(left.type):
        return bool(left.equals(right))
    a = left.to_numpy(zero_copy_only=False).astype("float64")
    b = right.to_numpy(zero_copy_only=False).astype("float64")
    return bool(np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True))


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
