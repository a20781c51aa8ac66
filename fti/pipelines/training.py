"""The training pipeline's steps: a model's point-in-time training set, a trained and
registered version, and its promotion when it beats the champion.

``build_training_set`` writes the set (Parquet, with its lineage beside it as JSON);
``train_model`` fits, evaluates and registers a version (``try_training``: the dry run);
``promote_if_better`` gates the champion alias. ``load_estimator`` and ``feature_names``
read a registered version back, for the gate here and for scoring (fti.pipelines.inference).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import func, select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, ValidationRun
from fti.definitions import LABEL, LABEL_DATE, Model, ModelFeature, Project
from fti.errors import FtiError
from fti.inference.score import predict
from fti.lineage import code_version, library_versions
from fti.monitoring import drift
from fti.ownership import MODEL, claim
from fti.params import load_params, model_params
from fti.pipelines.runs import setup
from fti.registry import aliases
from fti.registry.versions import (
    check_loadable,
    find_identical,
    get_version,
    lock_model,
    register_version,
)
from fti.settings import Settings, file_safe
from fti.store.statistics import column_statistics
from fti.store.versions import FeatureStore
from fti.training import metrics
from fti.training.artifacts import artifact_bytes, load_artifact, store_artifact
from fti.training.dataset import TooFewRows, TrainingSet
from fti.training.dataset import build_training_set as _build_set
from fti.training.fit import fit
from fti.training.promotion import gate, shared_holdout

log = logging.getLogger("fti.pipelines")  # every step's logger (see fti/pipelines/__init__.py)


def _training_set_paths(settings: Settings, model: str, run_id: str) -> tuple[Path, Path]:
    root = settings.staging_path / "training" / model
    return root / f"{file_safe(run_id)}.parquet", root / f"{file_safe(run_id)}.json"


def build_training_set(
    model_name: str,
    versions: Mapping[str, str | int] | None,
    as_of: date | None,
    run_id: str,
    settings: Settings | None = None,
    features: Sequence[str] | None = None,
) -> str:
    """Point-in-time training set of a model: its label group version joined with its feature
    group versions. ``versions`` maps group names (feature and label) to a version or
    ``latest`` (the default, resolved now; the numbers are what gets recorded); ``features``
    picks other features than the definition's (``group.column`` or ``group.*``)."""
    settings, project = setup(settings)
    model = project.model(model_name)
    chosen = project.model_features(model, features or None)
    groups = list(dict.fromkeys(f.group for f in chosen))
    wanted = dict(versions or {})
    store = FeatureStore(settings.store_path)
    resolved = {g: store.resolve(g, wanted.get(g, "latest")) for g in groups}
    label_version = store.resolve(model.label.name, wanted.get(model.label.name, "latest"))
    as_of = as_of or store.partition_dates(groups[0], resolved[groups[0]])[-1]
    try:
        training = _build_set(store, project, model, resolved, label_version, as_of, chosen)
    except TooFewRows as exc:
        raise TooFewRows(f"{exc}{_quarantine_note(settings, project, model, as_of)}") from exc
    data_path, meta_path = _training_set_paths(settings, model.name, run_id)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    training.frame.to_parquet(data_path, index=False)
    meta_path.write_text(
        json.dumps(
            {
                "model": model.name,
                "feature_versions": training.feature_versions,
                "label_group": training.label_group,
                "label_version": training.label_version,
                "as_of": as_of.isoformat(),
                "features": [{"group": f.group, "name": f.name} for f in chosen],
                "feature_dtypes": training.feature_dtypes,
                "feature_groups": training.feature_groups,
                "train_dates": [d.isoformat() for d in training.train_dates],
                "holdout_dates": [d.isoformat() for d in training.holdout_dates],
            }
        )
    )
    return str(data_path)


def _quarantine_note(settings: Settings, project: Project, model: Model, as_of: date) -> str:
    """When validation set rows of the model's sources aside up to ``as_of``: how many, as a
    sentence (a training window may be short of rows because its days' rows went to
    quarantine); else nothing."""
    groups = [project.readable_group(g) for g in project.model_groups(model)] + [model.label]
    sources = sorted({s.name for g in groups for s in g.sources})
    runs = ValidationRun.source.in_(sources) & (ValidationRun.logical_date <= as_of)
    with session_scope(settings.db_url) as session:
        read, quarantined, rejected = session.execute(
            select(
                func.coalesce(func.sum(ValidationRun.rows_read), 0),
                func.coalesce(func.sum(ValidationRun.rows_quarantined), 0),
                func.count().filter(ValidationRun.status == "rejected"),
            ).where(runs)
        ).one()
    if not quarantined and not rejected:
        return ""
    return (
        f" Validation set aside {quarantined} of the {read} rows read from {', '.join(sources)} "
        f"up to {as_of} ({rejected} file(s) rejected): see `fti quarantine list`."
    )


def _training_set_meta(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).with_suffix(".json").read_text()))


def load_training_set(path: str) -> tuple[TrainingSet, list[ModelFeature]]:
    meta = _training_set_meta(path)
    frame = pd.read_parquet(Path(path))
    frame[LABEL_DATE] = pd.to_datetime(frame[LABEL_DATE]).dt.date
    training = TrainingSet(
        frame=frame,
        model=meta["model"],
        feature_versions={g: int(v) for g, v in meta["feature_versions"].items()},
        label_group=meta["label_group"],
        label_version=int(meta["label_version"]),
        feature_dtypes=meta["feature_dtypes"],
        feature_groups=meta["feature_groups"],
        train_dates=[date.fromisoformat(d) for d in meta["train_dates"]],
        holdout_dates=[date.fromisoformat(d) for d in meta["holdout_dates"]],
    )
    return training, [ModelFeature(f["group"], f["name"]) for f in meta["features"]]


def _plan(
    training_set_path: str, overrides: dict[str, Any] | None, settings: Settings, project: Project
) -> tuple[TrainingSet, Model, list[ModelFeature], dict[str, Any]]:
    """What a training run fits: the training set, the model, its features and params."""
    training, chosen = load_training_set(training_set_path)
    model = project.model(training.model)
    params = model_params(settings.params_file, model.name) | (overrides or {})
    picked = params.pop("features", None)
    if picked:
        chosen = project.model_features(model, list(picked))
    unknown = [
        f"{f.group}.{f.name}" for f in chosen if training.feature_groups.get(f.name) != f.group
    ]
    if unknown:
        raise FtiError(
            f"feature(s) {unknown} are not in this training set of {model.name} (it read "
            f"{', '.join(f'{g} v{v}' for g, v in training.feature_versions.items())}); "
            "build the training set with those features"
        )
    return training, model, chosen, params


def _fit_candidate(
    training: TrainingSet, model: Model, chosen: list[ModelFeature], params: dict[str, Any]
) -> tuple[Any, dict[str, float]]:
    """Fit on the training dates, evaluate on the holdout: the model and its metrics."""
    names = [f.name for f in chosen]
    estimator = fit(model.estimator(params, names), model.task, training.train, names, LABEL)
    holdout = training.holdout
    scores = metrics.holdout_metrics(
        model.task, model.metric, estimator, holdout[names], holdout[LABEL]
    )
    return estimator, scores


def try_training(
    training_set_path: str,
    overrides: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, float]:
    """A dry run of train_model: fit and evaluate, store nothing; returns the holdout metrics."""
    settings, project = setup(settings)
    scores = _fit_candidate(*_plan(training_set_path, overrides, settings, project))[1]
    log.info("dry run: nothing registered; holdout metrics %s", scores)
    return scores


def train_model(
    training_set_path: str,
    run_id: str,
    overrides: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> int:
    """Fit on the training dates, evaluate on the holdout, store the artifact, register a version.

    ``overrides`` replace params.yaml's ``train.<model>`` values; its ``features`` key (a
    list) picks features among those the training set read.

    Idempotent: when a version was already trained on the same group and label versions,
    training window, features, params and code version, that version is returned and nothing
    is registered (a re-run backfill does not make a copy of the last model).
    """
    settings, project = setup(settings)
    training, model, chosen, params = _plan(training_set_path, overrides, settings, project)
    with session_scope(settings.db_url) as session:
        same = find_identical(
            session,
            model.name,
            feature_versions=training.feature_versions,
            label_group=training.label_group,
            label_version=training.label_version,
            features=[{"group": f.group, "name": f.name} for f in chosen],
            params=params,
            code_version=code_version(),
            train_start=min(training.train_dates),
            train_end=max(training.holdout_dates),
        )
    if same is not None:
        log.info("%s v%s was trained on exactly this; not registered again", model.name, same)
        return same
    estimator, scores = _fit_candidate(training, model, chosen, params)
    names = [f.name for f in chosen]
    artifact = artifact_bytes(estimator)
    train_table = pa.Table.from_pandas(training.train[names], preserve_index=False)
    spine = next(iter(training.feature_versions))
    holdout_outputs = predict(model.task, estimator, training.holdout[names])
    with session_scope(settings.db_url, write=True) as session:
        lock_model(session, model.name)  # retention removes artifacts under it (see store_artifact)
        claim(session, MODEL, model.name, project.name, run_id)  # refused: no artifact stored
        path, digest = store_artifact(artifact, settings.artifacts_path)
        row = register_version(
            session,
            model.name,
            project.name,
            artifact_uri=str(path),
            artifact_sha256=digest,
            estimator=_describe(estimator),
            params=params,
            metrics=scores,
            task=model.task,
            metric=model.metric,
            feature_group=spine,
            feature_version=training.feature_versions[spine],
            feature_versions=training.feature_versions,
            features=[
                {
                    "name": f.name,
                    "group": f.group,
                    "dtype": training.feature_dtypes[f.name],
                    "ttl_days": int(model.ttl.get(f.group, 0)),
                }
                for f in chosen
            ],
            label=f"{training.label_group} v{training.label_version} "
            f"(horizon {model.label.horizon_days} days)",
            label_group=training.label_group,
            label_version=training.label_version,
            train_start=min(training.train_dates),
            train_end=max(training.holdout_dates),
            n_train=len(training.train),
            n_holdout=len(training.holdout),
            library_versions=library_versions(),
            code_version=code_version(),
            run_id=run_id,
            promotion=None,
            training_statistics=column_statistics(train_table),
            drift_reference=drift.reference(
                {name: train_table.column(name) for name in names},
                holdout_outputs.observed,
                numeric_prediction=model.task == "regression",
            ),
        )
        return row.version


def _describe(model: Any) -> str:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return f"{type(model).__module__}.{type(model).__name__}({type(final).__name__})"


def promote_if_better(
    training_set_path: str, version: int, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Make ``version`` champion when it beats the champion on the same holdout rows, by the
    model's own metric and params.yaml's ``promote`` section: by more than ``margin`` and
    beyond noise (the paired-bootstrap interval of the gain, ``confidence``,
    ``bootstrap_resamples``). The rows are the holdout of the newer of the candidate's and the
    champion's as-of dates (fti.training.promotion.shared_holdout).

    The decision, with both scores, the gain and its interval and the holdout's as-of date,
    is stored on the candidate's registry row. Returned with the model, version, feature
    versions, label version and as-of date: what a new model version's asset event tells the
    model's inference DAG.
    """
    settings, project = setup(settings)
    training, chosen = load_training_set(training_set_path)
    model = project.model(training.model)
    section = load_params(settings.params_file, "promote")
    margin = float(section.get("margin", 0.0))
    as_of = date.fromisoformat(_training_set_meta(training_set_path)["as_of"])
    # One write transaction: the champion cannot change between comparing and promoting.
    with session_scope(settings.db_url, write=True) as session:
        lock_model(session, model.name)
        candidate = get_version(session, model.name, version)
        held_by = aliases.current(session, model.name, aliases.CHAMPION)
        champion = get_version(session, model.name, held_by) if held_by is not None else None
        if held_by == version:  # an identical re-training returned the champion itself
            kept: dict[str, Any] = {
                "metric": model.metric,
                "margin": margin,
                "candidate_version": version,
                "promoted": False,
                "reason": f"v{version} is already champion",
            }
            return _promotion_summary(kept, model, version, training, training_set_path)
        store = FeatureStore(settings.store_path)
        holdout, where = shared_holdout(store, project, model, training, chosen, as_of, champion)
        decision = gate(
            model.metric,
            section,
            holdout,
            LABEL,
            (version, load_estimator(candidate), feature_names(candidate)),
            (champion.version, load_estimator(champion), feature_names(champion))
            if champion
            else None,
        )
        decision |= where  # which holdout: its as-of date, label dates, rows, versions
        candidate.promotion = decision
        if decision["promoted"]:
            aliases.set_alias(
                session,
                model.name,
                aliases.CHAMPION,
                version,
                "training_pipeline",
                decision["reason"],
                run_id,
            )
    return _promotion_summary(decision, model, version, training, training_set_path)


def _promotion_summary(
    decision: dict[str, Any], model: Model, version: int, training: TrainingSet, path: str
) -> dict[str, Any]:
    return {
        **decision,
        "model": model.name,
        "model_version": version,
        "feature_versions": training.feature_versions,
        "feature_version": training.feature_versions[next(iter(training.feature_versions))],
        "label_version": training.label_version,
        "as_of": _training_set_meta(path)["as_of"],
    }


def feature_names(row: ModelVersion) -> list[str]:
    """The names of the features a registered version was trained on, in its order."""
    return [f["name"] for f in row.features]


def load_estimator(row: ModelVersion) -> Any:
    """A registered version's fitted model, its artifact checked against its sha256 first
    (a version retention pruned says so: its artifact is gone)."""
    check_loadable(row)
    return load_artifact(Path(row.artifact_uri), row.artifact_sha256)
