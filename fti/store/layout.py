"""A feature group in the registry: its name (a folder and the prefix of its version tags), its
partitions, its schema file ``data/<group>.schema.json``, and how that schema may change from
one version to the next.

A group is stored by day or by month (``FeatureGroup.partition``): a file a date,
``data/<group>/feature_date=YYYY-MM-DD/part-0.parquet``, or a file a month,
``data/<group>/feature_month=YYYY-MM/part-0.parquet``, for a group whose days hold few rows (a
one-row-a-day station's four years are 48 files instead of 1,460). A month file holds the
rows of its dates sorted by date, and names the dates it holds (an empty day included) in its
Parquet key-value metadata (``HELD_DATES``). Either way a version holds dates, and readers ask
for dates; each version's manifest says how it is stored, so a publish may change the layout
(it then rewrites every date the new way) and earlier versions still read theirs."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Collection, Mapping
from datetime import date
from pathlib import Path
from typing import Protocol, runtime_checkable

import pyarrow as pa

from fti.errors import StoreError

NAME = r"[a-z][a-z0-9_]{0,62}"
GROUP_NAME = re.compile(rf"^{NAME}$")
PARTITION = re.compile(r"^feature_date=(\d{4}-\d{2}-\d{2})$")
MONTH_PARTITION = re.compile(r"^feature_month=(\d{4}-\d{2})$")
DATE_COLUMN = "feature_date"
PERIODS = ("day", "month")  # what one partition file of a group holds
PARTITION_FILE = "part-0.parquet"
HELD_DATES = b"fti.dates"  # a month file's metadata: the dates it holds, a JSON list


def check_group_name(group: str) -> str:
    """Group names become paths and tags: only lower-case letters, digits and underscores."""
    if not GROUP_NAME.match(group):
        raise StoreError(
            f"feature group name {group!r} is not allowed: use lower-case letters, digits and "
            "underscores, starting with a letter"
        )
    return group


def version_tag(group: str, version: int) -> str:
    return f"{check_group_name(group)}/v{version}"


def partition_dir(group_dir: Path, day: date, period: str = "day") -> Path:
    """The folder of the partition that holds ``day``: its own, or its month's."""
    if period == "month":
        return group_dir / f"feature_month={day:%Y-%m}"
    return group_dir / f"{DATE_COLUMN}={day.isoformat()}"


def partition_of(folder_name: str) -> tuple[str, date] | None:
    """``("day", D)`` or ``("month", its first day)`` from a partition folder's name; None
    for another name."""
    if match := PARTITION.match(folder_name):
        return "day", date.fromisoformat(match.group(1))
    if match := MONTH_PARTITION.match(folder_name):
        return "month", date.fromisoformat(f"{match.group(1)}-01")
    return None


def stored_period(group_dir: Path) -> str | None:
    """How the group's work tree is partitioned (``day`` or ``month``); None when empty."""
    if not group_dir.is_dir():
        return None
    for path in group_dir.iterdir():
        if (found := partition_of(path.name)) is not None:
            return found[0]
    return None


def check_period(group: str, period: str) -> None:
    """Refuse a partitioning fti does not know (``PERIODS``)."""
    if period not in PERIODS:
        raise StoreError(f"feature group {group!r}: partition {period!r} is not one of {PERIODS}")


def relayout_note(group: str, period: str, stored: str | None) -> str | None:
    """What the next publish of a group stored by ``stored`` does when its definition says
    ``period``: None when they agree (or nothing is stored yet)."""
    if stored is None or stored == period:
        return None
    return (
        f"{group!r} is stored a file a {stored} and its definition says partition={period!r}: "
        f"its next publish rewrites every date a file a {period} (one new version; earlier "
        "versions keep their files)"
    )


def held_dates(metadata: Mapping[bytes, bytes] | None) -> list[date]:
    """The dates a month file holds, from its Parquet key-value metadata."""
    return [date.fromisoformat(d) for d in json.loads((metadata or {})[HELD_DATES])]


def month_metadata(dates: Collection[date]) -> dict[bytes, bytes]:
    return {HELD_DATES: json.dumps(sorted(d.isoformat() for d in dates)).encode()}


def evolve_schema(
    group: str, previous: pa.Schema | None, partitions: Mapping[date, pa.Table]
) -> pa.Schema:
    """The schema of the version these partitions make: the previous one plus added columns.

    New partitions must agree with each other. A column may be added (older partitions read
    it as null); dropping a column or changing its type is refused, since models trained on
    earlier versions read exactly their columns from later ones.
    """
    shapes = partition_shapes(partitions)
    schemas = sorted({str(schema) for schema, _ in shapes.values()})
    try:  # a column that is all null in a partition (type null) takes the others' type
        if len({tuple(schema.names) for schema, _ in shapes.values()}) > 1:
            raise pa.ArrowInvalid("the partitions have different columns")
        typed = [schema for schema, rows in shapes.values() if rows] or [
            previous or next(iter(shapes.values()))[0]
        ]  # an empty day's columns carry no real type: the others' (or the version's) count
        new = pa.unify_schemas(typed, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise StoreError(
            f"partitions for {group!r} do not share one schema ({exc}): {schemas}"
        ) from exc
    if previous is None:
        return new
    problems = []
    for field in previous:
        if field.name not in new.names:
            problems.append(f"column {field.name!r} ({field.type}) is missing")
        elif new.field(field.name).type != field.type and not (
            pa.types.is_null(new.field(field.name).type) or pa.types.is_null(field.type)
        ):
            problems.append(
                f"column {field.name!r} changes type from {field.type} to {new.field(field.name).type}"
            )
    if problems:
        raise StoreError(
            f"new partitions of {group!r} do not keep its schema: {'; '.join(problems)}. "
            "Columns may only be added; publish a changed column under a new name."
        )
    kept = [
        new.field(f.name) if pa.types.is_null(f.type) else f for f in previous
    ]  # a column first published all null takes its first real type
    added = [field for field in new if field.name not in previous.names]
    return pa.schema([*kept, *added])


@runtime_checkable
class SupportsShapes(Protocol):
    """Partitions read when asked for that tell each one's schema and row count without
    reading its data (``fti.features.build.StagedPartitions``, from the Parquet footers)."""

    def shapes(self) -> Mapping[date, tuple[pa.Schema, int]]: ...


def partition_shapes(partitions: Mapping[date, pa.Table]) -> dict[date, tuple[pa.Schema, int]]:
    """Each partition's schema and row count; partitions that ``SupportsShapes`` are not read."""
    if isinstance(partitions, SupportsShapes):
        return dict(partitions.shapes())
    return {day: (table.schema, table.num_rows) for day, table in partitions.items()}


def schema_to_json(schema: pa.Schema) -> str:
    """Readable columns plus the exact Arrow schema, for ``data/<group>.schema.json``."""
    return json.dumps(
        {
            "columns": {field.name: str(field.type) for field in schema},
            "arrow": base64.b64encode(schema.serialize().to_pybytes()).decode(),
        },
        indent=2,
    )


def schema_from_json(text: str) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(json.loads(text)["arrow"])))
