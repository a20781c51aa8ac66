"""Build a feature or label group's partitions for a range of dates from validated events.

A group's ``build`` is the team's code. fti hands it the events of the days a date may see and
checks that it used no more: a range build (one call for every date, the events of the whole
range) must give, for sampled dates, the same partition as building that date alone with the
events up to the last day it may see. A build that peeks ahead differs, and the publish is
refused, naming the group, the date and the column (``LeakageError``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fti.definitions import LABEL, LABEL_DATE, FeatureGroup, LabelGroup, Source
from fti.errors import LeakageError, StoreError
from fti.features.shards import Shard, slots_of
from fti.store.layout import SupportsShapes
from fti.store.versions import DATE_COLUMN, PARTITION, partition_dir
from fti.validation import day_bounds

Group = FeatureGroup | LabelGroup
SHARDS_DONE = "_shards"  # in a staged build: one mark per shard built whole
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
    checked: Sequence[date] | None = None,
) -> dict[date, pa.Table]:
    """One Arrow table per date, sorted by entity, with ``feature_date`` as a date32 column.

    ``events`` holds each of the group's sources' validated events for every day the range
    may see (by source name). The leakage check rebuilds ``checked`` dates alone (default:
    ``check_dates`` of ``dates``, see ``leakage_dates``).

    Raises:
        StoreError: the build returned the wrong columns or an entity of the wrong type.
        LeakageError: a sampled date differs when built alone (the build looked ahead).
    """
    dates = sorted(set(dates))
    whole = _conform(group, group.build(events, dates), dates)
    partitions = _split(whole, dates)
    if checked is None:
        checked = leakage_dates(dates, check_dates)
    for day in (d for d in checked if d in partitions):
        until = last_event_day(group, day)
        alone = {
            source.name: _until(events[source.name], source, until) for source in group.sources
        }
        single = _split(_conform(group, group.build(alone, [day]), [day]), [day])[day]
        _compare(group, day, partitions[day], single, max(dates))
    return partitions


def leakage_dates(dates: Sequence[date], count: int = LEAKAGE_CHECK_DATES) -> list[date]:
    """The dates of a range build that are rebuilt alone: none for a single date; else the
    first date (whose future is longest), then evenly spaced ones."""
    dates = sorted(set(dates))
    if count <= 0 or len(dates) < 2:
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


def write_partitions(
    root: Path, partitions: Mapping[date, pa.Table], shard: Shard | None = None
) -> Path:
    """Stage one shard's partitions under ``root`` (``feature_date=D/part-<shard>.parquet``,
    each written atomically) for the publish step to pick up by path; ``finish_shard`` marks
    the shard whole."""
    name = (shard or Shard()).name
    for day, table in partitions.items():
        target = partition_dir(root, day)
        target.mkdir(parents=True, exist_ok=True)
        tmp = target / f".part-{name}.parquet.tmp"
        pq.write_table(table, tmp)
        tmp.replace(target / f"part-{name}.parquet")
    if shard is None:
        finish_shard(root, Shard())
    return root


def start_shard(root: Path, shard: Shard) -> None:
    """Remove what an earlier try of this shard left (its parts and mark), and any part of a
    build of the same run with another shard count (a cleared run planned again)."""
    mine = f"part-{shard.name}.parquet"
    other_count = re.compile(rf"^\.?part-shard-\d{{4}}-of-(?!{shard.count:04d})\d{{4}}\.")
    (root / SHARDS_DONE / f"{shard.name}.done").unlink(missing_ok=True)
    for path in root.glob("*/*part-*"):
        if path.name in (mine, f".{mine}.tmp") or other_count.match(path.name):
            path.unlink(missing_ok=True)
    for path in (root / SHARDS_DONE).glob("*.done"):
        if not path.name.endswith(f"-of-{shard.count:04d}.done"):
            path.unlink(missing_ok=True)


def finish_shard(root: Path, shard: Shard) -> None:
    """Mark a shard's parts whole: the publish refuses a build with a shard not marked."""
    done = root / SHARDS_DONE
    done.mkdir(parents=True, exist_ok=True)
    (done / f"{shard.name}.done").touch()


class StagedPartitions(Mapping[date, pa.Table], SupportsShapes):
    """A staged build's partitions by date, each read when asked for (one date in memory at a
    time): the parts every shard wrote for the date, concatenated and sorted by entity, the
    same table a build of every entity at once gives."""

    def __init__(self, files: Mapping[date, Sequence[Path]], key: str | None) -> None:
        self.files = {day: list(paths) for day, paths in sorted(files.items())}
        self.key = key

    def __getitem__(self, day: date) -> pa.Table:
        parts = [pq.read_table(path) for path in self.files[day]]
        if len(parts) == 1:
            return parts[0]
        full = [part for part in parts if part.num_rows] or parts[:1]
        table = pa.concat_tables(full, promote_options="permissive")
        return table.sort_by(self.key) if self.key and len(full) > 1 else table

    def __iter__(self) -> Iterator[date]:
        return iter(self.files)

    def __len__(self) -> int:
        return len(self.files)

    def shapes(self) -> dict[date, tuple[pa.Schema, int]]:
        """Each date's schema and row count, from the Parquet footers (no data read)."""
        found = {}
        for day, paths in self.files.items():
            files = [pq.ParquetFile(path) for path in paths]
            rows = sum(f.metadata.num_rows for f in files)
            schemas = [f.schema_arrow for f in files if f.metadata.num_rows] or [
                files[0].schema_arrow
            ]
            found[day] = (pa.unify_schemas(schemas, promote_options="permissive"), rows)
        return found


def read_partitions(
    root: Path, key: str | None = None, shards: int | None = None
) -> StagedPartitions:
    """The partitions a build staged under ``root``, read lazily (``StagedPartitions``).

    ``shards``: how many shards built it (default: what the shards' marks say). A folder of
    plain ``part-*.parquet`` files without marks (partitions staged by hand) is read as it is.

    Raises:
        StoreError: a shard of the build is not marked whole (it failed or is still running),
            or the marks disagree on the shard count.
    """
    marks = sorted((root / SHARDS_DONE).glob("shard-*.done"))
    counts = {int(m.name.removesuffix(".done")[-4:]) for m in marks}
    if shards is None and len(counts) > 1:
        raise StoreError(f"{root}: shards of builds with {sorted(counts)} shards; build it again")
    count = shards if shards is not None else next(iter(counts), None)
    pattern = "part-*.parquet"
    if count is not None:
        missing = [
            str(Shard(i, count))
            for i in range(count)
            if not (root / SHARDS_DONE / f"{Shard(i, count).name}.done").exists()
        ]
        if missing:
            raise StoreError(
                f"{root}: {', '.join(missing)} not built (its task failed or is still "
                "running): build the missing shards, then publish"
            )
        pattern = f"part-shard-*-of-{count:04d}.parquet"
    found: dict[date, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        match = PARTITION.match(folder.name)
        files = sorted(folder.glob(pattern))
        if match and files:
            found[date.fromisoformat(match.group(1))] = files
    return StagedPartitions(found, key)


def check_shard(group: Group, shard: Shard, partitions: Mapping[date, pa.Table]) -> None:
    """Refuse a shard's build that returned entities of other shards (it did not derive its
    rows from the events it was given): they would be published twice."""
    if shard.whole:
        return
    for day, table in partitions.items():
        slots = slots_of(table.column(group.entity.key), group.entity.dtype)
        if not shard.holds(slots).all():
            raise StoreError(
                f"{group.noun} {group.name!r}: build() returned, for {day}, entities that are "
                f"not among the events of the {shard} it was given; a build must compute "
                "rows only for the entities of the events it is handed"
            )
