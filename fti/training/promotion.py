"""The promotion gate: a candidate replaces the champion only when it is better on the same rows,
by more than the margin and beyond noise.

**Beyond noise.** Both models predict the shared holdout once; a paired bootstrap then draws
``bootstrap_resamples`` resamples of its rows (with replacement, the same rows for both models)
and computes the candidate's *gain* on each: its metric minus the champion's, turned so that
positive is better (for a loss, the champion's minus the candidate's). The ``confidence``
percentile interval of those gains says how much of the gain on the holdout is luck of the
rows. The candidate is promoted only when its gain on the whole holdout exceeds the margin and
the interval's lower bound does too. A resample on which the metric is not defined (one class
only) is skipped and counted.

**The same, newer rows.** A candidate trained as of an earlier date than the champion (a
backfill) is judged on the holdout of the champion's date: the champion trained on the rows of
the older holdout's dates, so scoring it there would flatter it. ``shared_holdout`` builds it.

Settings come from params.yaml's ``promote`` section (``GateParams``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fti.db.tables import ModelVersion
from fti.definitions import Model, ModelFeature, Project
from fti.errors import ConfigError, FtiError
from fti.store.versions import FeatureStore
from fti.training.dataset import TrainingSet, build_training_set
from fti.training.metrics import (
    Predictions,
    Resampler,
    higher_is_better,
    is_better,
    predictions,
    resample_counts,
    score_predictions,
)

# Resample rows drawn per batch (resamples x holdout rows): bounds the bootstrap's memory
# (a few arrays of this many counts) without costing time: each batch is linear in its cells.
_BATCH_CELLS = 2_000_000


class GateParams(BaseModel):
    """params.yaml's ``promote`` section: what the gate demands of a candidate."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    margin: float = Field(0.0, ge=0)  # the gain must exceed this, in the metric's units
    confidence: float = Field(0.95, gt=0, lt=1)  # of the bootstrap interval of the gain
    bootstrap_resamples: int = Field(1000, ge=1)
    seed: int = 0  # of the bootstrap: the same decision on a re-run


def gate_params(section: Mapping[str, Any] | float) -> GateParams:
    """The gate's settings from params.yaml's ``promote`` section (defaults for absent keys);
    a bare number is the margin alone (how callers passed it before the noise rule).

    Raises:
        ConfigError: an unknown key or a value out of range, naming it and what it must be.
    """
    values = {"margin": float(section)} if isinstance(section, int | float) else dict(section)
    try:
        return GateParams.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join(str(part) for part in error["loc"]) or "promote"
        known = ", ".join(GateParams.model_fields)
        raise ConfigError(
            f"params.yaml promote.{key}: {error['msg']} (got {error.get('input')!r}); "
            f"the promote section takes {known}"
        ) from None


@dataclass(frozen=True)
class Interval:
    """The candidate's gain over the champion on the holdout and its bootstrap interval."""

    gain: float  # positive: the candidate is better, in the metric's units
    low: float | None  # None: no resample could be scored
    high: float | None
    skipped: int  # resamples on which the metric is not defined (not in the interval)


def paired_bootstrap(
    metric: str, candidate: Predictions, champion: Predictions, params: GateParams
) -> Interval:
    """The gain of ``candidate`` over ``champion`` (predictions on the same rows) and its
    percentile interval over ``params.bootstrap_resamples`` paired resamples of those rows.

    What depends on the rows alone (sorting the scores, the per-row terms) is done once per
    model; the resamples are then drawn and scored in batches of about ``_BATCH_CELLS``
    counts, so time grows linearly with the rows (after one sort) and memory stays bounded.
    """
    direction = 1.0 if higher_is_better(metric) else -1.0
    ours_of, theirs_of = Resampler(candidate), Resampler(champion)
    ours, theirs = ours_of.value, theirs_of.value  # score_predictions of each
    if ours is None or theirs is None:
        raise ValueError(f"{metric} is not defined on these rows: no gain to bootstrap")
    rows = len(candidate.truth)
    rng = np.random.default_rng(params.seed)
    batch = max(1, _BATCH_CELLS // rows)
    gains = []
    for start in range(0, params.bootstrap_resamples, batch):
        drawn = resample_counts(rows, min(batch, params.bootstrap_resamples - start), rng)
        gains.append(direction * (ours_of(drawn) - theirs_of(drawn)))
    every = np.concatenate(gains)
    scored = every[np.isfinite(every)]
    gain = direction * (ours - theirs)
    if len(scored) == 0:
        return Interval(gain, None, None, len(every))
    tail = (1 - params.confidence) / 2
    low, high = np.quantile(scored, [tail, 1 - tail])
    return Interval(gain, float(low), float(high), len(every) - len(scored))


def gate(
    metric: str,
    params: Mapping[str, Any] | float,
    holdout: pd.DataFrame,
    label: str,
    candidate: tuple[int, Any, list[str]],
    champion: tuple[int, Any, list[str]] | None,
) -> dict[str, Any]:
    """Score candidate and champion (version, model, features) on ``holdout``; decide.

    ``params`` is params.yaml's ``promote`` section (``GateParams``; a number: the margin,
    the rest at their defaults). Both models read their own feature columns from the same
    holdout rows (same feature version, same label window). Returns the decision: both scores,
    the gain and its interval, whether promoted and the reason in words.
    """
    rule = gate_params(params)
    version, model, features = candidate
    decision: dict[str, Any] = {
        "metric": metric,
        "margin": rule.margin,
        "confidence": rule.confidence,
        "resamples": rule.bootstrap_resamples,
        "candidate_version": version,
    }
    ours = predictions(metric, model, holdout[features], holdout[label])
    decision["candidate"] = score_predictions(ours)
    undecided = {"gain": None, "interval": None, "skipped_resamples": None}
    if champion is None:
        return {
            **decision,
            **undecided,
            "champion_version": None,
            "champion": None,
            "promoted": True,
            "reason": "first version of the model",
        }
    champion_version, champion_model, champion_features = champion
    decision["champion_version"] = champion_version
    missing = [f for f in champion_features if f not in holdout.columns]
    if missing:
        return {
            **decision,
            **undecided,
            "champion": None,
            "promoted": False,
            "reason": f"champion v{champion_version} needs {missing}, absent from this holdout",
        }
    theirs = predictions(metric, champion_model, holdout[champion_features], holdout[label])
    decision["champion"] = score_predictions(theirs)
    if decision["candidate"] is None or decision["champion"] is None:
        return {
            **decision,
            **undecided,
            "promoted": False,
            "reason": f"{metric} is not computable on this holdout",
        }
    interval = paired_bootstrap(metric, ours, theirs, rule)
    better = is_better(metric, decision["candidate"], decision["champion"], rule.margin)
    promoted = better and interval.low is not None and interval.low > rule.margin
    return decision | {
        "gain": interval.gain,
        "interval": None if interval.low is None else [interval.low, interval.high],
        "skipped_resamples": interval.skipped,
        "promoted": promoted,
        "reason": _reason(decision, interval, rule, better, promoted),
    }


def _reason(
    decision: dict[str, Any], interval: Interval, rule: GateParams, better: bool, promoted: bool
) -> str:
    """E.g. ``roc_auc 0.8471 vs champion v3 0.8466 on the same holdout (margin 0.0): gain
    0.0005, 95% interval [-0.0021, 0.0031] includes 0: within noise, not promoted``."""
    margin = rule.margin
    head = (
        f"{decision['metric']} {decision['candidate']:.4f} vs champion "
        f"v{decision['champion_version']} {decision['champion']:.4f} on the same holdout "
        f"(margin {margin}): gain {interval.gain:.4f}"
    )
    if interval.low is None or interval.high is None:
        return (
            f"{head}, but {decision['metric']} is defined on none of the "
            f"{rule.bootstrap_resamples} bootstrap resamples: cannot tell it from noise, "
            "not promoted"
        )
    spread = f"{rule.confidence * 100:g}% interval [{interval.low:.4f}, {interval.high:.4f}]"
    if interval.skipped:
        spread += (
            f" ({interval.skipped} of {rule.bootstrap_resamples} resamples skipped: "
            f"{decision['metric']} not defined on them)"
        )
    bound = "0" if margin == 0 else f"the margin {margin}"
    if promoted:
        return f"{head}, {spread} above {bound}: better, promoted"
    if not better:
        beaten = "not better" if interval.gain <= 0 else "not better by more than the margin"
        return f"{head}, {spread}: {beaten}, not promoted"
    if margin == 0 and interval.low <= 0 <= interval.high:
        where = "includes 0"
    else:
        where = f"does not clear {bound}"
    return f"{head}, {spread} {where}: within noise, not promoted"


# ---- which rows ---------------------------------------------------------------------------------
def trained_as_of(row: ModelVersion, horizon_days: int) -> date:
    """The date a registered version was trained as of: as its promotion decision recorded it
    (``candidate_as_of``), else (a version gated before fti recorded it) its newest label date
    plus the label horizon."""
    recorded = (row.promotion or {}).get("candidate_as_of")
    if recorded:
        return date.fromisoformat(recorded)
    return row.train_end + timedelta(days=horizon_days)


def shared_holdout(
    store: FeatureStore,
    project: Project,
    model: Model,
    training: TrainingSet,
    chosen: Sequence[ModelFeature],
    as_of: date,
    champion: ModelVersion | None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The holdout rows a candidate (``training``, built as of ``as_of`` with the features
    ``chosen``) and the champion are both scored on, and where they come from.

    The holdout of the newer of the two as-of dates: the candidate's own, unless the champion
    was trained as of a later date; then the candidate's training set is rebuilt as of the
    champion's date, each group (and the label group) at the newer of the two models'
    versions, and its holdout is used. Returns the rows and, for the decision,
    ``candidate_as_of``, ``holdout_as_of``, ``holdout_dates``, ``holdout_rows`` and
    ``holdout_versions`` (group -> version, label group included).

    Raises:
        FtiError: the holdout of the champion's date cannot be built from the store.
    """
    newer = as_of
    if champion is not None:
        newer = max(as_of, trained_as_of(champion, model.label.horizon_days))
    judged = training
    if newer != as_of and champion is not None:
        feature_versions = {
            group: max(version, int(champion.feature_versions.get(group, 0)))
            for group, version in training.feature_versions.items()
        }
        label_version = training.label_version
        if champion.label_group == training.label_group and champion.label_version:
            label_version = max(label_version, champion.label_version)
        try:
            judged = build_training_set(
                store, project, model, feature_versions, label_version, newer, chosen
            )
        except FtiError as exc:
            raise FtiError(
                f"model {model.name!r}: a candidate trained as of {as_of} is judged on the "
                f"holdout as of {newer} (champion v{champion.version}'s date), which cannot be "
                f"built: {exc} Publish versions that hold {newer}, or promote by hand with "
                f"`fti models promote {model.name} VERSION`."
            ) from exc
    where = {
        "candidate_as_of": as_of.isoformat(),
        "holdout_as_of": newer.isoformat(),
        "holdout_dates": [d.isoformat() for d in judged.holdout_dates],
        "holdout_rows": len(judged.holdout),
        "holdout_versions": {**judged.feature_versions, judged.label_group: judged.label_version},
    }
    return judged.holdout, where
