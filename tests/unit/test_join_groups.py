"""Training joins every feature group point in time, each with its own TTL (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.definitions import LABEL, LABEL_DATE
from fti.store.versions import DATE_COLUMN
from fti.training.dataset import join_groups

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
