"""One slice's realized metrics: its stored scores joined on the entity with the day's labels
and scored by ``fti.training.metrics`` exactly as the holdout was, through a stand-in model
that answers with the stored scores; plus calibration for classifiers (Brier score,
reliability curve) and the error distribution for regressors."""

from __future__ import annotations

import json
from dataclasses import dataclass
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
    ``metrics``, ``brier_score``, ``reliability`` and ``error_distribution``.
    """
    joined = scores.merge(labels, on="entity_id", how="inner")
    response = "value" if task == "regression" else "probability"
    if task == "multiclass":
        response = "class_probabilities"
    joined = joined[joined[response].notna() & joined[LABEL].notna()].reset_index(drop=True)
    truth = joined[LABEL].to_numpy()
    rows = pd.DataFrame(index=joined.index)  # the stand-in answers for every row at once
    if task == "regression":
        predicted = joined["value"].to_numpy(dtype="float64")
        found = metrics.holdout_metrics(task, metric, _Stored(predicted), rows, truth)
        return _result(metric, len(joined), found) | {
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
    return _result(metric, len(joined), found) | {
        "brier_score": brier,
        "reliability": reliability(confidence, hits),
    }


def _result(metric: str, rows: int, found: dict[str, float]) -> dict[str, Any]:
    return {
        "rows": rows,
        "metric": metric,
        "value": found.get(metric),
        "metrics": {k: v for k, v in found.items() if k != "rows"},
        "brier_score": None,
        "reliability": None,
        "error_distribution": None,
    }


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
