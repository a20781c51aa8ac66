"""fti.training.promotion: the gate promotes a candidate only when its gain is beyond noise (a
paired bootstrap of the metric over the shared holdout rows) and above the margin; and
fti.training.metrics' resampled values, which the bootstrap computes from predictions."""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import average_precision_score, get_scorer_names, roc_auc_score

from fti.errors import ConfigError
from fti.training.metrics import (
    Resampler,
    is_better,
    loss_names,
    metric_problem,
    predictions,
    resample_counts,
    resampled_values,
    score,
)
from fti.training.promotion import gate, gate_params

ALL_NAMES = sorted({*get_scorer_names(), *loss_names()})
ROWS = 2000
FAST = {"bootstrap_resamples": 300}  # enough resamples for a stable 95% interval in tests


# ---- data and models ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def small() -> dict[str, tuple[Any, pd.DataFrame, pd.Series]]:
    """60 rows; a fitted model, its rows and labels per task (string classes for multiclass)."""
    rng = np.random.default_rng(7)
    X = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60)})
    noise = rng.normal(size=len(X))
    binary = pd.Series((X["a"] + 0.5 * noise > 0).astype(int))
    classes = np.array(["high", "low", "mid"])[np.digitize(X["a"] + 0.3 * noise, [-0.4, 0.4])]
    multiclass = pd.Series(classes, dtype="str")
    regression = pd.Series(10 + X["a"] + 0.1 * noise)
    return {
        "binary": (LogisticRegression().fit(X, binary), X, binary),
        "multiclass": (LogisticRegression().fit(X, multiclass), X, multiclass),
        "regression": (LinearRegression().fit(X, regression), X, regression),
    }


class FixedScores:
    """A binary classifier whose positive-class probability is its one feature column."""

    classes_ = np.array([0, 1])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = X.iloc[:, 0].to_numpy(dtype=float)
        return np.column_stack([1 - p, p])


def holdout(seed: int = 0, rows: int = ROWS) -> pd.DataFrame:
    """Binary labels driven by ``signal``; ``noise`` carries none; ``old`` and ``new`` are two
    nearly equal scores of the label (``new`` is ``old`` with a little jitter)."""
    rng = np.random.default_rng(seed)
    signal, noise = rng.normal(size=rows), rng.normal(size=rows)
    label = (signal + rng.normal(size=rows) > 0).astype(int)
    old = 1 / (1 + np.exp(-(signal + rng.normal(scale=0.8, size=rows))))
    new = np.clip(old + rng.normal(scale=0.01, size=rows), 0, 1)
    return pd.DataFrame({"signal": signal, "noise": noise, "old": old, "new": new, "y": label})


def fitted(frame: pd.DataFrame, feature: str) -> LogisticRegression:
    return LogisticRegression().fit(frame[[feature]], frame["y"])


def decide(
    metric: str,
    frame: pd.DataFrame,
    candidate: tuple[Any, str],
    champion: tuple[Any, str] | None,
    **params: Any,
) -> dict[str, Any]:
    """The gate's decision: candidate v2 and champion v1, each (model, its one feature)."""
    return gate(
        metric,
        FAST | params,
        frame,
        "y",
        (2, candidate[0], [candidate[1]]),
        None if champion is None else (1, champion[0], [champion[1]]),
    )


# ---- resampled values: score on the resampled rows, from predictions made once ------------------
def rows_of(counts: np.ndarray) -> list[np.ndarray]:
    """Each resample's row numbers, from how often it draws each row."""
    return [np.repeat(np.arange(counts.shape[1]), drawn) for drawn in counts]


def test_resample_counts_draw_as_many_rows_as_there_are_and_follow_the_seed() -> None:
    counts = resample_counts(50, 7, np.random.default_rng(1))
    assert counts.shape == (7, 50) and (counts.sum(axis=1) == 50).all() and counts.min() >= 0
    assert (counts == resample_counts(50, 7, np.random.default_rng(1))).all()
    assert (counts != resample_counts(50, 7, np.random.default_rng(2))).any()


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_resampled_values_are_the_score_of_the_resampled_rows(task: str, small) -> None:  # type: ignore[no-untyped-def]
    """Every metric fitting the task, vectorised or not: one class only gives NaN."""
    model, X, y = small[task]
    counts = resample_counts(len(X), 12, np.random.default_rng(3))
    counts[0] = 0
    counts[0, 0] = len(X)  # the first row over and over: one class, a constant label
    names = [name for name in ALL_NAMES if metric_problem(name, task) is None]
    assert len(names) > 10
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's warnings about the odd resample
        for name in names:
            got = resampled_values(predictions(name, model, X, y), counts)
            want = [score(name, model, X.iloc[rows], y.iloc[rows]) for rows in rows_of(counts)]
            expected = np.array([np.nan if v is None else v for v in want])
            np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=name)
    if task != "regression":
        one_class = resampled_values(predictions("roc_auc_ovr", model, X, y), counts[:1])
        assert np.isnan(one_class).all()


@pytest.mark.parametrize("metric", ["roc_auc", "average_precision"])
@pytest.mark.parametrize("positives", [0.2, 0.8])  # either class the smaller one
def test_tied_scores_in_the_resampled_ranking_metrics(positives: float, metric: str) -> None:
    frame = holdout(rows=200)
    frame["y"] = (frame["old"].rank(pct=True) > 1 - positives).astype(int)
    frame["coarse"] = (frame["old"] + np.random.default_rng(4).normal(size=200)).clip(0, 1).round(1)
    counts = resample_counts(len(frame), 50, np.random.default_rng(5))
    kept = predictions(metric, FixedScores(), frame[["coarse"]], frame["y"])
    got = resampled_values(kept, counts)
    want = [
        score(metric, FixedScores(), frame.iloc[rows][["coarse"]], frame.iloc[rows]["y"])
        for rows in rows_of(counts)
    ]
    np.testing.assert_allclose(got, np.array(want, dtype=float), rtol=1e-12)
    assert positives / 2 < np.nanmean(got) < 1


@settings(max_examples=25, deadline=None)
@given(
    labels=st.lists(st.integers(0, 1), max_size=14).map(lambda drawn: [0, 1, *drawn]),
    data=st.data(),
)
def test_resampled_ranking_metrics_are_sklearns_batch_after_batch(
    labels: list[int], data: st.DataObject
) -> None:
    """Any labels, scores with many ties, any counts, plus a one-class resample, scored in two
    batches by one Resampler (set up once): scikit-learn's value on each resample's rows."""
    y = np.array(labels)
    scores = data.draw(arrays(np.float64, len(y), elements=st.sampled_from([0.0, 0.3, 0.5, 1.0])))
    counts = data.draw(arrays(np.int32, (3, len(y)), elements=st.integers(0, 3)))
    counts[-1] = y == data.draw(st.integers(0, 1))  # one class only
    kept = pd.DataFrame({"p": scores})
    for name, function in (
        ("roc_auc", roc_auc_score),
        ("average_precision", average_precision_score),
    ):
        resampler = Resampler(predictions(name, FixedScores(), kept, y))
        got = np.concatenate([resampler(counts[:1]), resampler(counts[1:])])
        want = [
            function(y[rows], scores[rows]) if len(set(y[rows])) == 2 else np.nan
            for rows in rows_of(counts)
        ]
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=name)


def test_the_resampled_auc_is_exact_beyond_two_billion_drawn_rows() -> None:
    """Running totals past int32 (2**31 + 1 positive rows drawn): pairs still counted exactly."""
    kept = predictions("roc_auc", FixedScores(), pd.DataFrame({"p": [0.2, 0.2, 0.9]}), [0, 1, 1])
    big = 2**30  # the negative row drawn once: big pairs tied (half right), big + 1 right
    counts = np.array([[1, big, big + 1], [1, 1, 1]], dtype=np.int64)
    assert Resampler(kept)(counts).tolist() == [(3 * big + 2) / (4 * big + 2), 0.75]


# ---- the noise rule -----------------------------------------------------------------------------
def test_the_first_version_is_promoted_with_nothing_to_compare() -> None:
    frame = holdout()
    decision = decide("roc_auc", frame, (fitted(frame, "signal"), "signal"), None)
    assert decision["promoted"] and decision["reason"] == "first version of the model"
    assert decision["champion_version"] is None and decision["interval"] is None
    assert (decision["confidence"], decision["resamples"]) == (0.95, 300)
    assert 0.5 < decision["candidate"] <= 1


def test_a_gain_within_noise_is_not_promoted_and_the_reason_says_so() -> None:
    """A better AUC by a hair (the margin-only rule would promote it) stays within noise."""
    frame = holdout(seed=1)  # a seed where the jittered score is the better one, by 0.0001
    decision = decide("roc_auc", frame, (FixedScores(), "new"), (FixedScores(), "old"))
    assert is_better("roc_auc", decision["candidate"], decision["champion"], 0.0)
    assert 0 < decision["gain"] < 0.001
    assert decision["gain"] == pytest.approx(decision["candidate"] - decision["champion"])
    low, high = decision["interval"]
    assert low < 0 < high and low < decision["gain"] < high
    assert not decision["promoted"]
    assert re.fullmatch(
        r"roc_auc 0\.\d{4} vs champion v1 0\.\d{4} on the same holdout \(margin 0\.0\): "
        r"gain 0\.\d{4}, 95% interval \[-0\.\d{4}, 0\.\d{4}\] includes 0: within noise, "
        r"not promoted",
        decision["reason"],
    ), decision["reason"]
    assert decision["skipped_resamples"] == 0


def test_a_clearly_better_model_is_promoted_with_its_interval_above_zero() -> None:
    frame = holdout()
    decision = decide(
        "roc_auc", frame, (fitted(frame, "signal"), "signal"), (fitted(frame, "noise"), "noise")
    )
    low, high = decision["interval"]
    assert 0 < low < decision["gain"] < high
    assert decision["promoted"]
    assert decision["reason"].endswith("above 0: better, promoted"), decision["reason"]
    assert "95% interval [" in decision["reason"]
    # The other way round: a clear loss, not promoted.
    worse = decide(
        "roc_auc", frame, (fitted(frame, "noise"), "noise"), (fitted(frame, "signal"), "signal")
    )
    assert worse["gain"] < 0 and worse["interval"][1] < 0 and not worse["promoted"]
    assert worse["reason"].endswith(": not better, not promoted"), worse["reason"]


def test_the_margin_still_applies_to_the_gain_and_to_its_interval() -> None:
    frame = holdout()
    models = ((fitted(frame, "signal"), "signal"), (fitted(frame, "noise"), "noise"))
    clear = decide("roc_auc", frame, *models)
    gain, (low, _) = clear["gain"], clear["interval"]
    # A margin above the gain itself: not better by more than the margin.
    above = decide("roc_auc", frame, *models, margin=round(gain + 0.01, 4))
    assert not above["promoted"] and above["margin"] == round(gain + 0.01, 4)
    assert above["reason"].endswith("not better by more than the margin, not promoted")
    # A margin between the interval's lower bound and the gain: within noise of the margin.
    between = round((low + gain) / 2, 4)
    inside = decide("roc_auc", frame, *models, margin=between)
    assert is_better("roc_auc", inside["candidate"], inside["champion"], between)
    assert not inside["promoted"]
    assert inside["reason"].endswith(
        f"does not clear the margin {between}: within noise, not promoted"
    ), inside["reason"]
    # A margin below the lower bound: promoted.
    below = decide("roc_auc", frame, *models, margin=round(low / 2, 4))
    assert below["promoted"] and "above the margin" in below["reason"]


@pytest.mark.parametrize("metric", ["root_mean_squared_error", "neg_root_mean_squared_error"])
def test_a_loss_gains_by_going_down(metric: str) -> None:
    """Loss names (lower is better) and negated scorers agree: the gain is the improvement."""
    frame = holdout()
    frame["y"] = 3 * frame["signal"] + np.random.default_rng(1).normal(size=len(frame))
    good = LinearRegression().fit(frame[["signal"]], frame["y"])
    poor = LinearRegression().fit(frame[["noise"]], frame["y"])
    decision = decide(metric, frame, (good, "signal"), (poor, "noise"))
    improvement = abs(decision["champion"]) - abs(decision["candidate"])
    assert decision["gain"] == pytest.approx(improvement) and improvement > 1
    assert decision["promoted"] and decision["interval"][0] > 0


def test_multiclass_metrics_are_bootstrapped_too() -> None:
    frame = holdout()
    frame["y"] = np.digitize(frame["signal"], [-0.5, 0.5])  # three classes
    good = LogisticRegression().fit(frame[["signal"]], frame["y"])
    poor = LogisticRegression().fit(frame[["noise"]], frame["y"])
    for metric in ("log_loss", "accuracy", "f1_macro"):  # vectorised, vectorised, one by one
        decision = decide(metric, frame, (good, "signal"), (poor, "noise"), bootstrap_resamples=100)
        assert decision["promoted"] and decision["interval"][0] > 0, metric


def test_resamples_without_a_class_are_skipped_and_counted() -> None:
    """A tiny holdout: some resamples draw no positive row; the interval is of the others."""
    frame = holdout(rows=12)
    frame["y"] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
    decision = decide("roc_auc", frame, (FixedScores(), "new"), (FixedScores(), "old"))
    assert 0 < decision["skipped_resamples"] < 300
    assert decision["interval"] is not None
    assert f"({decision['skipped_resamples']} of 300 resamples skipped" in decision["reason"]


def test_no_gain_is_promoted_when_no_resample_can_be_scored() -> None:
    """Two rows, one resample drawing one of them twice: no AUC, no interval."""
    frame = holdout(rows=2)
    frame["y"] = [0, 1]
    seed = next(s for s in range(100) if resample_counts(2, 1, np.random.default_rng(s)).max() == 2)
    decision = decide(
        "roc_auc",
        frame,
        (FixedScores(), "new"),
        (FixedScores(), "old"),
        bootstrap_resamples=1,
        seed=seed,
    )
    assert decision["interval"] is None and decision["skipped_resamples"] == 1
    assert not decision["promoted"]
    assert decision["reason"].endswith(
        "roc_auc is defined on none of the 1 bootstrap resamples: cannot tell it from noise, "
        "not promoted"
    ), decision["reason"]


def test_the_interval_is_reproducible_and_follows_the_seed() -> None:
    frame = holdout()
    models = ((FixedScores(), "new"), (FixedScores(), "old"))
    first, again = decide("roc_auc", frame, *models), decide("roc_auc", frame, *models)
    other = decide("roc_auc", frame, *models, seed=1)
    assert first["interval"] == again["interval"] != other["interval"]


def test_the_confidence_sets_the_width_of_the_interval() -> None:
    frame = holdout()
    models = ((FixedScores(), "new"), (FixedScores(), "old"))
    wide = decide("roc_auc", frame, *models, confidence=0.99)["interval"]
    narrow = decide("roc_auc", frame, *models, confidence=0.5)
    assert wide[0] < narrow["interval"][0] < narrow["interval"][1] < wide[1]
    assert "50% interval" in narrow["reason"]


def test_a_champion_needing_absent_features_is_not_replaced() -> None:
    frame = holdout()
    decision = gate(
        "roc_auc", FAST, frame, "y", (2, FixedScores(), ["new"]), (1, FixedScores(), ["gone"])
    )
    assert not decision["promoted"] and decision["interval"] is None
    assert decision["reason"] == "champion v1 needs ['gone'], absent from this holdout"


def test_a_bare_margin_is_still_accepted() -> None:
    frame = holdout()
    decision = gate(
        "roc_auc", 0.0, frame, "y", (2, FixedScores(), ["new"]), (1, FixedScores(), ["old"])
    )
    assert (decision["margin"], decision["resamples"], decision["confidence"]) == (0.0, 1000, 0.95)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"confidance": 0.9}, r"promote\.confidance: Extra inputs are not permitted"),
        ({"confidence": 1.5}, r"promote\.confidence: Input should be less than 1 \(got 1\.5\)"),
        ({"bootstrap_resamples": 0}, r"promote\.bootstrap_resamples: .*greater than or equal"),
        ({"margin": -0.1}, r"promote\.margin: .*greater than or equal to 0"),
    ],
)
def test_a_bad_promote_section_is_a_config_error_naming_the_key(
    section: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        gate_params(section)
    assert gate_params({}).model_dump() == {
        "margin": 0.0,
        "confidence": 0.95,
        "bootstrap_resamples": 1000,
        "seed": 0,
    }
