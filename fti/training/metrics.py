"""The metric a model is judged by: which names fit which task, their direction, their value.

A model's ``metric`` is one of two kinds of name:

* **A scikit-learn scorer name**, any of ``sklearn.metrics.get_scorer_names()`` (``roc_auc``,
  ``average_precision``, ``accuracy``, ``f1_macro``, ``neg_log_loss``, ``r2``, ...). Its value
  is what scikit-learn's scorer returns, and like every scikit-learn scorer, *higher is better*:
  scikit-learn negates losses (the ``neg_*`` scorers), so ``neg_log_loss`` is -0.3, not 0.3.
* **A loss name**: the name of the scikit-learn function behind a ``neg_*`` scorer, ``log_loss``
  (``neg_log_loss``), ``brier_score_loss`` (``neg_brier_score``), ``mean_squared_error``,
  ``root_mean_squared_error``, ``mean_absolute_error``, ``median_absolute_error``,
  ``mean_absolute_percentage_error``, ``max_error`` (``neg_max_error``) and the others of
  ``LOSS_NAMES``. Its value is the function's own, positive one, and *lower is better*.
  A loss name wins over a scorer of the same spelling: ``max_error`` (a scorer name returning
  negative values in old scikit-learn) always means the positive error, lower is better.

Which task a name fits follows from the scorer's scoring function and arguments:

* regression metrics (``sklearn.metrics._regression``) fit ``regression`` models only;
* classification and ranking metrics fit ``binary`` models, and ``multiclass`` models unless
  they score two classes only: ``average='binary'`` (``f1``, ``precision``, ``recall``,
  ``jaccard``), ``roc_auc`` without ``multi_class`` (use ``roc_auc_ovr``/``roc_auc_ovo``), the
  likelihood ratios. ``average_precision``, ``neg_brier_score`` and ``log_loss`` do score
  several classes. ``top_k_accuracy`` (k=2) is refused for binary models: it is always 1 there;
* clustering metrics (``adjusted_rand_score``, ``v_measure_score``, ...) fit no task: they
  ignore which class a model predicts, so a model that swaps every class scores perfectly;
* the ``*_samples`` scorers fit no task: they need multilabel targets.

``score`` predicts once per response it needs, then computes the metric from the predictions;
when the metric is not defined on these rows (one class only, a class of the model missing
from a ranking metric's rows, a target outside a deviance's domain, no rows) it returns None
instead of raising or returning NaN. Otherwise its value is the scorer's: like scikit-learn,
ranking metrics (``roc_auc``, ``average_precision``, ``top_k_accuracy``) score
``decision_function`` when the model has one, else ``predict_proba``. Unlike scikit-learn's
scorers, probability metrics get the model's own classes (``labels=model.classes_``, and the
positive class ``classes_[1]``), so a holdout lacking a class still has a ``log_loss``.
"""

from __future__ import annotations

import difflib
import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import get_scorer, get_scorer_names

from fti.errors import ConfigError, DefinitionError

TASKS = ("binary", "multiclass", "regression")

# Suggested in messages; each fits its task (the tests check it).
SUGGESTIONS = {
    "binary": "a classification scorer such as roc_auc, average_precision, log_loss, accuracy",
    "multiclass": "a multiclass scorer such as roc_auc_ovr, log_loss, accuracy, f1_macro",
    "regression": "a regression metric such as root_mean_squared_error, mean_absolute_error, r2",
}

# Reported by ``holdout_metrics`` next to the model's own metric (plus the rows and a label
# summary: positive_rate for binary models, label_mean for regression ones).
STANDARD_METRICS = {
    "binary": ("roc_auc", "log_loss", "brier_score_loss"),
    "multiclass": ("accuracy", "log_loss", "f1_macro"),
    "regression": ("root_mean_squared_error", "mean_absolute_error", "r2"),
}

# Likelihood ratios are defined for two classes only; their functions (in sklearn's private
# _scorer module) say so in no argument.
_TWO_CLASS_FUNCTIONS = frozenset(
    {"class_likelihood_ratios", "positive_likelihood_ratio", "negative_likelihood_ratio"}
)
# Ranking and skill metrics undefined unless every class of the model occurs in the rows
# (scikit-learn returns NaN, a misleading 0.0 for average_precision, or a huge negative d2).
_NEEDS_EVERY_CLASS = frozenset(
    {"roc_auc_score", "average_precision_score", "d2_log_loss_score", "d2_brier_score"}
)
_REGRESSION_MODULE = "sklearn.metrics._regression"
_CLASSIFICATION_MODULES = ("sklearn.metrics._classification", "sklearn.metrics._ranking")
_CLUSTERING_MODULE = "sklearn.metrics.cluster"


@dataclass(frozen=True)
class _Metric:
    name: str  # as the definition spells it
    scorer: str  # the scikit-learn scorer computing it
    loss: bool  # a loss name: the positive value, lower is better
    sign: int  # the scorer's sign: -1 when scikit-learn negates the function's value
    function: Callable[..., Any] | None
    kwargs: Mapping[str, Any]
    response: tuple[str, ...]  # the model's methods it scores, in scikit-learn's preference
    refused: Mapping[str, str] = field(default_factory=dict)  # task -> why it does not fit


# ---- public API ---------------------------------------------------------------------------------
def metric_problem(name: str, task: str) -> str | None:
    """None when metric ``name`` can judge a model of ``task``; otherwise a one-line reason."""
    if task not in TASKS:
        return f"unknown task {task!r}: use one of {', '.join(TASKS)}"
    metric = _lookup(name)
    if metric is None:
        return _unknown_message(name)
    reason = metric.refused.get(task)
    if reason is None:
        return None
    alternative = _alternative(name, task)
    instead = f"{alternative}, or {SUGGESTIONS[task]}" if alternative else SUGGESTIONS[task]
    return f"metric {name!r} does not fit a {task} model ({reason}); use {instead}"


def higher_is_better(name: str) -> bool:
    """True for scorer names (scikit-learn's convention), False for loss names."""
    return not _metric(name).loss


def score(name: str, model: Any, X: pd.DataFrame, y: npt.ArrayLike) -> float | None:
    """Metric ``name`` of fitted ``model`` on (X, y): loss names positive, scorer names as
    scikit-learn returns them; None when the metric is not defined on these rows.

    Raises ConfigError for an unknown name or a model lacking the response the metric needs
    (e.g. ``log_loss`` of a regressor); errors of the model itself (wrong columns) propagate.
    """
    return _score(_metric(name), model, X, np.asarray(y), {})


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


# ---- names --------------------------------------------------------------------------------------
@cache
def _scorer_names() -> frozenset[str]:
    return frozenset(get_scorer_names())


@cache
def _losses() -> dict[str, str]:
    """Loss name -> its ``neg_*`` scorer, derived from scikit-learn's scorers."""
    losses: dict[str, str] = {}
    for scorer_name in sorted(_scorer_names()):
        scorer = get_scorer(scorer_name)
        function_name = getattr(getattr(scorer, "_score_func", None), "__name__", None)
        if scorer_name.startswith("neg_") and _sign(scorer, scorer_name) < 0 and function_name:
            losses.setdefault(function_name, scorer_name)
    return losses


def loss_names() -> list[str]:
    """Every loss name accepted (the functions behind scikit-learn's ``neg_*`` scorers)."""
    return sorted(_losses())


def _sign(scorer: Any, scorer_name: str) -> int:
    sign = getattr(scorer, "_sign", None)
    if sign in (1, -1):
        return int(sign)
    return -1 if scorer_name.startswith("neg_") else 1


def _metric(name: str) -> _Metric:
    metric = _lookup(name)
    if metric is None:
        raise ConfigError(_unknown_message(name))
    return metric


def _lookup(name: str) -> _Metric | None:
    return _lookup_name(name) if isinstance(name, str) else None


@cache
def _lookup_name(name: str) -> _Metric | None:
    losses = _losses()
    if name in losses:
        scorer_name, loss = losses[name], True
    elif name in _scorer_names():
        scorer_name, loss = name, False
    else:
        return None
    scorer = get_scorer(scorer_name)
    function = getattr(scorer, "_score_func", None)
    kwargs = dict(getattr(scorer, "_kwargs", None) or {})
    response = _response_methods(getattr(scorer, "_response_method", None))
    metric = _Metric(
        name=name,
        scorer=scorer_name,
        loss=loss,
        sign=_sign(scorer, scorer_name),
        function=function,
        kwargs=kwargs,
        response=response or ("predict",),
    )
    refused = _refusals(metric) if function is not None and response else None
    if refused is None:
        reason = "fti cannot tell which task this scikit-learn scorer fits"
        refused = dict.fromkeys(TASKS, reason)
    return replace(metric, refused=refused)


def _response_methods(method: Any) -> tuple[str, ...] | None:
    """The scorer's response methods; None when fti does not know how to score them."""
    methods = (method,) if isinstance(method, str) else tuple(method or ())
    if methods == ("predict",):
        return methods
    if methods and set(methods) <= {"predict_proba", "decision_function"}:
        return methods
    return None


def _refusals(metric: _Metric) -> dict[str, str] | None:
    """Task -> why ``metric`` does not fit it (absent: fits); None when it cannot be told."""
    function = metric.function
    module = getattr(function, "__module__", "") or ""
    function_name = getattr(function, "__name__", "")
    if module.startswith(_CLUSTERING_MODULE):
        reason = "a clustering metric: it ignores which class a model predicts"
        return dict.fromkeys(TASKS, reason)
    if metric.kwargs.get("average") == "samples":
        return dict.fromkeys(TASKS, "it needs multilabel targets")
    if module == _REGRESSION_MODULE:
        reason = "it is a regression metric"
        return {"binary": reason, "multiclass": reason}
    if module not in _CLASSIFICATION_MODULES and function_name not in _TWO_CLASS_FUNCTIONS:
        return None
    refused = {"regression": "it is a classification metric"}
    if _argument(metric, "average") == "binary":
        refused["multiclass"] = "it scores two classes only, average='binary'"
    elif _argument(metric, "multi_class") == "raise":
        refused["multiclass"] = "it scores two classes only, without multi_class"
    elif function_name in _TWO_CLASS_FUNCTIONS:
        refused["multiclass"] = "likelihood ratios are defined for two classes only"
    k = _argument(metric, "k")
    if function_name == "top_k_accuracy_score" and isinstance(k, int) and k >= 2:
        refused["binary"] = f"top-{k} accuracy of two classes is always 1"
    return refused


def _parameters(function: Any) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(function).parameters
    except (TypeError, ValueError):
        return {}


def _argument(metric: _Metric, parameter: str) -> Any:
    """The value the scorer passes for ``parameter``: its own or the function's default."""
    if parameter in metric.kwargs:
        return metric.kwargs[parameter]
    found = _parameters(metric.function).get(parameter)
    return None if found is None or found.default is inspect.Parameter.empty else found.default


def _alternative(name: str, task: str) -> str | None:
    """A sibling scorer that fits ``task`` (f1 -> f1_macro, roc_auc -> roc_auc_ovr)."""
    for suffix in ("_macro", "_ovr"):
        sibling = _lookup(name + suffix)
        if sibling is not None and task not in sibling.refused:
            return name + suffix
    return None


def _unknown_message(name: object) -> str:
    message = (
        f"unknown metric {name!r}: use a scikit-learn scorer name "
        f"(sklearn.metrics.get_scorer_names()) or one of {', '.join(_losses())}"
    )
    if isinstance(name, str):
        close = difflib.get_close_matches(name, [*_losses(), *_scorer_names()], n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


# ---- computing ----------------------------------------------------------------------------------
def _score(
    metric: _Metric, model: Any, X: pd.DataFrame, truth: np.ndarray, responses: dict[str, Any]
) -> float | None:
    if len(truth) == 0:
        return None
    prediction, extra = _prediction(metric, model, X, responses)
    function_name = getattr(metric.function, "__name__", "")
    if function_name in _NEEDS_EVERY_CLASS and not np.isin(model.classes_, truth).all():
        return None
    value = _compute(metric.function, truth, prediction, {**metric.kwargs, **extra})
    if value is None:
        return None
    return value if metric.loss else metric.sign * value


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
    function: Any, truth: np.ndarray, prediction: Any, kwargs: Mapping[str, Any]
) -> float | None:
    """``function``'s finite value, None when undefined on these rows (its warnings dropped)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(function(truth, prediction, **kwargs))
        except ValueError:  # the rows do not fit the metric: one class, a foreign label, y <= 0
            return None
    if not math.isfinite(value):
        return None
    for warning in caught:
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return value
