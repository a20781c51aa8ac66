"""Version statistics merged from partition statistics agree with statistics of the whole."""

from __future__ import annotations

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.store.statistics import column_statistics, merge_statistics


@st.composite
def partition(draw: st.DrawFn) -> pa.Table:
    rows = draw(st.integers(1, 40))
    x = draw(st.lists(st.one_of(st.none(), st.integers(-1000, 1000)), min_size=rows, max_size=rows))
    w = draw(
        st.lists(st.one_of(st.none(), st.sampled_from("abcdefg")), min_size=rows, max_size=rows)
    )
    return pa.table({"x": pa.array(x, pa.int64()), "w": pa.array(w, pa.string())})


@settings(max_examples=60, deadline=None)
@given(st.lists(partition(), min_size=1, max_size=6))
def test_merged_statistics_match_the_whole_where_exact(tables: list[pa.Table]) -> None:
    whole = column_statistics(pa.concat_tables(tables))
    merged = merge_statistics([column_statistics(t) for t in tables])
    for column in ("x", "w"):
        assert merged[column]["count"] == whole[column]["count"]
        assert merged[column]["nulls"] == whole[column]["nulls"]
    if "mean" in whole["x"]:
        assert (merged["x"]["min"], merged["x"]["max"]) == (whole["x"]["min"], whole["x"]["max"])
        assert merged["x"]["mean"] == pytest.approx(whole["x"]["mean"])
    assert merged["w"]["distinct"] == whole["w"]["distinct"] and merged["w"]["distinct_exact"]
    assert merged["w"]["top"] == {
        k: v for k, v in whole["w"]["top"].items() if k in merged["w"]["top"]
    }


def test_quantiles_of_several_partitions_are_flagged_approximate() -> None:
    a = column_statistics(pa.table({"x": [1.0, 2.0, 3.0]}))
    b = column_statistics(pa.table({"x": [10.0, 20.0, 30.0]}))
    assert merge_statistics([a])["x"]["quantiles_approximate"] is False
    assert merge_statistics([a, b])["x"]["quantiles_approximate"] is True
