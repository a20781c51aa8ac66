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

``predictions`` keeps a model's response on a holdout so that the metric of any resample of its
rows (``resampled_values``, the promotion gate's bootstrap) needs no model: the common metrics
(``roc_auc``, ``roc_auc_ovr``, ``average_precision``, ``accuracy``, ``log_loss``, the squared
and absolute errors, ``r2``) are computed for all resamples at once, the others by scikit-learn on each resample's
rows; either way the value is ``score``'s on those rows. A ``Resampler`` does the work that
depends on the rows alone (sorting the scores, the per-row terms) once, so that each batch of
resamples then costs time linear in the rows.
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
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    get_scorer,
    get_scorer_names,
    log_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
    root_mean_squared_error,
)

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
