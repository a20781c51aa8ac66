"""The point-in-time join never uses a feature row later than the label time."""

from __future__ import annotations

import contextlib
import sys
from datetime import UTC, datetime, timedelta
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.training import pit
from fti.training.pit import point_in_time_join

BASE = datetime(2026, 1, 1, tzinfo=UTC)
times = st.integers(min_value=0, max_value=20).map(lambda h: BASE + timedelta(hours=h))
entities = st.integers(min_value=1, max_value=4)
ENGINES = ["merge_asof", "duckdb"]  # small inputs take pandas' merge_asof, large ones DuckDB


def engine_for_any_size(engine: str) -> contextlib.AbstractContextManager:
    threshold = 0 if engine == "duckdb" else sys.maxsize
    return mock.patch.object(pit, "DUCKDB_FROM_ROWS", threshold)


# Nulls join nothing: a label with a null entity or time gets no features, and a feature row
# with one is never used.
def or_null(values: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.none(), values)


def oracle(
    labels: pd.DataFrame, features: pd.DataFrame, ttl: timedelta | None
) -> list[float | None]:
    """Brute force: scan every feature row; newest at or before the label time; last one on ties."""
    picked = []
    for label in labels.itertuples():
        best = None
        for order, row in enumerate(features.itertuples()):
            if any(pd.isna(v) for v in (label.e, label.t, row.e, row.ft)):
                continue
            if row.e != label.e or row.ft > label.t:
                continue
            if ttl is not None and label.t - row.ft > ttl:
                continue
            if best is None or (row.ft, order) >= (best[0], best[1]):
                best = (row.ft, order, row.x)
        picked.append(None if best is None else best[2])
    return picked


@settings(max_examples=200, deadline=None)
@given(
    labels=st.lists(st.tuples(or_null(entities), or_null(times)), max_size=25),
    features=st.lists(
        st.tuples(or_null(entities), or_null(times), st.integers(0, 1000)),
        max_size=40,
    ),
    ttl_hours=st.one_of(st.none(), st.integers(0, 10)),
    entity_dtype=st.sampled_from(["Int64", "str", "category"]),
    id_step=st.sampled_from([1, -(2**40)]),  # ids spanning more than 2^31 stay 64-bit
    engine=st.sampled_from(ENGINES),
)
def test_point_in_time_join_matches_brute_force(
    labels, features, ttl_hours, entity_dtype, id_step, engine
):
    label_frame = pd.DataFrame(labels, columns=["e", "t"]).astype({"e": "Int64"})
    label_frame["t"] = pd.to_datetime(label_frame["t"], utc=True)
    label_frame.index = pd.Index(
        [f"row{i}" for i in range(len(label_frame))]
    )  # unsorted, non-range index
    feature_frame = pd.DataFrame(features, columns=["e", "ft", "x"]).astype(
        {"e": "Int64", "x": "int64"}
    )
    feature_frame["ft"] = pd.to_datetime(feature_frame["ft"], utc=True)
    for frame in (label_frame, feature_frame):
        frame["e"] = frame["e"] * id_step
    if entity_dtype != "Int64":  # ids as strings: "1", "2", ...; nulls stay null
        for frame in (label_frame, feature_frame):  # categoricals: each side its own categories
            frame["e"] = frame["e"].astype("str").where(frame["e"].notna(), None)
            frame["e"] = frame["e"].astype(entity_dtype)
    ttl = timedelta(hours=ttl_hours) if ttl_hours is not None else None

    with engine_for_any_size(engine):
        joined = point_in_time_join(label_frame, feature_frame, "e", "t", "ft", ttl=ttl)

    assert list(joined.index) == list(label_frame.index)  # label order and index kept
    got = [None if pd.isna(v) else v for v in joined["x"]]
    assert got == oracle(label_frame, feature_frame, ttl)
    used = joined.dropna(subset=["ft"])
    assert (used["ft"] <= used["t"]).all()  # never a later feature row


def test_time_zones_must_agree():
    labels = pd.DataFrame({"e": [1], "t": pd.to_datetime(["2026-01-02"], utc=True)})
    features = pd.DataFrame({"e": [1], "ft": pd.to_datetime(["2026-01-01"]), "x": [1]})
    try:
        point_in_time_join(labels, features, "e", "t", "ft")
    except ValueError as exc:
        assert "time zone" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("mixing aware and naive timestamps must be refused")


@pytest.mark.parametrize("engine", ENGINES)
def test_nanosecond_times_across_the_whole_range(engine):
    """Times before 1970 and at pandas' limits keep exact order; ties still go to the last row."""
    ns = pd.Timedelta(1, "ns")
    epoch, lo, hi = pd.Timestamp(0), pd.Timestamp.min, pd.Timestamp.max
    features = pd.DataFrame({"e": 1, "ft": [lo, epoch - ns, epoch - ns, hi], "x": [1, 2, 3, 4]})
    labels = pd.DataFrame({"e": 1, "t": [lo, epoch - 2 * ns, epoch, hi - ns, hi]})

    with engine_for_any_size(engine):
        joined = point_in_time_join(labels, features, "e", "t", "ft")

    assert joined["x"].tolist() == [1, 1, 3, 3, 4]


@pytest.mark.parametrize("engine", ENGINES)
def test_entity_ids_must_be_alike(engine):
    """A string id never silently equals a number (DuckDB would cast one to the other)."""
    labels = pd.DataFrame({"e": ["1"], "t": pd.to_datetime(["2026-01-02"])})
    features = pd.DataFrame({"e": [1], "ft": pd.to_datetime(["2026-01-01"]), "x": [1]})
    with pytest.raises(ValueError, match="entity 'e' holds large_string in the labels but int64"):
        point_in_time_join(labels, features, "e", "t", "ft")
    narrow = labels.assign(e=pd.Series([1], dtype="int32"))  # integer widths may differ
    floats = pd.concat([labels.assign(e=1), labels.assign(e=np.nan)])  # NumPy: a missing id -> NaN
    with engine_for_any_size(engine):
        assert point_in_time_join(narrow, features, "e", "t", "ft")["x"].tolist() == [1]
        joined = point_in_time_join(floats, features, "e", "t", "ft")
    assert joined["x"].tolist()[0] == 1 and joined["x"].isna().tolist() == [False, True]


@pytest.mark.parametrize("engine", ENGINES)
def test_many_tied_rows_the_last_wins(engine):
    """Thousands of rows per (entity, time): sorting must keep features' order among them."""
    rng = np.random.default_rng(7)
    n = 5_000
    features = pd.DataFrame(
        {
            "e": rng.integers(0, 3, n),
            "ft": BASE + pd.to_timedelta(rng.integers(0, 3, n), unit="h"),
            "x": np.arange(n),
        }
    )
    labels = pd.DataFrame({"e": [0, 1, 2, 0], "t": BASE + pd.to_timedelta([0, 1, 2, 9], unit="h")})
    newest = features.sort_values("ft", kind="stable").groupby("e").last()  # rows <= 2h

    with engine_for_any_size(engine):
        joined = point_in_time_join(labels, features, "e", "t", "ft")

    at = features.groupby(["e", "ft"])["x"].last()  # the last row of each (entity, time)
    assert joined["x"].tolist() == [
        at[(0, BASE)],
        at[(1, BASE + timedelta(hours=1))],
        at[(2, BASE + timedelta(hours=2))],
        newest.loc[0, "x"],
    ]
