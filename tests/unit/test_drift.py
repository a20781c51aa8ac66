"""Drift statistics: bins, PSI and the distribution test, whatever the batching."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from fti.errors import ConfigError
from fti.monitoring.drift import DriftCounter, Thresholds, psi, reference

RNG = np.random.default_rng(0)
TRAIN = {
    "x": pa.array(RNG.normal(0, 1, 5_000)),
    "plan": pa.array(RNG.choice(["a", "b", "c"], 5_000)),
}
REFERENCE = reference(TRAIN, RNG.uniform(0, 1, 1_000))


def counted(x: np.ndarray, plan: list[str | None], batch: int) -> DriftCounter:
    counter = DriftCounter(REFERENCE, ["x", "plan"])
    table = pa.table({"x": pa.array(x), "plan": pa.array(plan, pa.string())})
    for part in table.to_batches(max_chunksize=batch):
        counter.add(part, RNG.uniform(0, 1, part.num_rows))
    return counter


def test_psi_of_identical_shares_is_zero_and_grows_with_shift() -> None:
    assert psi(np.array([10, 20, 30]), np.array([1, 2, 3])) == pytest.approx(0.0)
    small = psi(np.array([50, 50]), np.array([55, 45]))
    large = psi(np.array([50, 50]), np.array([90, 10]))
    assert 0 < small < 0.05 < 0.2 < large


def test_same_distribution_does_not_breach_a_shifted_one_does() -> None:
    plans = list(RNG.choice(["a", "b", "c"], 4_000))
    same = counted(RNG.normal(0, 1, 4_000), plans, 1_000).compare(Thresholds())
    shifted = counted(RNG.normal(1.0, 1, 4_000), plans, 1_000).compare(Thresholds())
    assert [r["breached"] for r in same] == [False, False, False]
    assert {r["feature"]: r["breached"] for r in shifted} == {
        "x": True,
        "plan": False,
        "prediction": False,
    }
    x = next(r for r in shifted if r["feature"] == "x")
    assert x["p_value"] < 1e-6 and len(x["bins"]) == len(x["expected"]) == len(x["observed"])


def test_counts_do_not_depend_on_batching_and_keep_every_row() -> None:
    x = np.append(RNG.normal(0, 1, 999), np.nan)
    plans: list[str | None] = [*RNG.choice(["a", "b", "c", "new"], 998), None, "b"]
    one = counted(x, plans, 1_000).compare(Thresholds())
    many = counted(x, plans, 7).compare(Thresholds())
    for a, b in zip(one[:2], many[:2], strict=True):
        assert a["observed"] == b["observed"] and sum(a["observed"]) == 1_000
    plan = next(r for r in one if r["feature"] == "plan")
    assert plan["bins"][-2:] == ["other", "null"] and plan["observed"][-1] == 1
    assert next(r for r in one if r["feature"] == "x")["observed"][-1] == 1  # NaN: the null bin


def test_a_batch_below_the_minimum_is_not_judged_and_breaches_nothing() -> None:
    for rows in (1, 99):
        shifted = counted(RNG.normal(3.0, 1, rows), ["a"] * rows, 7).compare(Thresholds())
        x = next(r for r in shifted if r["feature"] == "x")
        assert x["psi"] > 0.2  # reported for information: it would have breached
        for result in shifted:
            assert result["judged"] is False and result["breached"] is False
            assert result["reason"] == f"not enough rows to judge: {rows} < 100"
            assert result["rows"] == rows == sum(result["observed"])


def test_a_batch_at_the_minimum_is_judged_and_a_shift_breaches() -> None:
    shifted = counted(RNG.normal(3.0, 1, 100), ["a"] * 100, 7).compare(Thresholds())
    by_feature = {r["feature"]: r for r in shifted}
    assert all(r["judged"] and r["reason"] is None for r in shifted)
    assert by_feature["x"]["breached"] and by_feature["plan"]["breached"]
    assert by_feature["x"]["rows"] == 100


def test_the_minimum_comes_from_params_and_can_be_lowered() -> None:
    assert Thresholds.from_params({}).min_rows == 100
    params = Thresholds.from_params({"psi_threshold": 0.3, "p_value": 0.01, "min_rows": 1})
    assert params == Thresholds(psi=0.3, p_value=0.01, min_rows=1)
    one = counted(np.array([3.0]), ["a"], 1).compare(params)
    assert next(r for r in one if r["feature"] == "x")["breached"] is True
    with pytest.raises(ConfigError, match="monitor.min_rows must be at least 1, got 0"):
        Thresholds.from_params({"min_rows": 0})


def test_the_window_comes_from_params_and_must_be_a_whole_number_of_days() -> None:
    assert Thresholds.from_params({}).window_days == 1
    assert Thresholds.from_params({"window_days": 14}).window_days == 14
    for bad in (0, -1, "7", 1.5, True):
        with pytest.raises(ConfigError, match=r"^monitor.window_days must be a whole number"):
            Thresholds.from_params({"window_days": bad})
