"""Version statistics merged from partition statistics agree with statistics of the whole."""

from __future__ import annotations

import base64
import zlib
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from datasketches import kll_doubles_sketch
from hypothesis import given, settings
from hypothesis import strategies as st

from fti.store.statistics import (
    QUANTILES,
    SKETCH,
    SKETCH_K,
    column_statistics,
    merge_statistics,
)

# The sketch's stated error: a merged quantile's rank is off by at most this (99% confidence).
RANK_ERROR = kll_doubles_sketch.get_normalized_rank_error(SKETCH_K, False)


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
        # At most 6 * 40 values, mostly fewer than the sketch's k: then quantiles are exact.
        if whole["x"]["count"] - whole["x"]["nulls"] <= SKETCH_K:
            assert merged["x"]["quantiles"] == whole["x"]["quantiles"]
            assert merged["x"]["quantiles_approximate"] is False
    assert merged["w"]["distinct"] == whole["w"]["distinct"] and merged["w"]["distinct_exact"]
    assert merged["w"]["top"] == {
        k: v for k, v in whole["w"]["top"].items() if k in merged["w"]["top"]
    }


def exact(values: np.ndarray) -> dict[str, float]:
    """numpy's quantiles of the whole, by the definition the statistics use."""
    found = np.quantile(values, QUANTILES, method="inverted_cdf")
    return dict(zip(map(str, QUANTILES), map(float, found), strict=True))


def assert_within_rank_error(quantiles: dict[str, float], values: np.ndarray) -> None:
    """Each quantile q is a value whose rank among ``values`` is q, give or take RANK_ERROR."""
    ordered = np.sort(values)
    for q in QUANTILES:
        value = quantiles[str(q)]
        below = np.searchsorted(ordered, value, "left") / len(ordered)
        at_or_below = np.searchsorted(ordered, value, "right") / len(ordered)
        assert below - RANK_ERROR <= q <= at_or_below + RANK_ERROR, (q, value, below, at_or_below)


def merged_x(parts: list[np.ndarray]) -> dict[str, Any]:
    return merge_statistics([column_statistics(pa.table({"x": p})) for p in parts])["x"]


def test_one_row_partitions_merge_to_the_exact_quantiles_not_the_mean() -> None:
    values = np.random.default_rng(1).normal(10, 3, SKETCH_K)
    merged = merged_x([values[i : i + 1] for i in range(len(values))])
    assert merged["quantiles"] == exact(values)
    assert merged["quantiles_approximate"] is False
    # The row-weighted mean of one-row partitions' quantiles made every quantile the mean.
    assert (
        merged["quantiles"]["0.05"]
        < merged["mean"] - 3
        < merged["mean"] + 3
        < merged["quantiles"]["0.95"]
    )


def test_one_row_partitions_beyond_k_are_within_the_sketch_rank_error() -> None:
    values = np.random.default_rng(2).exponential(5, 3_000)
    merged = merged_x([values[i : i + 1] for i in range(len(values))])
    assert merged["quantiles_approximate"] is True
    assert_within_rank_error(merged["quantiles"], values)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    rows=st.integers(1, 5_000),
    pieces=st.integers(1, 300),
    ties=st.booleans(),
)
def test_merged_quantiles_of_any_partitioning_are_within_the_rank_error(
    seed: int, rows: int, pieces: int, ties: bool
) -> None:
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 20, rows).astype(float) if ties else rng.lognormal(0, 2, rows)
    cuts = np.sort(rng.choice(np.arange(1, rows), min(pieces, rows) - 1, replace=False))
    merged = merged_x(np.split(values, cuts))
    assert_within_rank_error(merged["quantiles"], values)
    if rows <= SKETCH_K:  # the sketch holds every value: exact, and said so
        assert merged["quantiles"] == exact(values)
        assert merged["quantiles_approximate"] is False
    assert merged["min"] == values.min() and merged["max"] == values.max()


def test_a_single_partition_keeps_its_exact_quantiles() -> None:
    values = np.random.default_rng(3).normal(0, 1, 10_000)
    alone = column_statistics(pa.table({"x": values}))
    assert alone["x"]["quantiles"] == exact(values)
    merged = merge_statistics([alone])["x"]
    assert merged["quantiles"] == exact(values) and merged["quantiles_approximate"] is False


def test_quantiles_are_flagged_approximate_only_when_the_sketch_estimates() -> None:
    a = column_statistics(pa.table({"x": [1.0, 2.0, 3.0]}))
    b = column_statistics(pa.table({"x": [10.0, 20.0, 30.0]}))
    assert merge_statistics([a])["x"]["quantiles_approximate"] is False
    two = merge_statistics([a, b])["x"]
    assert two["quantiles_approximate"] is False
    assert two["quantiles"] == exact(np.array([1.0, 2.0, 3.0, 10.0, 20.0, 30.0]))
    big = column_statistics(pa.table({"x": np.arange(SKETCH_K, dtype=float)}))
    assert merge_statistics([a, big])["x"]["quantiles_approximate"] is True


def test_nulls_and_nan_stay_out_of_the_quantiles() -> None:
    parts = [
        pa.table({"x": pa.array([1.0, None, float("nan")])}),
        pa.table({"x": pa.array([None, None], pa.float64())}),
        pa.table({"x": pa.array([3.0, 2.0])}),
    ]
    merged = merge_statistics([column_statistics(t) for t in parts])["x"]
    assert merged["quantiles"] == exact(np.array([1.0, 2.0, 3.0]))
    assert (merged["count"], merged["nulls"]) == (7, 3)


def without_sketch(stats: dict[str, dict[str, object]]) -> dict[str, dict[str, object]]:
    """Statistics as recorded before partitions carried a sketch."""
    return {name: {k: v for k, v in e.items() if k != SKETCH} for name, e in stats.items()}


def test_partitions_recorded_without_a_sketch_still_merge() -> None:
    values = np.random.default_rng(4).normal(0, 1, 150)
    old_one_row = [without_sketch(column_statistics(pa.table({"x": [v]}))) for v in values]
    merged = merge_statistics(old_one_row)["x"]
    assert merged["quantiles"] == exact(values)  # one row: min = max = the value, exact
    assert merged["quantiles_approximate"] is False

    big = np.random.default_rng(5).normal(0, 1, 5_000)
    old = without_sketch(column_statistics(pa.table({"x": big[:2_500]})))
    new = column_statistics(pa.table({"x": big[2_500:]}))
    mixed = merge_statistics([old, new])["x"]
    assert mixed["quantiles_approximate"] is True
    # The old partition stands in by its recorded quantiles: close, though not within the
    # sketch's error by construction; the exact parts (count, min, max, mean) stay exact.
    assert mixed["quantiles"]["0.5"] == pytest.approx(float(np.median(big)), abs=0.1)
    assert (mixed["min"], mixed["max"]) == (big.min(), big.max())
    # A version's merged statistics (no sketch) merge again the same way.
    again = merge_statistics([merge_statistics([old, new]), new])["x"]
    assert again["quantiles_approximate"] is True and again["count"] == 7_500


def test_the_stored_sketch_is_small_and_its_own() -> None:
    sizes = ((1, 40), (SKETCH_K, 2_200), (10_000, 6_000), (1_000_000, 7_000))
    for rows, most in sizes:
        values = np.random.default_rng(rows).normal(0, 1, rows)
        text = column_statistics(pa.table({"x": values}))["x"][SKETCH]
        assert len(text) <= most, (rows, len(text))
        sketch = kll_doubles_sketch.deserialize(zlib.decompress(base64.b64decode(text)))
        assert sketch.n == rows and sketch.get_min_value() == values.min()
    counts = np.random.default_rng(0).poisson(3, 10_000)  # repeated values compress
    assert len(column_statistics(pa.table({"x": counts}))["x"][SKETCH]) <= 500
    assert SKETCH not in merge_statistics([column_statistics(pa.table({"x": [1.0]}))] * 2)["x"]
