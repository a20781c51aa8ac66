"""Metric names: the scikit-learn scorer or loss function a name stands for, its direction,
the tasks it fits (and why not the others), and the one-line messages for a name that does
not fit or is unknown (the rules are listed in ``fti.training.metrics``)."""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from sklearn.metrics import get_scorer, get_scorer_names

from fti.errors import ConfigError

TASKS = ("binary", "multiclass", "regression")

# Suggested in messages; each fits its task (the tests check it).
SUGGESTIONS = {
    "binary": "a classification scorer such as roc_auc, average_precision, log_loss, accuracy",
    "multiclass": "a multiclass scorer such as roc_auc_ovr, log_loss, accuracy, f1_macro",
    "regression": "a regression metric such as root_mean_squared_error, mean_absolute_error, r2",
}

# Likelihood ratios are defined for two classes only; their functions (in sklearn's private
# _scorer module) say so in no argument.
_TWO_CLASS_FUNCTIONS = frozenset(
    {"class_likelihood_ratios", "positive_likelihood_ratio", "negative_likelihood_ratio"}
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
