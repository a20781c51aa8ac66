"""The two forms of the serving join agree: pandas (``within_ttl`` + ``model_rows``, batch) and
row-wise (``entity_model_rows``, the scoring service's few online rows), on random groups,
TTLs, dtypes and nulls (hypothesis). Compared as ``score_rows`` hands them to the model."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.inference.features import EntityRows, entity_model_rows, model_rows, within_ttl
from fti.store.versions import DATE_COLUMN

DAY0 = date(2026, 3, 1)
days = st.integers(min_value=0, max_value=10).map(lambda n: DAY0 + timedelta(days=n))
KEY = "customer_id"

# A published type and the values (None: null) an online row of it may hold.
TYPES: list[tuple[pa.DataType, st.SearchStrategy[Any]]] = [
    (pa.int64(), st.integers(-(2**40), 2**40)),
    (pa.float64(), st.floats(allow_nan=False, allow_infinity=False, width=64)),
    (pa.bool_(), st.booleans()),
    (pa.large_string(), st.text(max_size=4)),
    (pa.date32(), days),
]


@st.composite
def groups(draw: st.DrawFn) -> dict[str, Any]:
    """A spine and 1-2 other groups: unique entities each, their dates, typed columns, TTLs."""
    key_type = draw(st.sampled_from([pa.int64(), pa.large_string()]))
    universe = st.integers(1, 8).map(lambda n: n if key_type == pa.int64() else f"c{n}")
    drawn = []
    for number in range(1 + draw(st.integers(1, 2))):
        keys = draw(st.lists(universe, min_size=1 if number == 0 else 0, max_size=6, unique=True))
        fields = []
        columns = []
        for column in range(draw(st.integers(1, 3))):
            kind, values = draw(st.sampled_from(TYPES))
            name = f"g{number}_{column}"
            fields.append(pa.field(name, kind))
            columns.append(
                draw(st.lists(st.none() | values, min_size=len(keys), max_size=len(keys)))
            )
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, fields, strict=True)],
            schema=pa.schema(fields),
        )
        dates = draw(st.lists(days, min_size=len(keys), max_size=len(keys)))
        drawn.append(EntityRows(keys, dates, table, draw(st.integers(0, 4))))
    return {"key_type": key_type, "spine": drawn[0], "others": drawn[1:]}


def pandas_join(
    spine: EntityRows, others: list[EntityRows], key_type: pa.DataType, features: list[str]
) -> pa.RecordBatch:
    """Batch's form: frames with the published dtypes (as read from Parquet), ``within_ttl``
    on each other group, then ``model_rows``."""

    def frame(rows: EntityRows) -> pd.DataFrame:
        keyed = rows.table.add_column(0, KEY, pa.array(rows.keys, key_type))
        return keyed.to_pandas()

    spine_frame = frame(spine)
    spine_dates = pd.Series(spine.dates, index=spine_frame[KEY], dtype=object)
    joined = []
    for rows in others:
        indexed = frame(rows).set_index(KEY)
        indexed[DATE_COLUMN] = pd.Series(rows.dates, index=indexed.index, dtype=object)
        kept = within_ttl(indexed, spine_dates, rows.ttl_days)
        joined.append(kept.drop(columns=DATE_COLUMN))
    return model_rows(spine_frame, joined, KEY, features)


@settings(max_examples=300, deadline=None)
@given(drawn=groups(), pick=st.randoms(use_true_random=False))
def test_row_wise_join_equals_the_pandas_join(drawn: dict[str, Any], pick: Any) -> None:
    spine, others, key_type = drawn["spine"], drawn["others"], drawn["key_type"]
    features = [name for rows in [spine, *others] for name in rows.table.column_names]
    pick.shuffle(features)  # the trained order is any order of the groups' columns
    expected = pandas_join(spine, others, key_type, features)
    actual = entity_model_rows(spine, others, KEY, key_type, features)
    assert actual.column(KEY).to_pylist() == list(spine.keys)
    published = {f.name: f.type for rows in [spine, *others] for f in rows.table.schema}
    assert actual.schema == pa.schema([(KEY, key_type), *((f, published[f]) for f in features)])
    # What ``score_rows`` hands the model: the features, in the trained order, as pandas. The
    # same values; not always the same dtypes: pandas makes an int column float64 when any row
    # of the frame is null (batch: any row of the partition), the row-wise join when one of
    # the scored rows is; the model sees the same numbers.
    pd.testing.assert_frame_equal(
        actual.select(features).to_pandas(),
        expected.select(features).to_pandas(),
        check_dtype=False,
        check_exact=True,
    )


def test_a_row_joins_when_at_most_its_ttl_older_than_the_spine_row() -> None:
    """The boundary, by hand: TTL 2 joins rows of the spine's day - 2 and newer, not - 3."""
    spine = EntityRows([1, 2, 3, 4], [DAY0 + timedelta(days=5)] * 4, pa.table({"a": [1, 2, 3, 4]}))
    other_days = [DAY0 + timedelta(days=d) for d in (2, 3, 7)]  # entity 4: no row
    other = EntityRows([1, 2, 3], other_days, pa.table({"b": [10.0, 20.0, 30.0]}), ttl_days=2)
    rows = entity_model_rows(spine, [other], KEY, pa.int64(), ["b", "a"])
    assert rows.to_pydict() == {KEY: [1, 2, 3, 4], "b": [None, 20.0, 30.0, None], "a": [1, 2, 3, 4]}
    assert rows.schema.field("a").type == pa.int64()  # published types, no float upcast
