"""The online store's bounded read of a version: partitions newest first, one row per entity
kept, is the newest row per entity of the whole version read at once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.online.materialise import VersionSource, _newest_rows
from fti.store.newest import Taken, newest_per_entity
from fti.store.versions import DATE_COLUMN

KEY = "customer_id"
DAY = date(2026, 3, 1)

# Each partition: (entity or None, value) rows; an entity may have several rows in a day.
partitions = st.dictionaries(
    st.integers(0, 6),
    st.lists(st.tuples(st.none() | st.integers(0, 12), st.integers(0, 9)), max_size=15),
    min_size=1,
    max_size=5,
)


def source_of(days: dict[int, list[tuple[int | None, int]]], key_type: pa.DataType) -> Any:
    schema = pa.schema([(KEY, key_type), (DATE_COLUMN, pa.date32()), ("x", pa.int64())])
    tables = {
        DAY + timedelta(days=offset): pa.table(
            {
                KEY: pa.array([k for k, _ in rows], pa.int64()).cast(key_type),
                DATE_COLUMN: pa.array([DAY + timedelta(days=offset)] * len(rows), pa.date32()),
                "x": pa.array([x for _, x in rows], pa.int64()),
            },
            schema=schema,
        )
        for offset, rows in days.items()
    }

    def read(dates: Sequence[date], where: pc.Expression | None) -> pa.Table:
        table = pa.concat_tables([tables[d] for d in dates])
        return table if where is None else table.filter(where)

    return VersionSource("g", 1, schema, sorted(tables), read), pa.concat_tables(
        [tables[d] for d in sorted(tables)]
    )


def rows_of(table: pa.Table) -> set[tuple[Any, ...]]:
    return set(zip(*(table.column(n).to_pylist() for n in table.column_names), strict=True))


@settings(max_examples=100, deadline=None)
@given(
    days=partitions,
    key_type=st.sampled_from([pa.int64(), pa.string()]),
    wanted=st.none() | st.sets(st.integers(0, 12)),
)
def test_newest_first_by_partition_is_the_newest_row_of_the_whole(
    days: dict[int, list[tuple[int | None, int]]], key_type: pa.DataType, wanted: set[int] | None
) -> None:
    source, whole = source_of(days, key_type)
    where = None
    if wanted is not None:
        where = pc.field(KEY).isin(pa.array(sorted(wanted), pa.int64()).cast(key_type))
        whole = whole.filter(where)
    taken = Taken()
    found = list(_newest_rows(source, KEY, source.dates, taken, where))
    expected = newest_per_entity(whole, KEY)
    got = pa.concat_tables(found) if found else expected.slice(0, 0)
    assert got.num_rows == expected.num_rows == len(taken)  # one row per entity, each taken
    assert rows_of(got) == rows_of(expected)
    assert set(taken.keys.to_pylist() if taken.keys is not None else []) == set(
        expected.column(KEY).to_pylist()
    )
