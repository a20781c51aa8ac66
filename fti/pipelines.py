"""One function per pipeline task. Airflow tasks, dvc.yaml stages and the CLI all call these.

Each takes plain arguments, reads the settings when it runs, and returns a small pointer
(a path, a version number, a summary dict), never the data itself.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction
from fti.errors import FtiError, VersionNotFoundError
from fti.features.build import build_partitions, read_partitions, window_start, write_partitions
from fti.features.events import load_events, raw_file, staged_file, validate_and_stage
from fti.inference.runs import fail_run, start_run, update_run
from fti.inference.score import read_spool, score_to_spool
from fti.inference.skew import ServingProfile, check_features
from fti.inference.write import Slice, write_slice
from fti.lineage import code_version, library_versions
from fti.monitoring import drift
from fti.monitoring.results import record_drift
from fti.params import load_params
from fti.project import Project, load_project
from fti.registry import aliases
from fti.registry.versions import get_version, lock_model, register_version
from fti.settings import Settings, file_safe, get_settings
from fti.store.catalog import record_version
from fti.store.statistics import column_statistics
from fti.store.versions import FeatureStore, PublishedVersion, read_partition_in_work_tree
from fti.training.artifacts import load_artifact, save_artifact
from fti.training.dataset import LABEL, LABEL_DATE, TrainingSet
from fti.training.dataset import build_training_set as _build_set
from fti.training.fit import evaluate, fit
from fti.training.promotion import gate

log = logging.getLogger(__name__)


def quarantine_root(settings: Settings) -> Path:
    """Where the Parquet copies of quarantined rows live: in the store, outside git."""
    return settings.store_path / "quarantine"


def days(start: date, end: date) -> list[date]:
    if end < start:
        raise FtiError(f"date range is empty: end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _setup(settings: Settings | None) -> tuple[Settings, Project]:
    settings = settings or get_settings()
    return settings, load_project(settings.project)


# ---- feature pipeline ------------------------------------------------------------------------
def validate_raw_events(
    start: date, end: date, run_id: str, settings: Settings | None = None
) -> dict[str, int]:
    """Validate the raw files of [start, end]: stage accepted rows, record quarantined ones."""
    settings, project = _setup(settings)
    totals = {"files": 0, "rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0}
    for day in days(start, end):
        with session_scope(settings.db_url) as session:
            result = validate_and_stage(
                session,
                project.source,
                settings.raw_path,
                settings.staging_path,
                day,
                run_id,
                settings.max_quarantine_share,
                quarantine_root(settings),
            )
        totals["files"] += 1
        totals["rows_read"] += result.rows_read
        totals["rows_accepted"] += result.rows_accepted
        totals["rows_quarantined"] += result.rows_quarantined
    return totals


def build_features(start: date, end: date, run_id: str, settings: Settings | None = None) -> str:
    """Compute the feature group's partitions for [start, end]; return the staged folder."""
    settings, project = _setup(settings)
    group = project.feature_group
    first = window_start(group, start)
    # Days of the look-back window that have raw files but were never validated (e.g. history).
    for day in days(first, end):
        if (
            not staged_file(settings.staging_path, project.source, day).exists()
            and raw_file(settings.raw_path, project.source.name, day).exists()
        ):
            validate_raw_events(day, day, run_id, settings)
    for day in days(start, end):
        if not staged_file(settings.staging_path, project.source, day).exists():
            raise FtiError(
                f"no validated {project.source.name} events for {day}: run validate_raw_events for it first"
            )
    events = load_events(settings.staging_path, project.source, first, end)
    partitions = build_partitions(group, events, days(start, end))
    root = settings.staging_path / "features" / group.name / f"{start}_{end}"
    return str(write_partitions(root, partitions))


def publish_features(partitions_path: str, run_id: str, settings: Settings | None = None) -> int:
    """Publish staged partitions as a new immutable version and record it in the catalog."""
    settings, project = _setup(settings)
    group = project.feature_group.name
    partitions = read_partitions(Path(partitions_path))
    store = FeatureStore(settings.store_path)
    dates = sorted(partitions)

    def record(published: PublishedVersion) -> None:  # before the tag: both land or neither
        with session_scope(settings.db_url, write=True) as session:
            record_version(
                session,
                published,
                partitions,
                run_id,
                lambda day: read_partition_in_work_tree(store, group, day),
            )

    published = store.publish(
        group,
        partitions,
        f"{len(dates)} partition(s) {dates[0]}..{dates[-1]} by {run_id}",
        record=record,
    )
    return published.version


# ---- training pipeline -----------------------------------------------------------------------
def _training_set_paths(settings: Settings, model: str, run_id: str) -> tuple[Path, Path]:
    safe = file_safe(run_id)
    root = settings.staging_path / "training" / model
    return root / f"{safe}.parquet", root / f"{safe}.json"


def build_training_set(
    feature_version: str | int, as_of: date | None, run_id: str, settings: Settings | None = None
) -> str:
    """Point-in-time training set from a feature version (``latest`` resolved now)."""
    settings, project = _setup(settings)
    store = FeatureStore(settings.store_path)
    version = store.resolve(project.feature_group.name, feature_version)
    as_of = as_of or store.partition_dates(project.feature_group.name, version)[-1]
    first = as_of - timedelta(days=project.model.training_days + 2 * project.label.horizon_days)
    events = load_events(settings.staging_path, project.source, first, as_of)
    training = _build_set(store, project, version, as_of, events)
    data_path, meta_path = _training_set_paths(settings, project.model.name, run_id)
    data_path.parent.mkdir(parents=True, exist_ok=True)
    training.frame.to_parquet(data_path, index=False)
    meta_path.write_text(
        json.dumps(
            {
                "feature_version": version,
                "as_of": as_of.isoformat(),
                "feature_dtypes": training.feature_dtypes,
                "train_dates": [d.isoformat() for d in training.train_dates],
                "holdout_dates": [d.isoformat() for d in training.holdout_dates],
            }
        )
    )
    return str(data_path)


def _training_set_meta(path: str) -> dict[str, Any]:
    return dict(json.loads(Path(path).with_suffix(".json").read_text()))


def load_training_set(path: str) -> TrainingSet:
    data_path = Path(path)
    meta = _training_set_meta(path)
    frame = pd.read_parquet(data_path)
    frame[LABEL_DATE] = pd.to_datetime(frame[LABEL_DATE]).dt.date
    return TrainingSet(
        frame=frame,
        feature_version=int(meta["feature_version"]),
        feature_dtypes=meta["feature_dtypes"],
        train_dates=[date.fromisoformat(d) for d in meta["train_dates"]],
        holdout_dates=[date.fromisoformat(d) for d in meta["holdout_dates"]],
    )


def _fit_candidate(
    training_set_path: str, overrides: dict[str, Any] | None, settings: Settings, project: Project
) -> tuple[Any, dict[str, float], list[str], dict[str, Any], TrainingSet]:
    """Fit on the training dates and evaluate on the holdout: model, metrics, features, params."""
    params = load_params(settings.params_file, "train") | (overrides or {})
    features = list(params.pop("features", None) or project.model.features)
    training = load_training_set(training_set_path)
    unknown = [f for f in features if f not in training.feature_dtypes]
    if unknown:
        raise FtiError(
            f"feature(s) {unknown} are not in {project.feature_group.name} "
            f"v{training.feature_version}; it has {sorted(training.feature_dtypes)}"
        )
    model = fit(project.model.make_estimator(params, features), training.train, features, LABEL)
    metrics = evaluate(model, training.holdout, features, LABEL)
    return model, metrics, features, params, training


def try_training(
    training_set_path: str,
    overrides: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, float]:
    """A dry run of train_model: fit and evaluate, store nothing; returns the holdout metrics."""
    settings, project = _setup(settings)
    metrics = _fit_candidate(training_set_path, overrides, settings, project)[1]
    log.info("dry run: %s not registered; holdout metrics %s", project.model.name, metrics)
    return metrics


def train_model(
    training_set_path: str,
    run_id: str,
    overrides: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> int:
    """Fit on the training dates, evaluate on the holdout, store the artifact, register a version.

    ``overrides`` replace params.yaml's train section; its ``features`` key (a list) picks the
    model's features from the group, the project's own list by default.
    """
    settings, project = _setup(settings)
    spec = project.model
    model, metrics, features, params, training = _fit_candidate(
        training_set_path, overrides, settings, project
    )
    path, digest = save_artifact(model, settings.artifacts_path)
    train_table = pa.Table.from_pandas(training.train[features], preserve_index=False)
    with session_scope(settings.db_url, write=True) as session:
        row = register_version(
            session,
            spec.name,
            artifact_uri=str(path),
            artifact_sha256=digest,
            estimator=_describe(model),
            params=params,
            metrics=metrics,
            feature_group=project.feature_group.name,
            feature_version=training.feature_version,
            features=[{"name": f, "dtype": training.feature_dtypes[f]} for f in features],
            label=f"{project.label.name} (horizon {project.label.horizon_days} days)",
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
                {name: train_table.column(name) for name in features},
                model.predict_proba(training.holdout[features])[:, 1],
            ),
        )
        return row.version


def _describe(model: Any) -> str:
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    return f"{type(model).__module__}.{type(model).__name__}({type(final).__name__})"


def promote_if_better(
    training_set_path: str, version: int, run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Make ``version`` champion when it beats the champion on the same holdout rows.

    The decision, with both scores, is stored on the candidate's registry row. Returned with
    the version, its feature version and as-of date: what a new model version's asset event
    tells the inference DAG.
    """
    settings, project = _setup(settings)
    name = project.model.name
    rules = load_params(settings.params_file, "promote")
    metric = str(rules.get("metric", project.model.metric))
    margin = float(rules.get("margin", 0.0))
    holdout = load_training_set(training_set_path).holdout
    # One write transaction: the champion cannot change between comparing and promoting.
    with session_scope(settings.db_url, write=True) as session:
        lock_model(session, name)
        candidate = get_version(session, name, version)
        held_by = aliases.current(session, name, aliases.CHAMPION)
        champion = get_version(session, name, held_by) if held_by is not None else None
        decision = gate(
            metric,
            margin,
            holdout,
            LABEL,
            (version, _load(candidate), _feature_names(candidate)),
            (champion.version, _load(champion), _feature_names(champion)) if champion else None,
        )
        candidate.promotion = decision
        if decision["promoted"]:
            aliases.set_alias(
                session,
                name,
                aliases.CHAMPION,
                version,
                "training_pipeline",
                decision["reason"],
                run_id,
            )
    meta = _training_set_meta(training_set_path)
    return {
        **decision,
        "model_version": version,
        "feature_version": int(meta["feature_version"]),
        "as_of": meta["as_of"],
    }


def _feature_names(row: ModelVersion) -> list[str]:
    return [f["name"] for f in row.features]


def _load(row: ModelVersion) -> Any:
    return load_artifact(Path(row.artifact_uri), row.artifact_sha256)


# ---- inference pipeline ----------------------------------------------------------------------
def feature_version_for(
    store: FeatureStore, group: str, as_of: date, ref: str | int = "latest"
) -> int:
    """The named version, or for ``latest`` the newest version that holds ``as_of``."""
    if str(ref) != "latest":
        version = store.resolve(group, ref)
        if as_of not in store.partition_dates(group, version):
            raise VersionNotFoundError(f"{group} v{version} holds no features for {as_of}")
        return version
    for version in reversed(store.versions(group)):
        if as_of in store.partition_dates(group, version):
            return version
    raise VersionNotFoundError(
        f"no version of {group} holds features for {as_of}; run the feature pipeline for that date first"
    )


def score_batch(
    as_of: date,
    run_id: str,
    model: str = aliases.CHAMPION,
    feature_version: str | int = "latest",
    settings: Settings | None = None,
    airflow_run_id: str | None = None,
    logical_date: date | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Score every entity in the features of ``as_of`` and replace that prediction slice.

    The run is recorded as running first, so a run that fails anywhere (no champion, no
    features for the date, a tampered artifact, the database going away mid-write) is marked
    failed with its error, and the previous slice stays. ``airflow_run_id`` and
    ``logical_date`` (from the DAG run) go on the run and on every row. A ``dry_run`` does
    every check and scores, but records no run, no drift and no predictions.
    """
    settings, project = _setup(settings)
    name, group = project.model.name, project.feature_group
    db = settings.db_url

    def note(**fields: Any) -> None:
        if not dry_run:
            update_run(db, run_id, **fields)

    if not dry_run:
        start_run(db, run_id, name, as_of, airflow_run_id, logical_date)
    clock = time.perf_counter()
    try:
        store = FeatureStore(settings.store_path)
        with session_scope(db) as session:
            row = get_version(session, name, aliases.resolve(session, name, model))
        note(model_version=row.version, feature_group=row.feature_group)
        fv = feature_version_for(store, row.feature_group, as_of, feature_version)
        note(feature_version=fv)
        serving = {f.name: str(f.type) for f in store.schema(row.feature_group, fv, [as_of])}
        check_features(
            f"{name} v{row.version}", row.features, serving, f"{row.feature_group} v{fv}"
        )
        estimator = _load(row)
        names = _feature_names(row)
        profile = ServingProfile(names, row.training_statistics or {})
        counter = drift.DriftCounter(row.drift_reference or {}, names)
        with tempfile.TemporaryDirectory(prefix="fti-scores-") as spool_dir:
            spool = Path(spool_dir) / "scores.parquet"
            batches = store.scanner(row.feature_group, fv, [group.entity, *names], [as_of])
            score_to_spool(
                estimator, batches.to_batches(), group.entity, names, spool, [profile, counter]
            )
            warnings = profile.warnings()
            for warning in warnings:
                log.warning(
                    "skew guard, %s v%s on %s: %s", name, row.version, as_of, warning["message"]
                )
            results = counter.compare(
                drift.Thresholds.from_params(load_params(settings.params_file, "monitor"))
            )
            drifted = (
                [r for r in results if r["breached"]]
                if dry_run
                else record_drift(db, run_id, results)
            )
            for result in drifted:
                log.warning(
                    "drift, %s v%s on %s: %s PSI %.3f over the threshold",
                    name,
                    row.version,
                    as_of,
                    result["feature"],
                    result["psi"],
                )
            note(warnings=warnings, drift_breached=bool(drifted))
            piece = Slice(
                model_name=name,
                model_version=row.version,
                feature_group=row.feature_group,
                feature_version=fv,
                as_of_date=as_of,
                run_id=run_id,
                scored_at=datetime.now(UTC),
                airflow_run_id=airflow_run_id,
                logical_date=logical_date,
            )
            if dry_run:
                count = pq.ParquetFile(spool).metadata.num_rows
                log.info("dry run: %s rows scored for %s, none written", count, as_of)
            else:
                count = write_slice(db, piece, read_spool(spool))
    except Exception as exc:
        if not dry_run:
            fail_run(db, run_id, exc)
        raise
    return {
        "run_id": run_id,
        "model": name,
        "model_version": row.version,
        "feature_group": row.feature_group,
        "feature_version": fv,
        "as_of_date": as_of.isoformat(),
        "rows": count,
        "warnings": [w["message"] for w in warnings],
        "drift_breached": [r["feature"] for r in drifted],
        "seconds": round(time.perf_counter() - clock, 3),
        "dry_run": dry_run,
    }


def rollback_model(
    model: str, alias: str, actor: str, reason: str, rescore: bool, settings: Settings | None = None
) -> dict[str, Any]:
    """Re-point ``alias`` to its previous holder; re-score the dates the replaced version scored."""
    settings, _ = _setup(settings)
    with session_scope(settings.db_url, write=True) as session:
        event = aliases.rollback(session, model, alias, actor, reason)
        replaced, restored = event.from_version, event.to_version
        dates = sorted(
            session.scalars(
                select(Prediction.as_of_date)
                .where(Prediction.model_name == model, Prediction.model_version == replaced)
                .distinct()
            )
        )
    rescored = []
    if rescore:
        for day in dates:
            score_batch(
                day,
                f"rollback__{model}__v{replaced}__{day}__{time.time_ns()}",
                str(restored),
                "latest",
                settings,
            )
            rescored.append(day.isoformat())
    return {"from_version": replaced, "to_version": restored, "rescored": rescored}


def scoring_waits_for(
    as_of: date,
    model: str = aliases.CHAMPION,
    feature_version: str | int = "latest",
    settings: Settings | None = None,
) -> list[str]:
    """What scoring ``as_of`` still waits for (the inference DAG's sensor): empty when ready.

    Missing features for the date and an alias nobody holds yet are waited for; a version
    number that does not exist is an error now (waiting would not make it appear).
    """
    settings, project = _setup(settings)
    waiting = []
    try:
        feature_version_for(
            FeatureStore(settings.store_path), project.feature_group.name, as_of, feature_version
        )
    except VersionNotFoundError as exc:
        waiting.append(str(exc))
    with session_scope(settings.db_url) as session:
        ref = str(model).removeprefix("v")
        if ref.isdigit():
            get_version(session, project.model.name, int(ref))
        elif aliases.current(session, project.model.name, str(model)) is None:
            waiting.append(f"model {project.model.name!r} has no {model} yet")
    return waiting
