"""Realized performance: how a model's predictions turned out once their labels landed.

A label group version labels some dates (the partitions it wrote). For each model version
trained on that label group that scored one of those dates, the scores it wrote for the date
are joined on the entity with the labels of the date and scored by ``fti.training.metrics``
exactly as the holdout was (``holdout_metrics`` on a stand-in model that answers with the
stored scores), plus calibration for classifiers (Brier score, reliability curve) and the
error distribution for regressors. One ``realized_metrics`` row per (model, version, date);
recomputing replaces it.

The scores come from ``predictions`` (one version per model and date: the slice's writer)
and from ``shadow_predictions``: the scores of a version shadow-scored beside it (the
``challenger``, fti.pipelines.score_shadow), one slice per (model, version, date), written by
``write_shadow_slice``.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from fti.db.engine import get_engine, session_scope
from fti.db.tables import (
    AliasEvent,
    FeatureVersion,
    ModelVersion,
    Prediction,
    RealizedMetric,
    ShadowPrediction,
)
from fti.definitions import LABEL, load_project
from fti.errors import ConfigError, FtiError, PredictionWriteError, VersionNotFoundError
from fti.inference.write import JSON_COLUMNS, Slice
from fti.monitoring import notify
from fti.params import load_params
from fti.registry import aliases
from fti.settings import Settings, get_settings
from fti.store.versions import DATE_COLUMN, FeatureStore
from fti.training import metrics
from fti.training.artifacts import load_artifact

log = logging.getLogger(__name__)

RELIABILITY_BINS = 10  # equal-width bins of the predicted probability, as calibration_curve's
ERROR_QUANTILES = (0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 1.0)
COLUMNS = [
    "model_name",
    "model_version",
    "alias",
    "as_of_date",
    "label_group",
    "label_version",
    "prediction_run_id",
    "rows_scored",
    "rows",
    "metric",
    "value",
    "holdout_value",
    "metrics",
    "brier_score",
    "reliability",
    "error_distribution",
    "computed_at",
]
_SCORE_COLUMNS = (
    Prediction.entity_id,
    Prediction.model_version,
    Prediction.run_id,
    Prediction.scored_at,
    Prediction.prediction,
    Prediction.probability,
    Prediction.value,
    Prediction.predicted_class,
    Prediction.class_probabilities,
)


# ---- public API ---------------------------------------------------------------------------------
def record_realized(
    settings: Settings | None,
    label_group: str,
    label_version: int,
    dates: Sequence[date] | None = None,
) -> list[dict[str, Any]]:
    """Record the realized metrics of every model version that scored a date ``label_version``
    of ``label_group`` labels; returns the rows written (as ``as_dict``).

    ``dates``: the as-of dates to compute (default: the partitions the version wrote, from the
    catalog). A model version that did not score a date gets no row for it; a version whose
    artifact cannot be loaded (a classifier's classes come from it) is skipped with a warning.

    Raises:
        VersionNotFoundError: the label group version is not in the catalog.
    """
    settings = settings or get_settings()
    project = load_project(settings.project)
    key = project.group(label_group).entity.key
    store = FeatureStore(settings.store_path)
    with session_scope(settings.db_url) as session:
        wanted = (
            sorted(dates)
            if dates is not None
            else _changed_dates(session, label_group, label_version)
        )
        models = sorted(
            set(
                session.scalars(
                    select(ModelVersion.name).where(ModelVersion.label_group == label_group)
                )
            )
        )
        scored = {  # the dates any of them scored: only these labels are read
            day
            for table in (Prediction, ShadowPrediction)
            for day in session.scalars(
                select(table.as_of_date)
                .where(table.model_name.in_(models), table.as_of_date.in_(wanted))
                .distinct()
            )
        }
    held = set(store.partition_dates(label_group, label_version))
    found = []
    for day in wanted:
        if day not in scored:
            continue
        if day not in held:
            log.warning("%s v%s holds no labels for %s; skipped", label_group, label_version, day)
            continue
        labels = _labels(store, label_group, label_version, key, day)
        for model in models:
            found += _record_day(settings, model, label_group, label_version, day, labels)
    return found


def record_realized_after_publish(
    settings: Settings, label_group: str, label_version: int, run_id: str | None = None
) -> list[dict[str, Any]]:
    """``record_realized`` for a version just published, then ``realized_alerts`` of the models
    it recorded: a failure is logged (with the command that records them later), not raised,
    since the version is published either way."""
    try:
        rows = record_realized(settings, label_group, label_version)
        realized_alerts(settings, sorted({r["model_name"] for r in rows}), run_id)
        return rows
    except Exception as exc:  # noqa: BLE001 - the publish stands; the log says how to redo this
        log.error(
            "realized metrics of %s v%s not recorded (%s: %s); record them with "
            "`fti monitor realized --model MODEL --refresh`",
            label_group,
            label_version,
            type(exc).__name__,
            exc,
        )
        return []


def record_realized_of_scored(
    settings: Settings, model: str, day: date, alias: str | None = None
) -> list[dict[str, Any]]:
    """``record_realized`` for one date ``model`` just scored, when the newest version of its
    label group already labels it: predictions written after their labels (past dates scored
    from the inference DAG's form or `fti infer --date`, a rollback's re-scoring) get their
    realized metrics at once instead of waiting for a label version that will never label the
    date again. Nothing when the labels have not matured. A failure is logged with the command
    that records them later, not raised: the predictions are written either way. ``alias``
    names the scores' alias in the log only. No alert is judged here: alerts follow labels.
    """
    try:
        label_group = load_project(settings.project).model(model).label.name
        store = FeatureStore(settings.store_path)
        try:
            version = store.resolve(label_group, "latest")
        except VersionNotFoundError:
            return []  # no labels yet
        with session_scope(settings.db_url) as session:
            newest = session.scalar(
                select(FeatureVersion.max_date).where(
                    FeatureVersion.group_name == label_group, FeatureVersion.version == version
                )
            )
        if newest is None or day > newest:
            return []  # not labelled yet: the label version that labels it records them
        rows = record_realized(settings, label_group, version, [day])
        return [r for r in rows if r["model_name"] == model]
    except Exception as exc:  # noqa: BLE001 - the scores stand; the log says how to redo this
        log.error(
            "realized metrics of %s%s on %s not recorded (%s: %s); record them with "
            "`fti monitor realized --model %s --refresh`",
            model,
            f" ({alias})" if alias else "",
            day,
            type(exc).__name__,
            exc,
            model,
        )
        return []


def refresh_realized(
    settings: Settings | None = None, model: str | None = None
) -> list[dict[str, Any]]:
    """Recompute the realized metrics of every date that has both predictions and labels in
    the newest version of the model's label group (all the project's models, or ``model``).

    For predictions written after their labels (a backfill of past dates) and for stores
    created before migration 0010.
    """
    settings = settings or get_settings()
    project = load_project(settings.project)
    chosen = [project.model(model)] if model else list(project.models)
    store = FeatureStore(settings.store_path)
    found: list[dict[str, Any]] = []
    for label_group in dict.fromkeys(m.label.name for m in chosen):
        try:
            version = store.resolve(label_group, "latest")
        except VersionNotFoundError:
            continue  # no labels yet
        names = [m.name for m in chosen if m.label.name == label_group]
        with session_scope(settings.db_url) as session:
            scored = {
                day
                for table in (Prediction, ShadowPrediction)
                for day in session.scalars(
                    select(table.as_of_date).where(table.model_name.in_(names)).distinct()
                )
            }
        days = sorted(scored & set(store.partition_dates(label_group, version)))
        rows = record_realized(settings, label_group, version, days)
        found += [r for r in rows if r["model_name"] in names]
    return found


def realized_rows(
    session: Session,
    model: str,
    versions: Iterable[int] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """The recorded realized metrics of ``model``, by as-of date then version."""
    query = (
        select(RealizedMetric)
        .where(RealizedMetric.model_name == model)
        .order_by(RealizedMetric.as_of_date, RealizedMetric.model_version)
    )
    if versions is not None:
        query = query.where(RealizedMetric.model_version.in_(list(versions)))
    if start is not None:
        query = query.where(RealizedMetric.as_of_date >= start)
    if end is not None:
        query = query.where(RealizedMetric.as_of_date <= end)
    return [as_dict(row) for row in session.scalars(query)]


def as_dict(row: RealizedMetric) -> dict[str, Any]:
    found = {name: getattr(row, name) for name in COLUMNS}
    found["as_of_date"] = row.as_of_date.isoformat()
    found["computed_at"] = row.computed_at.isoformat()
    return found


def compare_realized(session: Session, model: str, a: int, b: int) -> list[dict[str, Any]]:
    """Versions ``a`` and ``b`` of ``model`` on the as-of dates both have realized metrics
    for (the days a champion and a shadow-scored challenger share), oldest first."""
    by_day: dict[str, dict[int, dict[str, Any]]] = {}
    for row in realized_rows(session, model, [a, b]):
        by_day.setdefault(row["as_of_date"], {})[row["model_version"]] = row
    compared = []
    for day, pair in sorted(by_day.items()):
        if a in pair and b in pair:
            left, right = pair[a]["value"], pair[b]["value"]
            compared.append(
                {
                    "as_of_date": day,
                    "metric": pair[a]["metric"],
                    f"v{a}": left,
                    f"v{b}": right,
                    "delta": None if left is None or right is None else right - left,
                    f"rows_v{a}": pair[a]["rows"],
                    f"rows_v{b}": pair[b]["rows"],
                }
            )
    return compared


# ---- shadow scores -----------------------------------------------------------------------------
def write_shadow_slice(
    db_url: str, piece: Slice, alias: str, scores: Iterable[pa.RecordBatch]
) -> int:
    """Replace the shadow slice (model, version, as-of date) of ``piece`` with ``scores``
    (batches of ``fti.inference.write.SCORE_SCHEMA``), in one transaction; returns its rows.

    Raises:
        PredictionWriteError: the write failed and was rolled back; the previous shadow slice
            is unchanged.
    """
    rows = 0
    try:
        with (
            get_engine(db_url).connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
            connection.begin(),
        ):
            connection.execute(
                delete(ShadowPrediction).where(
                    ShadowPrediction.model_name == piece.model_name,
                    ShadowPrediction.model_version == piece.model_version,
                    ShadowPrediction.as_of_date == piece.as_of_date,
                )
            )
            lineage = piece.lineage() | {"alias": alias}
            for batch in scores:
                records = [lineage | row for row in batch.to_pylist()]
                for record in records:
                    for name in JSON_COLUMNS:
                        text = record.get(name)
                        record[name] = None if text is None else json.loads(text)
                if records:
                    connection.execute(insert(ShadowPrediction), records)
                rows += len(records)
    except Exception as exc:
        raise PredictionWriteError(
            f"writing shadow predictions of {piece.model_name} v{piece.model_version} for "
            f"{piece.as_of_date} failed and was rolled back; the previous shadow slice is "
            f"unchanged. Fix the cause and rerun the task. Cause: {type(exc).__name__}: {exc}"
        ) from exc
    return rows


# ---- one model and date -------------------------------------------------------------------------
def _record_day(
    settings: Settings,
    model: str,
    label_group: str,
    label_version: int,
    day: date,
    labels: pd.DataFrame,
) -> list[dict[str, Any]]:
    """Compute and replace the realized metrics of ``model``'s versions that scored ``day``."""
    with session_scope(settings.db_url) as session:
        scores = _scores(session, model, day)
        versions = {
            v: session.scalars(
                select(ModelVersion).where(ModelVersion.name == model, ModelVersion.version == v)
            ).one_or_none()
            for v in sorted(scores)
        }
        held = {
            v: shadow
            if isinstance(shadow := frame["alias"].iloc[0], str)
            else _alias_at(session, model, v, frame["scored_at"].min())
            for v, frame in scores.items()
        }
    computed = []
    for number, frame in scores.items():
        row = versions[number]
        if row is None or row.label_group != label_group:
            continue  # trained on another label group (or removed from the registry)
        try:
            estimator = None if row.task == "regression" else _load(row)
        except FtiError as exc:
            log.warning("realized metrics of %s v%s on %s skipped: %s", model, number, day, exc)
            continue
        result = realized(row.task, row.metric, frame, labels, estimator)
        computed.append(
            {
                "model_name": model,
                "model_version": number,
                "alias": held[number],
                "as_of_date": day,
                "label_group": label_group,
                "label_version": label_version,
                "prediction_run_id": str(frame["run_id"].iloc[0]),
                "rows_scored": len(frame),
                "holdout_value": _number(row.metrics.get(row.metric)),
                "computed_at": datetime.now(UTC),
                **result,
            }
        )
    if not computed:
        return []
    with session_scope(settings.db_url, write=True) as session:
        written = []
        for values in computed:
            session.execute(
                delete(RealizedMetric).where(
                    RealizedMetric.model_name == model,
                    RealizedMetric.model_version == values["model_version"],
                    RealizedMetric.as_of_date == day,
                )
            )
            written.append(RealizedMetric(**values))
        session.add_all(written)
        session.flush()
        return [as_dict(row) for row in written]


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
FEATURE_DAG = "feature_pipeline"  # the DAG whose publish of a label group judges them


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


def _load(row: ModelVersion) -> Any:
    return _artifact(row.artifact_uri, row.artifact_sha256)


@lru_cache(maxsize=8)
def _artifact(uri: str, sha256: str) -> Any:
    """A content-addressed artifact, loaded once for the dates of a run (never modified)."""
    return load_artifact(Path(uri), sha256)


# ---- reads --------------------------------------------------------------------------------------
def _changed_dates(session: Session, label_group: str, label_version: int) -> list[date]:
    catalog = session.scalars(
        select(FeatureVersion).where(
            FeatureVersion.group_name == label_group, FeatureVersion.version == label_version
        )
    ).one_or_none()
    if catalog is None:
        raise VersionNotFoundError(
            f"label group {label_group} v{label_version} is not in the catalog; "
            "see `fti features versions " + label_group + "`"
        )
    return sorted(date.fromisoformat(d) for d in catalog.changed_dates)


def _labels(
    store: FeatureStore, label_group: str, version: int, key: str, day: date
) -> pd.DataFrame:
    """The day's labels as (entity_id, label): the key as text, as predictions hold it."""
    table = store.read(label_group, version, [key, DATE_COLUMN, LABEL], dates=[day])
    frame = pd.DataFrame(
        {
            "entity_id": pc.cast(table.column(key), pa.string()).to_pandas(),
            LABEL: table.column(LABEL).to_pandas(),
        }
    )
    frame = frame[frame[LABEL].notna()]
    if pd.api.types.is_bool_dtype(frame[LABEL]) or pd.api.types.is_integer_dtype(frame[LABEL]):
        frame[LABEL] = frame[LABEL].astype("int64")  # as training casts them
    return frame.drop_duplicates("entity_id", keep="last").reset_index(drop=True)


def _scores(session: Session, model: str, day: date) -> dict[int, pd.DataFrame]:
    """The scores written for ``model`` on ``day``, per model version: the served slice's
    (``alias`` None) and the shadow slices' (``alias`` the one they were scored by)."""
    served = session.execute(
        select(*_SCORE_COLUMNS).where(Prediction.model_name == model, Prediction.as_of_date == day)
    ).all()
    shadow_columns = [getattr(ShadowPrediction, c.key) for c in _SCORE_COLUMNS]
    shadow = session.execute(
        select(*shadow_columns, ShadowPrediction.alias).where(
            ShadowPrediction.model_name == model, ShadowPrediction.as_of_date == day
        )
    ).all()
    names = [c.key for c in _SCORE_COLUMNS]
    found: dict[int, pd.DataFrame] = {}
    for rows, columns in ((served, [*names]), (shadow, [*names, "alias"])):
        frame = pd.DataFrame(rows, columns=columns)
        if "alias" not in frame:
            frame["alias"] = None
        for version, part in frame.groupby("model_version"):
            found.setdefault(int(version), part.reset_index(drop=True))  # served slice first
    return found


def _alias_at(session: Session, model: str, version: int, at: datetime) -> str | None:
    """The alias that held ``version`` at ``at`` (champion first), None when none did."""
    names = sorted(
        set(session.scalars(select(AliasEvent.alias).where(AliasEvent.name == model))),
        key=lambda name: (name != aliases.CHAMPION, name),
    )
    when = pd.Timestamp(at).to_pydatetime()
    for name in names:
        if aliases.holder_at(session, model, name, when) == version:
            return str(name)
    return None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


# ---- alerts -------------------------------------------------------------------------------------
class RealizedRules(BaseModel):
    """params.yaml's ``monitor.realized`` section: when realized performance is alarming.

    Over the newest ``window_days`` as-of dates of a model's realized metrics, each version's
    metric (the days' values weighted by their rows) is judged once it has ``min_rows`` rows:
    worse than ``thresholds[model]`` (in the metric's direction: below for scores, above for
    losses), or worse than the version's holdout figure by more than ``holdout_margin``.
    """

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(28, ge=1)
    min_rows: int = Field(100, ge=1)
    holdout_margin: float | None = Field(None, ge=0)
    thresholds: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_params(cls, section: dict[str, Any], where: str = "params.yaml") -> RealizedRules:
        """Raises ConfigError naming the file and the key when the section is malformed."""
        try:
            return cls.model_validate(section or {})
        except ValidationError as exc:
            problem = exc.errors()[0]
            key = ".".join(str(p) for p in problem["loc"])
            raise ConfigError(
                f"{where}: monitor.realized.{key}: {problem['msg']} (keys: window_days, "
                "min_rows, holdout_margin, thresholds: {model: value})"
            ) from exc


def realized_rules(settings: Settings) -> RealizedRules:
    """params.yaml's ``monitor.realized`` rules (its defaults when the section is absent).

    Raises:
        ConfigError: the section is malformed (names the file and the key).
    """
    section = load_params(settings.params_file, "monitor").get("realized") or {}
    return RealizedRules.from_params(section, str(settings.params_file))


@dataclass(frozen=True)
class Breach:
    """A model version whose realized metric over the window broke a rule."""

    model_name: str
    model_version: int
    alias: str | None
    metric: str
    value: float
    rows: int
    first_date: date
    last_date: date
    rule: str  # threshold | holdout
    limit: float

    @property
    def message(self) -> str:
        compared = (
            f"threshold {self.limit:.4g}"
            if self.rule == "threshold"
            else f"holdout {self.limit:.4g} minus the margin"
        )
        return (
            f"{self.model_name} v{self.model_version}: realized {self.metric} {self.value:.4g} "
            f"over {self.first_date}..{self.last_date} ({self.rows} rows) is worse than its "
            f"{compared}; see `fti monitor realized --model {self.model_name}`"
        )

    def as_dict(self) -> dict[str, Any]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return found | {
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
            "message": self.message,
        }


@dataclass(frozen=True)
class Window:
    """A model version's realized metric over the newest as-of dates of its model: the days'
    values weighted by their rows, over ``dates`` dates ``first_date`` .. ``last_date``."""

    model_name: str
    model_version: int
    alias: str | None
    metric: str
    value: float
    rows: int
    dates: int
    first_date: date
    last_date: date
    holdout_value: float | None

    def as_dict(self) -> dict[str, Any]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return found | {
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
        }


def realized_windows(session: Session, model: str, window_days: int) -> list[Window]:
    """Each version of ``model`` with realized metrics in the newest ``window_days`` as-of
    dates any of its versions has, by version (empty: nothing recorded yet)."""
    newest = session.scalar(
        select(func.max(RealizedMetric.as_of_date)).where(RealizedMetric.model_name == model)
    )
    if newest is None:
        return []
    first = newest - timedelta(days=window_days - 1)
    rows = realized_rows(session, model, start=first, end=newest)
    found = []
    for version in sorted({r["model_version"] for r in rows}):
        days = [r for r in rows if r["model_version"] == version and r["value"] is not None]
        count = sum(r["rows"] for r in days)
        if not days or count == 0:
            continue
        found.append(
            Window(
                model,
                version,
                days[-1]["alias"],
                days[-1]["metric"],
                sum(r["value"] * r["rows"] for r in days) / count,
                count,
                len(days),
                date.fromisoformat(days[0]["as_of_date"]),
                date.fromisoformat(days[-1]["as_of_date"]),
                days[-1]["holdout_value"],
            )
        )
    return found


def realized_breaches(session: Session, model: str, rules: RealizedRules) -> list[Breach]:
    """The versions of ``model`` whose realized metric over the newest ``window_days`` as-of
    dates breaks ``rules`` (empty: nothing to alert about, or too few rows to judge)."""
    breaches = []
    for window in realized_windows(session, model, rules.window_days):
        if window.rows < rules.min_rows:
            continue
        higher = metrics.higher_is_better(window.metric)
        limits = []
        if model in rules.thresholds:
            limits.append(("threshold", rules.thresholds[model], rules.thresholds[model]))
        holdout = window.holdout_value
        if rules.holdout_margin is not None and holdout is not None:
            margin = rules.holdout_margin if higher else -rules.holdout_margin
            limits.append(("holdout", holdout, holdout - margin))
        for rule, shown, limit in limits:
            if (window.value < limit) if higher else (window.value > limit):
                breaches.append(
                    Breach(
                        model,
                        window.model_version,
                        window.alias,
                        window.metric,
                        window.value,
                        window.rows,
                        window.first_date,
                        window.last_date,
                        rule,
                        shown,
                    )
                )
    return breaches


def realized_alerts(
    settings: Settings, models: Sequence[str], run_id: str | None = None
) -> list[Breach]:
    """The breaches of params.yaml's ``monitor.realized`` rules by ``models``, each logged as a
    warning and posted to ``FTI_ALERT_WEBHOOK_URL`` (``realized_below``, the same notifier as
    deadlines and failed tasks; ``run_id``: the feature run whose labels were judged). No
    section: the defaults, which judge nothing without ``thresholds`` or ``holdout_margin``."""
    rules = realized_rules(settings)
    with session_scope(settings.db_url) as session:
        found = [b for model in models for b in realized_breaches(session, model, rules)]
    for breach in found:
        log.warning("fti: realized performance alert: %s", breach.message)
        payload = notify.alert(
            event="realized_below",
            project=settings.project,
            dag_id=FEATURE_DAG,
            run_id=run_id or "",
            logical_date=None,
            what=f"model {breach.model_name} v{breach.model_version}",
            reason=breach.message,
            link=notify.run_link(os.environ.get("AIRFLOW__API__BASE_URL"), FEATURE_DAG, run_id)
            if run_id
            else "",
            breach=breach.as_dict(),
        )
        notify.send(payload, settings.alert_webhook_url)
    return found
