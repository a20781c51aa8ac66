"""Fit an estimator and score it on a holdout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import log_loss, roc_auc_score

from fti.errors import FtiError

HIGHER_IS_BETTER = {"roc_auc": True, "log_loss": False}


def fit(estimator: Any, train: pd.DataFrame, features: list[str], label: str) -> Any:
    if train[label].nunique() < 2:
        raise FtiError(
            f"the training set's label {label!r} has one class only ({len(train)} rows); "
            "widen the training window or check the label definition"
        )
    return estimator.fit(train[features], train[label])


def evaluate(
    model: Any, holdout: pd.DataFrame, features: list[str], label: str
) -> dict[str, float]:
    """Holdout metrics; roc_auc is NaN-free only when both classes are present."""
    probability = model.predict_proba(holdout[features])[:, 1]
    truth = holdout[label].to_numpy()
    metrics = {
        "log_loss": float(log_loss(truth, probability, labels=[0, 1])),
        "positive_rate": float(np.mean(truth)),
        "rows": float(len(holdout)),
    }
    if len(np.unique(truth)) == 2:
        metrics["roc_auc"] = float(roc_auc_score(truth, probability))
    return metrics


def is_better(metric: str, candidate: float, champion: float, margin: float) -> bool:
    if metric not in HIGHER_IS_BETTER:
        raise FtiError(
            f"unknown promotion metric {metric!r}; use one of {sorted(HIGHER_IS_BETTER)}"
        )
    if HIGHER_IS_BETTER[metric]:
        return candidate > champion + margin
    return candidate < champion - margin
