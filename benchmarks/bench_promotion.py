"""The promotion gate's paired bootstrap at 1e4, 1e5 and 1e6 holdout rows, and what it cost
before its per-model work was done once.

For each size N and each metric (``roc_auc`` of a binary model, ``neg_root_mean_squared_error``
of a regressor), a synthetic holdout of N rows is scored by a candidate and a champion that
are nearly as good (fti's ``predictions``, as the gate does), then timed (wall clock):

- **now**: ``fti.training.promotion.paired_bootstrap`` with params.yaml's ``promote`` section
  (1,000 resamples). Each model's setup (scikit-learn's metric on all rows, the scores sorted
  or the per-row terms) is done once; the resamples are drawn and scored in batches of about
  2,000,000 counts, each in time linear in its counts. Best of ``--repeat`` runs
  (``--repeat-large`` above ``--full-max-rows``).
- **of which drawing**: drawing the same resamples alone (``resample_counts``, the same
  batches from the same seed; up to 50 batches timed, scaled to all), a floor that both loops
  pay and no metric can lower.
- **before**: the same loop as it was (``old_paired_bootstrap`` below, a copy of the previous
  per-batch code for these two metrics): every batch of resamples scored scikit-learn's metric
  on all rows again and redid the setup (sorting the scores for the AUC), so with batches of
  2,000,000 // N resamples its cost grew as N^2 log N. Run in full up to ``--full-max-rows``;
  above that, its first ``--sample-batches`` batches are timed and extrapolated to all of
  them (marked ``est.``): every batch of a size costs the same (there are N / 2,000 of them),
  and the two scores on the whole holdout before the loop are timed apart and counted once.

Both draw the same resamples from the same seed, so where both run in full the intervals must
agree (the AUC's exactly: it counts pairs in integers; the RMSE's within 1e-12: its sums are
now added in another order, a few units in the last place); the script checks that. Prints a table with the ratio before / now. On a shared machine the
times move with the load; the ratios at 1e6 rows are orders of magnitude apart for the AUC.

Run it from the repository root::

    .venv/bin/python benchmarks/bench_promotion.py           # 1e4, 1e5, 1e6 rows (~4 min)
    .venv/bin/python benchmarks/bench_promotion.py --quick   # 1e3, 1e4, 1e5 rows (~30 s)

Not run by pytest.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fti.params import load_params
from fti.training.metrics import (
    Predictions,
    higher_is_better,
    predictions,
    resample_counts,
    score_predictions,
)
from fti.training.promotion import _BATCH_CELLS, GateParams, gate_params, paired_bootstrap

REPO = Path(__file__).resolve().parents[1]
METRICS = ("roc_auc", "neg_root_mean_squared_error")
SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (1_000, 10_000, 100_000)


# ---- the holdout and the two models -------------------------------------------------------------
class FixedScores:
    """A binary classifier whose positive-class probability is its one feature column."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = X.iloc[:, 0].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])


class FixedValues:
    """A regressor whose prediction is its one feature column."""

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return X.iloc[:, 0].to_numpy(dtype=float)


def holdout(metric: str, rows: int, seed: int = 0) -> tuple[Predictions, Predictions]:
    """Candidate and champion predictions on ``rows`` rows: two noisy scores of one signal,
    the candidate's a little jitter away from the champion's."""
    rng = np.random.default_rng(seed)
    signal = rng.normal(size=rows)
    old = signal + rng.normal(scale=0.8, size=rows)
    new = old + rng.normal(scale=0.05, size=rows)
    if metric == "roc_auc":
        y = pd.Series((signal + rng.normal(size=rows) > 0).astype(int))
        frame = pd.DataFrame({"old": 1 / (1 + np.exp(-old)), "new": 1 / (1 + np.exp(-new))})
        model: Any = FixedScores()
    else:
        y = pd.Series(3 * signal + rng.normal(size=rows))
        frame = pd.DataFrame({"old": 3 * old, "new": 3 * new})
        model = FixedValues()
    return (
        predictions(metric, model, frame[["new"]], y),
        predictions(metric, model, frame[["old"]], y),
    )


# ---- before: every batch redid the setup --------------------------------------------------------
def old_roc_auc(positive: np.ndarray, scores: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """The previous vectorised binary AUC (fti.training.metrics._roc_auc), setup and all."""
    larger_positive = positive.sum() >= (~positive).sum()
    larger = np.flatnonzero(positive if larger_positive else ~positive)
    smaller = np.flatnonzero(~positive if larger_positive else positive)
    smaller = smaller[np.argsort(scores[smaller], kind="stable")]
    ranked = scores[smaller]
    below = np.searchsorted(ranked, scores[larger], side="left")
    up_to = np.searchsorted(ranked, scores[larger], side="right")
    tied = bool((below != up_to).any())

    def evaluate(counts: np.ndarray) -> np.ndarray:
        cumulative = np.zeros((len(counts), len(smaller) + 1), dtype=np.int64)
        np.cumsum(counts[:, smaller], axis=1, out=cumulative[:, 1:])
        weights = counts[:, larger]
        twice = cumulative[:, below]
        twice += cumulative[:, up_to] if tied else twice
        twice *= weights
        above = twice.sum(axis=1) / 2
        pairs = weights.sum(axis=1, dtype=np.int64) * cumulative[:, -1]
        right = above if larger_positive else pairs - above
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(pairs > 0, right / pairs, np.nan)

    return evaluate


def old_resampled_values(kept: Predictions, counts: np.ndarray) -> np.ndarray:
    """The previous ``resampled_values`` for these two metrics: scikit-learn's metric on all
    rows (is it defined?) and the vectorised setup, then the resamples."""
    if score_predictions(kept) is None:
        raise ValueError("not defined on all rows")
    if kept.name == "roc_auc":
        assert kept.classes is not None and np.isin(kept.truth, kept.classes).all()
        return old_roc_auc(kept.truth == np.sort(kept.classes)[1], kept.response)(counts)
    squares = (kept.truth.astype(np.float64) - kept.response.astype(np.float64)) ** 2
    return -np.sqrt((counts @ squares) / counts.sum(axis=1))  # the neg_ scorer's sign


def old_paired_bootstrap(
    metric: str,
    candidate: Predictions,
    champion: Predictions,
    params: GateParams,
    batches: int | None = None,
) -> tuple[float | None, float | None]:
    """The previous ``paired_bootstrap``'s interval; only its first ``batches`` batches
    (then no interval) when given."""
    direction = 1.0 if higher_is_better(metric) else -1.0
    ours, theirs = score_predictions(candidate), score_predictions(champion)
    assert ours is not None and theirs is not None
    rows = len(candidate.truth)
    rng = np.random.default_rng(params.seed)
    batch = max(1, _BATCH_CELLS // rows)
    gains = []
    for number, start in enumerate(range(0, params.bootstrap_resamples, batch)):
        if batches is not None and number == batches:
            return None, None
        drawn = resample_counts(rows, min(batch, params.bootstrap_resamples - start), rng)
        gains.append(
            direction
            * (old_resampled_values(candidate, drawn) - old_resampled_values(champion, drawn))
        )
    scored = np.concatenate(gains)
    scored = scored[np.isfinite(scored)]
    tail = (1 - params.confidence) / 2
    low, high = np.quantile(scored, [tail, 1 - tail])
    return float(low), float(high)


def draw_only(rows: int, params: GateParams, batches: int) -> None:
    """Only the drawing of the first ``batches`` batches of resamples (``resample_counts``):
    the share of either loop that no metric can save."""
    rng = np.random.default_rng(params.seed)
    batch = max(1, _BATCH_CELLS // rows)
    for start in range(0, min(params.bootstrap_resamples, batches * batch), batch):
        resample_counts(rows, min(batch, params.bootstrap_resamples - start), rng)


# ---- measuring ----------------------------------------------------------------------------------
@dataclass
class Row:
    metric: str
    rows: int
    batches: int
    draws_s: float
    now_s: float
    before_s: float
    estimated: bool
    agree: str


def seconds(call: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` calls, and the last call's result."""
    best, result = float("inf"), None
    for _ in range(repeat):
        clock = time.perf_counter()
        result = call()
        best = min(best, time.perf_counter() - clock)
    return best, result


def measure(metric: str, rows: int, params: GateParams, args: argparse.Namespace) -> Row:
    candidate, champion = holdout(metric, rows)
    batch = max(1, _BATCH_CELLS // rows)
    batches = -(-params.bootstrap_resamples // batch)
    full = rows <= args.full_max_rows
    repeat = args.repeat if full else args.repeat_large
    now, interval = seconds(lambda: paired_bootstrap(metric, candidate, champion, params), repeat)
    drawn = min(batches, 50)  # every batch of a size draws as many counts
    draws, _ = seconds(lambda: draw_only(rows, params, drawn), repeat)
    draws *= batches / drawn
    if full:
        before, (low, high) = seconds(
            lambda: old_paired_bootstrap(metric, candidate, champion, params)
        )
        assert interval.low is not None and interval.high is not None
        difference = max(abs(interval.low - low), abs(interval.high - high))
        assert difference <= 1e-12, (metric, rows, interval, low, high)
        agree = "identical" if difference == 0 else f"within {difference:.0e}"
        return Row(metric, rows, batches, draws, now, before, False, agree)
    sample = min(args.sample_batches, batches)
    fixed, _ = seconds(lambda: old_paired_bootstrap(metric, candidate, champion, params, 0))
    spent, _ = seconds(
        lambda: old_paired_bootstrap(metric, candidate, champion, params, sample), repeat
    )
    estimate = fixed + (spent - fixed) * batches / sample  # the two whole-holdout scores once
    return Row(metric, rows, batches, draws, now, estimate, True, "-")


def markdown(rows: list[Row]) -> str:
    lines = [
        "| metric | holdout rows | batches | now s | of which drawing s | before s "
        "| before / now | intervals |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        before = f"{r.before_s:.1f} (est.)" if r.estimated else f"{r.before_s:.2f}"
        lines.append(
            f"| {r.metric} | {r.rows:,} | {r.batches} | {r.now_s:.2f} | {r.draws_s:.2f} | {before} "
            f"| {r.before_s / r.now_s:.1f}x | {r.agree} |"
        )
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e3, 1e4 and 1e5 rows")
    parser.add_argument("--repeat", type=int, default=3, help="runs of 'now' (best kept)")
    parser.add_argument(
        "--repeat-large", type=int, default=1, help="runs of 'now' above --full-max-rows"
    )
    parser.add_argument(
        "--full-max-rows",
        type=int,
        default=None,
        help="run 'before' in full up to this size (default 1e5, 1e4 with --quick)",
    )
    parser.add_argument("--sample-batches", type=int, default=4, help="'before' batches timed")
    args = parser.parse_args(argv)
    if args.full_max_rows is None:
        args.full_max_rows = 10_000 if args.quick else 100_000
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    params = gate_params(load_params(REPO / "params.yaml", "promote"))
    clock = time.perf_counter()
    warm_up = holdout("roc_auc", 100)  # scikit-learn's first call imports and checks a lot
    paired_bootstrap("roc_auc", *warm_up, params)
    print(
        f"paired bootstrap, {params.bootstrap_resamples} resamples, "
        f"batches of {_BATCH_CELLS:,} counts"
    )
    rows = []
    for size in QUICK_SIZES if args.quick else SIZES:
        for metric in METRICS:
            rows.append(measure(metric, size, params, args))
            r = rows[-1]
            print(f"  {metric} {size:,} rows: now {r.now_s:.2f} s, before {r.before_s:.2f} s")
    print(markdown(rows))
    print(f"\nbenchmark wall time: {time.perf_counter() - clock:.0f}s")


if __name__ == "__main__":
    main()
