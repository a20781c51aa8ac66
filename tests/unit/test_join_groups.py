"""Training joins every feature group point in time, each with its own TTL (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.definitions import LABEL, LABEL_DATE
from fti.store.versions import DATE_COLUMN
from fti.training.dataset import join_groups, newest_in_windows

DAY0 = date(2026, 3, 1)
days = st.integers(min_value=0, max_value=12).map(lambda n: DAY0 + timedelta(days=n))
entities = st.integers(min_value=1, max_value=4)


def rows(column: str) -> st.SearchStrategy:
    return st.lists(st.tuples(entities, days, st.integers(0, 1000)), max_size=25).map(
        lambda items: pd.DataFrame(items, columns=["customer_id", DATE_COLUMN, column])
    )


def newest(rows: pd.DataFrame, column: str, entity: int, day: date, ttl: int) -> object:
    """Brute force: the last row (input order on ties) of the entity, at or before the day,
    at most ttl days older."""
    best = None
    for order, row in enumerate(rows.itertuples(index=False)):
        if row.customer_id != entity or row.feature_date > day:
            continue
        if (day - row.feature_date).days > ttl:
            continue
        if best is None or (row.feature_date, order) >= best[:2]:
            best = (row.feature_date, order, getattr(row, column))
    return None if best is None else best[2]


@settings(max_examples=150, deadline=None)
@given(
    labels=st.lists(st.tuples(entities, days), max_size=20, unique=True),
    spine=rows("a"),
    other=rows("b"),
    ttls=st.tuples(st.integers(0, 5), st.integers(0, 5)),
)
def test_two_groups_with_their_own_ttls_match_brute_force(labels, spine, other, ttls) -> None:  # type: ignore[no-untyped-def]
    frame = pd.DataFrame(labels, columns=["customer_id", LABEL_DATE])
    frame[LABEL] = range(len(frame))
    joined = join_groups(frame, "customer_id", [(spine, ttls[0]), (other, ttls[1])])

    expected = []
    for number, (entity, day) in enumerate(labels):
        a = newest(spine, "a", entity, day, ttls[0])
        if a is None:  # no spine row within its TTL: the label row is left out
            continue
        expected.append((number, a, newest(other, "b", entity, day, ttls[1])))
    got = [
        (int(r[LABEL]), int(r["a"]), None if pd.isna(r["b"]) else int(r["b"]))
        for _, r in joined.iterrows()
    ]
    assert got == expected
    assert list(joined.columns) == ["customer_id", LABEL_DATE, LABEL, "a", "b"]


@settings(max_examples=150, deadline=None)
@given(
    feature_rows=rows("a"),
    label_days=st.lists(days, min_size=1, max_size=4, unique=True),
    ttl=st.integers(0, 5),
)
def test_the_rows_newest_in_windows_keeps_join_as_every_row_does(  # type: ignore[no-untyped-def]
    feature_rows, label_days, ttl
) -> None:
    """The training set reads, per label date, each entity's newest row of its TTL window
    (a partition at a time): the join is the join over every row of those partitions."""
    partitions = {
        day: pa.Table.from_pandas(part.reset_index(drop=True), preserve_index=False)
        for day, part in feature_rows.groupby(DATE_COLUMN, sort=True)
    }
    labels = pd.DataFrame(
        [(entity, day) for day in label_days for entity in range(1, 5)],
        columns=["customer_id", LABEL_DATE],
    )
    labels[LABEL] = range(len(labels))
    windows = {d - timedelta(days=back) for d in label_days for back in range(ttl + 1)}
    every = [partitions[d] for d in sorted(partitions) if d in windows]
    reduced = newest_in_windows(
        partitions.__getitem__, set(partitions), label_days, ttl, "customer_id"
    )
    assert (reduced is None) == (not every)
    if reduced is None:
        return
    full = pa.concat_tables(every).to_pandas()
    expected = join_groups(labels, "customer_id", [(full, ttl)])
    got = join_groups(labels, "customer_id", [(reduced.to_pandas(), ttl)])
    pd.testing.assert_frame_equal(got, expected)
    if ttl:  # at most a row per entity and label date (with ttl 0 a partition is read as is)
        assert reduced.num_rows <= min(len(full), len(labels))
