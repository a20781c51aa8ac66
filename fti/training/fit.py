"""Fit an estimator on a training set."""

from __future__ import annotations

from typing import Any

import pandas as pd

from fti.errors import FtiError


def fit(estimator: Any, task: str, train: pd.DataFrame, features: list[str], label: str) -> Any:
    """Fit ``estimator`` on ``train``; a classifier needs at least two classes to learn from."""
    if task != "regression" and train[label].nunique() < 2:
        raise FtiError(
            f"the training set's label {label!r} has one class only ({len(train)} rows); "
            "widen the training window or check the label definition"
        )
    return estimator.fit(train[features], train[label])
