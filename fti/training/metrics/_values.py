"""A metric's value: of a fitted model on rows (``score``, ``holdout_metrics``), or of a model's
response kept once (``Predictions``); None where the metric is not defined on the rows."""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from fti.errors import ConfigError, DefinitionError
from fti.training.metrics._names import (
    _Metric,
    _metric,
    _parameters,
    higher_is_better,
    metric_problem,
)

# Reported by ``holdout_metrics`` next to the model's own metric (plus the rows and a label
# summary: positive_rate for binary models, label_mean for regression ones).
STANDARD_METRICS = {
    "binary": ("roc_auc", "log_loss", "brier_score_loss"),
    "multiclass": ("accuracy", "log_loss", "f1_macro"),
    "regression": ("root_mean_squared_error", "mean_absolute_error", "r2"),
}

# Ranking and skill metrics undefined unless every class of the model occurs in the rows
# (scikit-learn returns NaN, a misleading 0.0 for average_precision, or a huge negative d2).
_NEEDS_EVERY_CLASS = frozenset(
    {"roc_auc_score", "average_precision_score", "d2_log_loss_score", "d2_brier_score"}
)

# Regression scores of the spread of the labels: undefined (NaN) on fewer than two rows.
_NEEDS_TWO_ROWS = frozenset(
    {
        "r2_score",
        "explained_variance_score",
        "d2_absolute_error_score",
        "d2_pinball_score",
        "d2_tweedie_score",
    }
)


# ---- public API ---------------------------------------------------------------------------------
def score(name: str, model: Any, X: pd.DataFrame, y: npt.ArrayLike) -> float | None:
    """Metric ``name`` of fitted ``model`` on (X, y): loss names positive, scorer names as
    scikit-learn returns them; None when the metric is not defined on these rows.

    Raises ConfigError for an unknown name or a model lacking the response the metric needs
    (e.g. ``log_loss`` of a regressor); errors of the model itself (wrong columns) propagate.
    """
    return _score(_metric(name), model, X, np.asarray(y), {})


@dataclass(frozen=True)
class Predictions:
    """A model's response on a holdout, computed once: what metric ``name`` scores of it.

    The metric of any subset or resample of the rows follows from these arrays alone, so a
    bootstrap predicts once, not once per resample (models predict each row on its own).
    """

    name: str
    truth: np.ndarray
    response: np.ndarray  # predict, predict_proba or decision_function, as ``score`` picks it
    kwargs: Mapping[str, Any]  # the scorer's arguments and the model's class arguments
    classes: np.ndarray | None  # the model's classes_ (None for a regressor)


def predictions(name: str, model: Any, X: pd.DataFrame, y: npt.ArrayLike) -> Predictions:
    """``model``'s response on (X, y) that metric ``name`` scores, for ``score_predictions``
    and ``resampled_values``. Raises ConfigError as ``score`` does."""
    metric = _metric(name)
    truth = np.asarray(y)
    found = getattr(model, "classes_", None)
    classes = None if found is None else np.asarray(found)
    if len(truth) == 0:  # nothing to predict; every value is None
        return Predictions(name, truth, np.empty(0), {}, classes)
    response, extra = _prediction(metric, model, X, {})
    return Predictions(name, truth, np.asarray(response), {**metric.kwargs, **extra}, classes)


def score_predictions(kept: Predictions) -> float | None:
    """The metric on all rows of ``kept``: what ``score`` returns for the same model and rows."""
    if len(kept.truth) == 0:
        return None
    return _value(_metric(kept.name), kept.truth, kept.response, kept.kwargs, kept.classes)


def holdout_metrics(
    task: str, metric: str, model: Any, X: pd.DataFrame, y: npt.ArrayLike
) -> dict[str, float]:
    """The model's own ``metric`` and the standard ones of ``task`` on a holdout, as floats.

    binary: roc_auc, log_loss, brier_score_loss, positive_rate (share of rows labelled with the
    model's positive class, ``classes_[1]``); multiclass: accuracy, log_loss, f1_macro;
    regression: root_mean_squared_error, mean_absolute_error, r2, label_mean; all: rows.
    Metrics not defined on these rows are left out. Raises DefinitionError (a ConfigError) when
    ``metric`` does not fit ``task``.
    """
    problem = metric_problem(metric, task)
    if problem is not None:
        raise DefinitionError(problem)
    truth = np.asarray(y)
    responses: dict[str, Any] = {}  # each response computed once for all metrics
    found: dict[str, float] = {}
    for name in (metric, *STANDARD_METRICS[task]):
        if name not in found:
            value = _score(_metric(name), model, X, truth, responses)
            if value is not None:
                found[name] = value
    if len(truth) and task == "binary":
        found["positive_rate"] = float(np.mean(truth == model.classes_[1]))
    if len(truth) and task == "regression":
        found["label_mean"] = float(np.mean(truth.astype(float)))
    found["rows"] = float(len(truth))
    return found


def is_better(name: str, candidate: float, champion: float, margin: float) -> bool:
    """True when ``candidate`` beats ``champion`` by more than ``margin`` (>= 0, in the
    metric's units) in the metric's direction. NaN on either side is never better."""
    if not margin >= 0:
        raise ConfigError(f"the promotion margin must be 0 or more, not {margin!r}")
    if higher_is_better(name):
        return candidate > champion + margin
    return candidate < champion - margin


def undefined_reason(name: str, truth: npt.ArrayLike, classes: npt.ArrayLike | None) -> str:
    """Why metric ``name`` has no value (``score`` returned None) on rows labelled ``truth``
    (``classes``: the model's classes, None for a regressor), as a short phrase:
    ``not enough rows (n = 1 < 2)`` where more rows could make it defined, else what the rows
    lack (a class of the model, a target in the metric's domain)."""
    truth = np.asarray(truth)
    n = len(truth)
    if n == 0:
        return "no rows (no scored entity has a label)"
    function_name = getattr(_metric(name).function, "__name__", "")
    if function_name in _NEEDS_EVERY_CLASS and classes is not None:
        every = np.asarray(classes)
        if n < len(every):
            return f"not enough rows (n = {n} < {len(every)}: {name} needs every class)"
        missing = [str(c) for c in every if not np.isin(c, truth)]
        return f"the labels lack class {', '.join(missing)} ({name} needs every class)"
    if function_name in _NEEDS_TWO_ROWS and n < 2:
        return f"not enough rows (n = {n} < 2)"
    return f"{name} is not defined on these {n} rows"


# ---- computing ----------------------------------------------------------------------------------
def _score(
    metric: _Metric, model: Any, X: pd.DataFrame, truth: np.ndarray, responses: dict[str, Any]
) -> float | None:
    if len(truth) == 0:
        return None
    prediction, extra = _prediction(metric, model, X, responses)
    classes = getattr(model, "classes_", None)
    return _value(metric, truth, prediction, {**metric.kwargs, **extra}, classes)


def _value(
    metric: _Metric,
    truth: np.ndarray,
    prediction: Any,
    kwargs: Mapping[str, Any],
    classes: Any,
    warn: bool = True,
) -> float | None:
    """The metric of these predictions, in ``score``'s units; None when not defined."""
    function_name = getattr(metric.function, "__name__", "")
    if function_name in _NEEDS_EVERY_CLASS and not np.isin(classes, truth).all():
        return None
    computed = _compute(metric.function, truth, prediction, kwargs, warn)
    if computed is None:
        return None
    return computed if metric.loss else metric.sign * computed


def _respond(model: Any, X: pd.DataFrame, method: str, responses: dict[str, Any]) -> Any:
    if method not in responses:
        responses[method] = getattr(model, method)(X)
    return responses[method]


def _prediction(
    metric: _Metric, model: Any, X: pd.DataFrame, responses: dict[str, Any]
) -> tuple[Any, dict[str, Any]]:
    """The model's response the metric scores, and the class arguments it needs."""
    parameters = _parameters(metric.function)
    classes: Any = getattr(model, "classes_", None)
    two_classes = classes is not None and len(classes) == 2
    extra: dict[str, Any] = {}
    if two_classes and "pos_label" in parameters and "pos_label" not in metric.kwargs:
        extra["pos_label"] = classes[1]
    if metric.response == ("predict",):
        return _respond(model, X, "predict", responses), extra

    # the first method the model has, as scikit-learn picks it
    method = next((m for m in metric.response if hasattr(model, m)), None)
    if classes is None or method is None:
        raise ConfigError(
            f"metric {metric.name!r} needs a classifier with {' or '.join(metric.response)}; "
            f"{type(model).__name__} has none"
        )
    response = np.asarray(_respond(model, X, method, responses))
    if "labels" in parameters:
        extra["labels"] = list(classes)
    positive = metric.kwargs.get("pos_label")
    positive = classes[1] if positive is None else positive
    if two_classes and response.ndim == 2:
        response = response[:, list(classes).index(positive)]
    elif two_classes and positive != classes[1]:  # decision_function scores classes_[1]
        response = -response
    return response, extra


def _compute(
    function: Any,
    truth: np.ndarray,
    prediction: Any,
    kwargs: Mapping[str, Any],
    warn: bool = True,
) -> float | None:
    """``function``'s finite value, None when undefined on these rows (its warnings dropped);
    ``warn=False`` drops the warnings of a defined value too (a bootstrap's resamples)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(function(truth, prediction, **kwargs))
        except ValueError:  # the rows do not fit the metric: one class, a foreign label, y <= 0
            return None
    if not math.isfinite(value):
        return None
    for warning in caught if warn else ():
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return value
