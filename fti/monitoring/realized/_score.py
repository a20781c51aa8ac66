"""One slice's realized metrics: its stored scores joined on the entity with the day's labels
and scored by ``fti.training.metrics`` exactly as the holdout was, through a stand-in model
that answers with the stored scores; plus calibration for classifiers (Brier score,
reliability curve) and the error distribution for regressors. ``Pool``: the metric over the
rows of several slices (a window of dates), computed from the rows, never from the slices'
values."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from fti.definitions import LABEL
from fti.training import metrics

RELIABILITY_BINS = 10  # equal-width bins of the predicted probability, as calibration_curve's
ERROR_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)


# ---- one model and date -------------------------------------------------------------------------
def realized(
    task: str,
    metric: str,
    scores: pd.DataFrame,
    labels: pd.DataFrame,
    estimator: Any = None,
) -> dict[str, Any]:
    """The realized metrics of one slice: ``scores`` (the predictions table's columns, one row
    per entity) joined on ``entity_id`` with ``labels`` (entity_id, label).

    ``estimator``: the fitted classifier (its ``classes_`` say which class the stored 0/1 or
    class names mean); None for a regressor. Returns ``rows``, ``metric``, ``value``,
    ``metrics``, ``brier_score``, ``reliability`` and ``error_distribution``; where ``value``
    is None (the metric is not defined on these rows), ``metrics["reason"]`` says why
    (``metrics.undefined_reason``: e.g. "not enough rows (n = 1 < 2: roc_auc needs every
    class)").
    """
    joined = joined_rows(task, scores, labels)
    truth = joined[LABEL].to_numpy()
    rows = pd.DataFrame(index=joined.index)  # the stand-in answers for every row at once
    if task == "regression":
        predicted = joined["value"].to_numpy(dtype="float64")
        found = metrics.holdout_metrics(task, metric, _Stored(predicted), rows, truth)
        return _result(metric, truth, None, found) | {
            "error_distribution": error_distribution(predicted - truth.astype(float))
        }
    classes = np.asarray(estimator.classes_)
    stand_in = _stored_classifier(task, classes, joined)
    truth = _as_classes(truth, classes)
    found = metrics.holdout_metrics(task, metric, stand_in, rows, truth) if len(joined) else {}
    if task == "binary":
        brier = found.get("brier_score_loss")
        hits = truth == classes[1]
        confidence = stand_in.probabilities[:, 1]
    else:
        brier = metrics.score("brier_score_loss", stand_in, rows, truth) if len(joined) else None
        hits = stand_in.predicted == truth
        confidence = stand_in.probabilities.max(axis=1, initial=0.0)
    return _result(metric, truth, classes, found) | {
        "brier_score": brier,
        "reliability": reliability(confidence, hits),
    }


def joined_rows(task: str, scores: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``scores`` joined on ``entity_id`` with ``labels``: the rows with both a response (the
    task's score column) and a label."""
    joined = scores.merge(labels, on="entity_id", how="inner")
    response = RESPONSE[task]
    return joined[joined[response].notna() & joined[LABEL].notna()].reset_index(drop=True)


RESPONSE = {"binary": "probability", "multiclass": "class_probabilities", "regression": "value"}


def _result(
    metric: str, truth: np.ndarray, classes: np.ndarray | None, found: dict[str, float]
) -> dict[str, Any]:
    value = found.get(metric)
    reason = None if value is not None else metrics.undefined_reason(metric, truth, classes)
    return {
        "rows": len(truth),
        "metric": metric,
        "value": value,
        "metrics": {k: v for k, v in found.items() if k != "rows"}
        | ({"reason": reason} if reason else {}),
        "brier_score": None,
        "reliability": None,
        "error_distribution": None,
    }


# ---- several dates, pooled ----------------------------------------------------------------------
class Pool:
    """The rows of several slices of one model version, each joined with its labels, pooled:
    ``value`` is the metric over all their rows (as ``realized`` would compute it on one slice
    holding them all), not an average of the slices' values.

    Memory: a regressor judged by (root) mean squared error, mean absolute error or r2 keeps
    sums only (``_Sums``); any other metric keeps, per row, the label and the score columns
    it needs (a float and a byte for a binary model, the class probabilities for a multiclass
    one), never the entity ids or the slices' other columns.
    """

    def __init__(self, task: str, metric: str, classes: np.ndarray | None = None) -> None:
        self.task, self.metric = task, metric
        self.classes = None if classes is None else np.asarray(classes)
        self.rows = 0  # joined rows added
        self.dates = 0  # slices that added rows
        self.gone: list[date] = []  # dates recorded whose scores another version's replaced
        self._sums = _Sums() if task == "regression" and metric in _SUMMED else None
        self._parts: list[tuple[np.ndarray, ...]] = []

    def add(self, scores: pd.DataFrame, labels: pd.DataFrame) -> int:
        """Add one slice: ``scores`` and ``labels`` as ``realized`` takes them; returns the rows
        joined."""
        joined = joined_rows(self.task, scores, labels)
        if joined.empty:
            return 0
        self.rows += len(joined)
        self.dates += 1
        truth = joined[LABEL].to_numpy()
        if self.task == "regression":
            predicted = joined["value"].to_numpy(dtype="float64")
            if self._sums is not None:
                self._sums.add(truth.astype("float64"), predicted)
            else:
                self._parts.append((truth.astype("float64"), predicted))
            return len(joined)
        assert self.classes is not None, "a classifier's pool needs its classes"
        stand_in = _stored_classifier(self.task, self.classes, joined)
        truth = _as_classes(truth, self.classes)
        if self.task == "binary":  # the positive probability and the stored 0/1 suffice
            index = joined["prediction"].fillna(0).to_numpy(dtype="int8")  # indexes classes_
            self._parts.append((truth, stand_in.probabilities[:, 1].copy(), index))
        else:
            self._parts.append((truth, stand_in.probabilities))
        return len(joined)

    def value(self) -> tuple[float | None, str | None]:
        """The metric over every row added, and None; or None and why it is not defined."""
        if not self.rows and self.gone:
            return None, (
                f"no rows: the scores of {', '.join(map(str, self.gone))} were replaced since "
                "(the dates were scored again by another version)"
            )
        if self._sums is not None and self.rows:
            found = self._sums.value(self.metric)
            reason = None if found is not None else f"not enough rows (n = {self.rows} < 2)"
            return found, reason
        truth = _concatenated([p[0] for p in self._parts], self.task)
        rows = pd.DataFrame(index=pd.RangeIndex(len(truth)))
        if not len(truth):
            return None, metrics.undefined_reason(self.metric, truth, self.classes)
        model: Any
        if self.task == "regression":
            model = _Stored(np.concatenate([p[1] for p in self._parts]))
        elif self.task == "binary":
            assert self.classes is not None
            positive = np.concatenate([p[1] for p in self._parts])
            index = np.concatenate([p[2] for p in self._parts])
            probabilities = np.column_stack([1.0 - positive, positive])
            model = _StoredClassifier(self.classes[index], probabilities, self.classes)
        else:
            assert self.classes is not None
            matrix = np.concatenate([p[1] for p in self._parts])
            model = _StoredClassifier(self.classes[matrix.argmax(axis=1)], matrix, self.classes)
        found = metrics.score(self.metric, model, rows, truth)
        if found is not None:
            return found, None
        return None, metrics.undefined_reason(self.metric, truth, self.classes)


def _concatenated(parts: list[np.ndarray], task: str) -> np.ndarray:
    if parts:
        return np.concatenate(parts)
    return np.empty(0, dtype="float64" if task == "regression" else object)


# Regression metrics that follow from sums over the rows: name -> (statistic, sign).
_SUMMED = {
    "mean_squared_error": ("mse", 1),
    "neg_mean_squared_error": ("mse", -1),
    "root_mean_squared_error": ("rmse", 1),
    "neg_root_mean_squared_error": ("rmse", -1),
    "mean_absolute_error": ("mae", 1),
    "neg_mean_absolute_error": ("mae", -1),
    "r2": ("r2", 1),
}


@dataclass
class _Sums:
    """Sums over a regressor's rows from which its squared and absolute errors and r2 follow:
    the count, the squared and absolute errors' sums, and the labels' mean and sum of squared
    deviations (merged slice by slice as Chan et al.'s parallel variance, so no cancellation)."""

    rows: int = 0
    squared: float = 0.0
    absolute: float = 0.0
    mean: float = 0.0
    spread: float = 0.0  # sum of (label - mean)^2

    def add(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        errors = predicted - truth
        self.squared += float(np.dot(errors, errors))
        self.absolute += float(np.abs(errors).sum())
        n, mean = len(truth), float(truth.mean())
        spread = float(((truth - mean) ** 2).sum())
        total = self.rows + n
        delta = mean - self.mean
        self.spread += spread + delta * delta * self.rows * n / total
        self.mean += delta * n / total
        self.rows = total

    def value(self, metric: str) -> float | None:
        statistic, sign = _SUMMED[metric]
        if statistic == "mse":
            return sign * self.squared / self.rows
        if statistic == "rmse":
            return sign * math.sqrt(self.squared / self.rows)
        if statistic == "mae":
            return sign * self.absolute / self.rows
        if self.rows < 2:  # r2_score: undefined on one row
            return None
        if self.spread == 0.0:  # constant labels: scikit-learn's force_finite values
            return 1.0 if self.squared == 0.0 else 0.0
        return 1.0 - self.squared / self.spread


def reliability(confidence: np.ndarray, hits: np.ndarray) -> list[dict[str, Any]]:
    """Reliability curve: ``RELIABILITY_BINS`` equal-width bins of the predicted probability
    (binned as ``sklearn.calibration.calibration_curve`` bins), each with its rows, mean
    predicted probability and observed rate (None in an empty bin)."""
    edges = np.linspace(0.0, 1.0, RELIABILITY_BINS + 1)
    binned = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(binned, minlength=RELIABILITY_BINS)
    predicted = np.bincount(binned, weights=confidence, minlength=RELIABILITY_BINS)
    observed = np.bincount(binned, weights=hits.astype(float), minlength=RELIABILITY_BINS)
    return [
        {
            "lower": round(float(edges[i]), 6),
            "upper": round(float(edges[i + 1]), 6),
            "rows": int(counts[i]),
            "mean_predicted": float(predicted[i] / counts[i]) if counts[i] else None,
            "observed_rate": float(observed[i] / counts[i]) if counts[i] else None,
        }
        for i in range(RELIABILITY_BINS)
    ]


def error_distribution(errors: np.ndarray) -> dict[str, Any]:
    """Prediction minus label: quantiles (``ERROR_QUANTILES``), mean and mean absolute."""
    if len(errors) == 0:
        return {"quantiles": {}, "mean": None, "mean_absolute": None}
    values = np.quantile(errors, ERROR_QUANTILES)
    return {
        "quantiles": {str(q): float(v) for q, v in zip(ERROR_QUANTILES, values, strict=True)},
        "mean": float(np.mean(errors)),
        "mean_absolute": float(np.mean(np.abs(errors))),
    }


# ---- the stored scores as a model ---------------------------------------------------------------
@dataclass(frozen=True)
class _Stored:
    """Answers ``predict`` with stored scores, row for row, so that ``fti.training.metrics``
    scores them as it scores a fitted regressor on its holdout."""

    predicted: np.ndarray

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predicted


@dataclass(frozen=True)
class _StoredClassifier:
    """A classifier's stored scores: ``predict``, ``predict_proba`` and ``classes_`` (no
    ``decision_function``: ranking metrics score the probabilities)."""

    predicted: np.ndarray
    probabilities: np.ndarray
    classes_: np.ndarray

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.predicted

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.probabilities


def _stored_classifier(task: str, classes: np.ndarray, joined: pd.DataFrame) -> _StoredClassifier:
    if task == "binary":  # prediction 0/1 indexes classes_, probability is of classes_[1]
        positive = joined["probability"].to_numpy(dtype="float64")
        index = joined["prediction"].fillna(0).to_numpy(dtype="int64")
        probabilities = np.column_stack([1.0 - positive, positive])
        return _StoredClassifier(classes[index], probabilities, classes)
    names = [str(c) for c in classes]  # class_probabilities' keys are str(class)
    matrix = np.array(
        [[_probability(cell, name) for name in names] for cell in joined["class_probabilities"]],
        dtype="float64",
    ).reshape(len(joined), len(names))
    predicted = classes[matrix.argmax(axis=1)] if len(joined) else classes[:0]
    return _StoredClassifier(predicted, matrix, classes)


def _probability(cell: Any, name: str) -> float:
    found = json.loads(cell) if isinstance(cell, str) else cell
    value = found.get(name)
    return float("nan") if value is None else float(value)


def _as_classes(truth: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Labels in the type of the model's classes (training casts 0/1 and integer labels)."""
    if classes.dtype.kind in "iub" and truth.dtype.kind in "iubf":
        return truth.astype(classes.dtype)
    if classes.dtype.kind in "OUS":
        return np.asarray([str(v) for v in truth], dtype=object).astype(classes.dtype)
    return truth
