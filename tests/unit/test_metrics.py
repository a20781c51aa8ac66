"""fti.training.metrics: which metric names fit which task, their direction and their values."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import get_scorer, get_scorer_names, log_loss

from fti.errors import ConfigError, DefinitionError
from fti.training.metrics import (
    STANDARD_METRICS,
    SUGGESTIONS,
    TASKS,
    higher_is_better,
    holdout_metrics,
    is_better,
    loss_names,
    metric_problem,
    score,
)

ALL_NAMES = sorted({*get_scorer_names(), *loss_names()})
DOCUMENTED_LOSSES = (
    "log_loss",
    "brier_score_loss",
    "mean_squared_error",
    "root_mean_squared_error",
    "mean_absolute_error",
    "median_absolute_error",
    "mean_absolute_percentage_error",
    "max_error",
)


@pytest.fixture(scope="module")
def X() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})


@pytest.fixture(scope="module")
def fitted(X: pd.DataFrame) -> dict[str, tuple[object, pd.Series]]:
    """A fitted model and its labels per task: 0/1 ints, string classes, positive reals."""
    rng = np.random.default_rng(8)
    noise = rng.normal(size=len(X))
    binary = pd.Series((X["a"] + 0.5 * noise > 0).astype(int))
    classes = np.array(["high", "low", "mid"])[np.digitize(X["a"] + 0.3 * noise, [-0.4, 0.4])]
    multiclass = pd.Series(classes, dtype="str")
    regression = pd.Series(10 + X["a"] + 0.1 * noise)  # positive: deviances are defined
    return {
        "binary": (LogisticRegression().fit(X, binary), binary),
        "multiclass": (LogisticRegression().fit(X, multiclass), multiclass),
        "regression": (LinearRegression().fit(X, regression), regression),
    }


def _loss_scorer(loss: str) -> str:
    """The ``neg_*`` scorer negating function ``loss`` (neg_brier_score for brier_score_loss)."""
    return next(
        name
        for name in get_scorer_names()
        if name.startswith("neg_") and get_scorer(name)._score_func.__name__ == loss
    )


def _accepted(task: str) -> list[str]:
    return [name for name in ALL_NAMES if metric_problem(name, task) is None]


# ---- names and directions -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "higher"),
    [
        ("roc_auc", True),
        ("accuracy", True),
        ("r2", True),
        ("neg_log_loss", True),
        ("neg_root_mean_squared_error", True),
        ("log_loss", False),
        ("brier_score_loss", False),
        ("root_mean_squared_error", False),
        ("max_error", False),
    ],
)
def test_direction(name: str, higher: bool) -> None:
    assert higher_is_better(name) is higher


def test_documented_loss_names_are_losses() -> None:
    assert set(DOCUMENTED_LOSSES) <= set(loss_names())
    assert not set(loss_names()) & set(get_scorer_names())  # a loss is never also a scorer


@pytest.mark.parametrize("name", ALL_NAMES)
def test_every_name_is_classified(name: str) -> None:
    """Every scorer and loss name fits some task or is refused for every task with a reason."""
    problems = {task: metric_problem(name, task) for task in TASKS}
    for problem in problems.values():
        assert problem is None or (problem.startswith(f"metric {name!r} does not fit"))
        assert problem is None or "\n" not in problem
    higher_is_better(name)  # a direction for every name, even refused ones


def test_tasks_of_well_known_names() -> None:
    binary, multiclass, regression = (set(_accepted(task)) for task in TASKS)
    assert {"roc_auc", "average_precision", "log_loss", "neg_log_loss", "f1", "accuracy"} <= binary
    assert {"brier_score_loss", "precision", "recall", "jaccard", "matthews_corrcoef"} <= binary
    assert {"roc_auc_ovr", "roc_auc_ovo", "log_loss", "f1_macro", "accuracy"} <= multiclass
    assert {"average_precision", "brier_score_loss", "top_k_accuracy"} <= multiclass
    assert {"roc_auc", "f1", "precision", "recall", "jaccard"}.isdisjoint(multiclass)
    assert {"r2", "root_mean_squared_error", "neg_mean_absolute_error", "max_error"} <= regression
    assert not (binary | multiclass) & regression
    assert "top_k_accuracy" not in binary  # always 1 with two classes
    # clustering and multilabel scorers judge no fti model
    for name in ("adjusted_rand_score", "v_measure_score", "f1_samples", "recall_samples"):
        assert name not in binary | multiclass | regression


@pytest.mark.parametrize("task", TASKS)
def test_accepted_metrics_agree_with_sklearn_scorers(
    task: str, fitted: dict, X: pd.DataFrame
) -> None:
    """Each name a task accepts gives a finite value, scikit-learn's (positive for losses)."""
    model, y = fitted[task]
    for name in _accepted(task):
        value = score(name, model, X, y)
        assert value is not None and math.isfinite(value), name
        if name in get_scorer_names():
            expected = get_scorer(name)(model, X, y)
        else:
            expected = -get_scorer(_loss_scorer(name))(model, X, y)
            assert value >= 0, name
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-12), name


def test_two_class_metrics_fail_on_three_classes_in_sklearn(fitted: dict, X: pd.DataFrame) -> None:
    """The names refused for multiclass but fine for binary do fail in scikit-learn."""
    model, y = fitted["multiclass"]
    two_class = set(_accepted("binary")) - set(_accepted("multiclass"))
    assert {"roc_auc", "f1", "positive_likelihood_ratio"} <= two_class
    for name in sorted(two_class & set(get_scorer_names())):
        with pytest.raises(ValueError):
            get_scorer(name)(model, X, y)


def test_suggested_and_standard_metrics_fit_their_task() -> None:
    for task in TASKS:
        suggested = re.findall(r"[a-z0-9_]+", SUGGESTIONS[task].split("such as")[1])
        for name in [*suggested, *STANDARD_METRICS[task]]:
            assert metric_problem(name, task) is None, (name, task)


# ---- messages -----------------------------------------------------------------------------------
def test_metric_problem_for_a_wrong_task() -> None:
    assert metric_problem("r2", "regression") is None
    message = metric_problem("r2", "binary")
    assert message is not None
    assert message.startswith("metric 'r2' does not fit a binary model")
    assert "roc_auc" in message and "log_loss" in message
    message = metric_problem("roc_auc", "multiclass")
    assert message is not None and "two classes" in message and "roc_auc_ovr" in message
    message = metric_problem("f1", "multiclass")
    assert message is not None and "use f1_macro" in message
    message = metric_problem("accuracy", "regression")
    assert message is not None and "root_mean_squared_error" in message


def test_metric_problem_for_an_unknown_name_or_task() -> None:
    message = metric_problem("foo", "binary")
    assert message is not None
    assert message.startswith("unknown metric 'foo': use a scikit-learn scorer name")
    assert "get_scorer_names()" in message and "log_loss" in message and "max_error" in message
    assert "did you mean 'roc_auc'" in str(metric_problem("roc_aux", "binary"))
    assert str(metric_problem("roc_auc", "ranking")).startswith("unknown task 'ranking'")


def test_unknown_names_raise_config_error(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["binary"]
    with pytest.raises(ConfigError, match="unknown metric 'foo'"):
        higher_is_better("foo")
    with pytest.raises(ConfigError, match="unknown metric 'foo'"):
        score("foo", model, X, y)
    with pytest.raises(ConfigError, match="unknown metric 'foo'"):
        is_better("foo", 1.0, 0.0, 0.0)


# ---- values -------------------------------------------------------------------------------------
def test_log_loss_is_positive_and_lower_for_a_better_model(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["binary"]
    guess = DummyClassifier(strategy="prior").fit(X, y)
    good, bad = score("log_loss", model, X, y), score("log_loss", guess, X, y)
    assert good is not None and bad is not None
    assert 0 < good < bad
    assert score("neg_log_loss", model, X, y) == pytest.approx(-good)


def test_metrics_needing_both_classes_are_none_on_one_class(fitted: dict, X: pd.DataFrame) -> None:
    model, _ = fitted["binary"]
    zeros = np.zeros(len(X), dtype=int)
    assert score("roc_auc", model, X, zeros) is None  # sklearn: NaN and a warning
    assert score("average_precision", model, X, zeros) is None  # sklearn: a misleading 0.0
    assert score("neg_log_loss", model, X, zeros) is not None  # sklearn raises without labels
    assert score("accuracy", model, X, zeros) is not None
    assert score("roc_auc", model, X.iloc[:0], zeros[:0]) is None  # no rows


def test_multiclass_log_loss_with_string_classes(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["multiclass"]
    assert list(model.classes_) == ["high", "low", "mid"]
    lacking = (y != "mid").to_numpy()  # a holdout without one of the model's classes
    value = score("log_loss", model, X[lacking], y[lacking])
    expected = log_loss(y[lacking], model.predict_proba(X[lacking]), labels=model.classes_)
    assert value == pytest.approx(expected)
    assert score("roc_auc_ovr", model, X[lacking], y[lacking]) is None
    foreign = y.where(y != "mid", "unseen")  # a class the model never saw
    assert score("log_loss", model, X, foreign) is None


def test_regression_rmse_is_the_hand_computed_one() -> None:
    X = pd.DataFrame({"x": [0.0, 1.0, 2.0]})
    model = DummyRegressor(strategy="constant", constant=2.0).fit(X, [0.0, 0.0, 0.0])
    y = [1.0, 2.0, 4.0]  # errors 1, 0, 2
    assert score("root_mean_squared_error", model, X, y) == pytest.approx(math.sqrt(5 / 3))
    assert score("neg_root_mean_squared_error", model, X, y) == pytest.approx(-math.sqrt(5 / 3))
    assert score("mean_absolute_error", model, X, y) == pytest.approx(1.0)
    assert score("max_error", model, X, y) == pytest.approx(2.0)
    assert score("neg_max_error", model, X, y) == pytest.approx(-2.0)


def test_a_probability_metric_of_a_regressor_is_a_config_error(
    fitted: dict, X: pd.DataFrame
) -> None:
    model, y = fitted["regression"]
    with pytest.raises(ConfigError, match="predict_proba"):
        score("log_loss", model, X, y)


# ---- promotion ----------------------------------------------------------------------------------
def test_is_better_when_higher_is_better() -> None:
    assert is_better("roc_auc", 0.80, 0.78, 0.01)
    assert not is_better("roc_auc", 0.80, 0.78, 0.03)
    assert not is_better("roc_auc", 0.78, 0.78, 0.0)
    assert not is_better("roc_auc", 0.70, 0.78, 0.0)
    assert is_better("neg_log_loss", -0.30, -0.35, 0.01)
    assert not is_better("roc_auc", math.nan, 0.5, 0.0)


def test_is_better_when_lower_is_better() -> None:
    assert is_better("log_loss", 0.30, 0.35, 0.01)
    assert not is_better("log_loss", 0.34, 0.35, 0.02)
    assert not is_better("log_loss", 0.40, 0.35, 0.0)
    assert is_better("root_mean_squared_error", 1.0, 1.5, 0.2)
    with pytest.raises(ConfigError, match="margin"):
        is_better("log_loss", 0.30, 0.35, -0.1)


# ---- holdout metrics ----------------------------------------------------------------------------
def test_holdout_metrics_binary(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["binary"]
    found = holdout_metrics("binary", "average_precision", model, X, y)
    assert set(found) == {
        "average_precision",
        "roc_auc",
        "log_loss",
        "brier_score_loss",
        "positive_rate",
        "rows",
    }
    assert all(type(value) is float for value in found.values())
    assert found["rows"] == len(X) and found["positive_rate"] == pytest.approx(y.mean())
    one_class = holdout_metrics("binary", "roc_auc", model, X, np.zeros(len(X), dtype=int))
    assert set(one_class) == {"log_loss", "brier_score_loss", "positive_rate", "rows"}


def test_holdout_metrics_multiclass(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["multiclass"]
    found = holdout_metrics("multiclass", "log_loss", model, X, y)
    assert set(found) == {"accuracy", "log_loss", "f1_macro", "rows"}
    assert all(type(value) is float for value in found.values())


def test_holdout_metrics_regression(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["regression"]
    found = holdout_metrics("regression", "neg_mean_absolute_error", model, X, y)
    assert set(found) == {
        "neg_mean_absolute_error",
        "root_mean_squared_error",
        "mean_absolute_error",
        "r2",
        "label_mean",
        "rows",
    }
    assert found["neg_mean_absolute_error"] == pytest.approx(-found["mean_absolute_error"])
    assert found["label_mean"] == pytest.approx(y.mean())
    assert all(type(value) is float for value in found.values())


def test_holdout_metrics_refuses_a_metric_of_another_task(fitted: dict, X: pd.DataFrame) -> None:
    model, y = fitted["binary"]
    with pytest.raises(DefinitionError, match="does not fit a binary model"):
        holdout_metrics("binary", "r2", model, X, y)
