"""Drift statistics: bins, PSI and the distribution test, whatever the batching."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

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
