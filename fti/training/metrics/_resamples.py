"""The metric of bootstrap resamples of a holdout's rows, from the model's response kept once
(``Predictions``): the common metrics for every resample at once from per-row terms, the
others by scikit-learn on each resample's rows; either way ``score``'s value on those rows."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

from fti.training.metrics._names import _Metric, _metric
from fti.training.metrics._values import Predictions, _value, score_predictions


# ---- public API ---------------------------------------------------------------------------------
def resample_counts(rows: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap resamples of ``rows`` rows: each draws ``rows`` row numbers with replacement;
    returned as how often each row is drawn, (resamples x rows) int32 counts."""
    wide = resamples * rows >= np.iinfo(np.int32).max
    drawn = rng.integers(0, rows, size=(resamples, rows), dtype=np.int64 if wide else np.int32)
    drawn += (np.arange(resamples) * rows).astype(drawn.dtype)[:, None]  # r * rows + row
    flat = np.bincount(drawn.ravel(), minlength=resamples * rows)
    return flat.reshape(resamples, rows).astype(np.int32)


def resampled_values(kept: Predictions, counts: npt.ArrayLike) -> np.ndarray:
    """The metric on each resample of ``kept``'s rows, in ``score``'s units; NaN where it is
    not defined on a resample's rows (one class only, for instance).

    ``counts`` (resamples x rows, ``resample_counts``) says how often each row is drawn in
    each resample. Equal to ``score`` on the resampled rows, up to floating-point rounding.
    The common metrics are computed for every resample at once; the others call scikit-learn
    once per resample. ``Resampler(kept)(counts)``; to score many batches of resamples of the
    same predictions, keep the ``Resampler``.
    """
    return Resampler(kept)(counts)


class Resampler:
    """The metric of resamples of ``kept``'s rows, with the work that depends on the rows
    alone done once, here: the metric on all rows (``value``, ``score_predictions``'s), and
    for the common metrics the scores sorted (ranking metrics) or the per-row terms.

    Calling it with counts returns ``resampled_values(kept, counts)``, in time linear in the
    counts (resamples x rows) for the common metrics: a bootstrap scores its resamples batch
    by batch, in bounded memory, without sorting the rows again for each batch.
    """

    def __init__(self, kept: Predictions) -> None:
        self.kept = kept
        self.value = score_predictions(kept)  # None: not defined on all rows
        self._metric = _metric(kept.name)
        defined = self.value is not None
        self._vectorised = _vectorised(self._metric, kept) if defined else None

    def __call__(self, counts: npt.ArrayLike) -> np.ndarray:
        """The metric on each resample, NaN where not defined; ValueError for ``counts``
        not shaped (resamples x rows)."""
        kept, metric, rows = self.kept, self._metric, len(self.kept.truth)
        drawn = np.asarray(counts)
        if drawn.ndim != 2 or drawn.shape[1] != rows:
            raise ValueError(f"counts must be (resamples x {rows} rows), not {drawn.shape}")
        values = np.full(len(drawn), np.nan)
        if rows == 0 or len(drawn) == 0:
            return values
        redo = np.ones(len(drawn), dtype=bool)
        if self._vectorised is not None:
            raw, redo = self._vectorised(drawn)
            values = raw if metric.loss else metric.sign * raw
        everyone = np.arange(rows)
        for row in np.flatnonzero(redo):  # scikit-learn on the resample's own rows
            taken = np.repeat(everyone, drawn[row])
            truth, response = kept.truth[taken], kept.response[taken]
            found = _value(metric, truth, response, kept.kwargs, kept.classes, warn=False)
            values[row] = np.nan if found is None else found
        return values


# ---- resamples, all at once ---------------------------------------------------------------------
# A vectorised metric: (resamples x rows) counts -> (its values in the function's own units,
# which resamples scikit-learn must compute itself).
_Vectorised = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
# roc_auc_score's arguments the vectorised AUC knows (a binary AUC ignores them all).
_ROC_AUC_ARGUMENTS = frozenset({"labels", "average", "multi_class"})
_REGRESSION_FUNCTIONS = (r2_score, mean_absolute_error, mean_squared_error, root_mean_squared_error)


def _vectorised(metric: _Metric, kept: Predictions) -> _Vectorised | None:
    """The metric of every resample at once from per-row terms, for the common metrics whose
    arguments it covers; None: scikit-learn computes each resample.

    Only called when scikit-learn scores all rows (the arrays fit the function).
    """
    function, kwargs = metric.function, dict(kept.kwargs)
    truth, response = kept.truth, kept.response
    if truth.ndim != 1:
        return None
    if function is roc_auc_score:
        return _roc_auc_of(kept, kwargs)
    if function is average_precision_score:
        binary = kept.classes is not None and len(kept.classes) == 2 and response.ndim == 1
        if binary and set(kwargs) <= {"pos_label", "average"} and "pos_label" in kwargs:
            return _average_precision(truth == kwargs["pos_label"], response)
        return None
    if function is log_loss and set(kwargs) == {"labels"}:
        return _log_loss(truth, response, np.asarray(kwargs["labels"]))
    if kwargs or response.ndim != 1:
        return None
    if function is accuracy_score:
        return _mean_of_rows((truth == response).astype(np.float64))
    if function not in _REGRESSION_FUNCTIONS:
        return None
    actual, predicted = truth.astype(np.float64), response.astype(np.float64)
    if function is r2_score:
        return _r2(actual, predicted)
    if function is mean_absolute_error:
        return _mean_of_rows(np.abs(actual - predicted))
    squares = (actual - predicted) ** 2
    return _mean_of_rows(squares, np.sqrt if function is root_mean_squared_error else None)


def _roc_auc_of(kept: Predictions, kwargs: Mapping[str, Any]) -> _Vectorised | None:
    """Binary AUC, and one-vs-rest AUC (macro or support-weighted mean of each class's AUC
    against the others, as scikit-learn computes it for ``labels``)."""
    truth, response, classes = kept.truth, kept.response, kept.classes
    if classes is None or kwargs.get("max_fpr") is not None:
        return None
    if not set(kwargs) <= _ROC_AUC_ARGUMENTS or not np.isin(truth, classes).all():
        return None
    if len(classes) == 2 and response.ndim == 1:
        return _roc_auc(truth == np.sort(classes)[1], response)  # the larger label positive
    average = kwargs.get("average", "macro")
    labels = kwargs.get("labels")
    if kwargs.get("multi_class") != "ovr" or average not in ("macro", "weighted") or labels is None:
        return None
    if response.ndim != 2 or response.shape[1] != len(labels):
        return None
    members = [truth == label for label in labels]
    per_class = [_roc_auc(member, response[:, k]) for k, member in enumerate(members)]

    def evaluate(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        each = np.column_stack([auc(counts)[0] for auc in per_class])  # NaN: class absent
        if average == "macro":
            return each.mean(axis=1), np.zeros(len(counts), dtype=bool)
        support = np.column_stack([counts @ member for member in members])
        return (each * support).sum(axis=1) / support.sum(axis=1), np.zeros(len(counts), bool)

    return evaluate


def _sums(counts: np.ndarray, terms: np.ndarray) -> np.ndarray:
    """Each resample's sum of the per-row ``terms``, a row counted as often as it is drawn.

    A numpy loop on one thread rather than ``counts @ terms``, which casts every count to a
    float first and hands the product to BLAS's threads: on cores busy with other work (a
    worker running several tasks) those were measured ten times slower than this loop.
    """
    return np.einsum("ij,j->i", counts, terms)


def _mean_of_rows(
    terms: np.ndarray, then: Callable[[np.ndarray], np.ndarray] | None = None
) -> _Vectorised:
    """A metric that is the mean of per-row ``terms`` (then ``then`` of it)."""

    def evaluate(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        means = _sums(counts, terms) / counts.sum(axis=1)
        return (means if then is None else then(means)), np.zeros(len(counts), dtype=bool)

    return evaluate


def _log_loss(truth: np.ndarray, response: np.ndarray, labels: np.ndarray) -> _Vectorised | None:
    """log_loss's per-row terms: minus the log of the probability of the true class, clipped
    to [eps, 1 - eps] as scikit-learn clips it; columns in sorted label order."""
    ordered = np.unique(labels)
    proba = response if response.dtype in (np.float32, np.float64) else response.astype(float)
    if proba.ndim == 1:
        proba = np.column_stack([1 - proba, proba])
    if proba.ndim != 2 or proba.shape[1] != len(ordered) or not np.isin(truth, ordered).all():
        return None
    eps = np.finfo(proba.dtype).eps
    true = proba[np.arange(len(truth)), np.searchsorted(ordered, truth)]
    return _mean_of_rows(-np.log(np.clip(true, eps, 1 - eps)).astype(np.float64))


def _r2(truth: np.ndarray, response: np.ndarray) -> _Vectorised:
    """r2 = 1 - residual / total sum of squares. Resamples whose truth is (nearly) constant,
    where scikit-learn's value hangs on rounding and its 1.0-or-0.0 rule, are left to it."""
    residual = (truth - response) ** 2
    centred = truth - truth.mean()
    squares = centred**2

    def evaluate(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rows = counts.sum(axis=1)
        spread = _sums(counts, squares)
        total = spread - _sums(counts, centred) ** 2 / rows
        near_constant = ~(total > 1e-9 * spread)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = 1 - _sums(counts, residual) / total
        return np.where(near_constant, np.nan, values), near_constant

    return evaluate


def _average_precision(positive: np.ndarray, scores: np.ndarray) -> _Vectorised:
    """Binary average precision: over the distinct scores, highest first, the precision at
    each weighted by the share of positives it newly recalls.

    Rows sorted by score once; each class's cumulative counts run over its own rows, read at
    the last row of each distinct score.
    """
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    ends = np.r_[np.flatnonzero(ranked[1:] != ranked[:-1]), len(ranked) - 1]
    is_positive = positive[order]
    positives, negatives = order[is_positive], order[~is_positive]
    # how many rows of each class come at or before each distinct score's last row
    positives_up_to = np.searchsorted(np.flatnonzero(is_positive), ends, side="right")
    negatives_up_to = np.searchsorted(np.flatnonzero(~is_positive), ends, side="right")

    def evaluate(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        kind = _count_type(counts)
        hits = np.take(_cumulative(np.take(counts, positives, axis=1), kind), positives_up_to, 1)
        misses = np.take(_cumulative(np.take(counts, negatives, axis=1), kind), negatives_up_to, 1)
        recalled = hits.copy()
        np.subtract(hits[:, 1:], hits[:, :-1], out=recalled[:, 1:])
        # no rows up to a score: none recalled there, its precision (0/0) weighs nothing
        precision = hits / np.maximum(hits + misses, 1)
        with np.errstate(divide="ignore", invalid="ignore"):
            values = (recalled * precision).sum(axis=1) / hits[:, -1]
        defined = (hits[:, -1] > 0) & (misses[:, -1] > 0)  # every class drawn
        return np.where(defined, np.maximum(values, 0.0), np.nan), np.zeros(len(counts), bool)

    return evaluate


def _count_type(counts: np.ndarray) -> type[np.signedinteger[Any]]:
    """The integer type that holds running totals of ``counts`` along a resample: int32 (half
    the memory traffic of int64) unless a resample draws more rows than it holds."""
    most = counts.sum(axis=1, dtype=np.int64).max(initial=0)
    return np.int32 if most <= np.iinfo(np.int32).max else np.int64


def _cumulative(counts: np.ndarray, kind: type[np.signedinteger[Any]] = np.int64) -> np.ndarray:
    """Running totals along each resample, after a leading 0: column k sums the first k."""
    totals = np.zeros((len(counts), counts.shape[1] + 1), dtype=kind)
    np.cumsum(counts, axis=1, dtype=kind, out=totals[:, 1:])
    return totals


def _roc_auc(positive: np.ndarray, scores: np.ndarray) -> _Vectorised:
    """Binary ROC AUC as the Mann-Whitney statistic of each resample: the share of (positive,
    negative) pairs ranked right, ties counting half; counted exactly in integers, divided once.

    Each class's rows are sorted by score once, and for each row of the smaller class, where
    its score falls among the larger class's (below it, and tied with it) is found once. Per
    resample: one gather puts the counts in that order, running totals over the larger class
    are read at those places for each row of the smaller class, weighted by its count and
    summed, in time linear in the rows.
    """
    positives_larger = positive.sum() >= (~positive).sum()
    larger = np.flatnonzero(positive if positives_larger else ~positive)
    smaller = np.flatnonzero(~positive if positives_larger else positive)
    larger = larger[np.argsort(scores[larger], kind="stable")]
    smaller = smaller[np.argsort(scores[smaller], kind="stable")]
    order = np.concatenate([smaller, larger])  # both gathered at once
    split = len(smaller)
    ranked = scores[larger]
    below = np.searchsorted(ranked, scores[smaller], side="left")
    up_to = np.searchsorted(ranked, scores[smaller], side="right")
    tied = bool((below != up_to).any())

    def evaluate(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ordered = np.take(counts, order, axis=1)
        weights = ordered[:, :split]
        cumulative = _cumulative(ordered[:, split:], _count_type(counts))

        def pairs_below(at: np.ndarray) -> np.ndarray:
            """Per resample: the (smaller, larger) pairs whose larger-class row is among the
            first ``at[j]`` sorted ones for smaller-class row j, counted with both counts."""
            seen = np.take(cumulative, at, axis=1)
            return np.einsum("ij,ij->i", weights, seen, dtype=np.int64, casting="same_kind")

        strictly = pairs_below(below)
        twice = strictly + pairs_below(up_to) if tied else 2 * strictly  # ties count half
        pairs = weights.sum(axis=1, dtype=np.int64) * cumulative[:, -1].astype(np.int64)
        # twice the pairs ranked right: the positive row above, ties counting half
        right = 2 * pairs - twice if positives_larger else twice
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(pairs > 0, right / (2 * pairs), np.nan)
        return values, np.zeros(len(counts), dtype=bool)

    return evaluate
