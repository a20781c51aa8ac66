"""The inference pipeline's steps: score a model's slice of a date, shadow-score it with
the challenger, tell whether a date is ready or already scored, roll an alias back.

``score_batch`` reads exactly the features the model version was trained on (skew guard),
records drift and replaces the date's prediction slice; ``score_shadow`` writes the
challenger's beside it; ``scoring_waits_for`` and ``already_scored`` are what the inference
DAG asks before scoring; ``rollback_model`` re-points an alias and re-scores its dates.
"""

from __future__ import annotations

import logging
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction, PredictionRun
from fti.definitions import Project
from fti.errors import FtiError, VersionNotFoundError
from fti.inference.features import GroupRead, feature_batches, model_groups
from fti.inference.runs import fail_run, start_run, update_run
from fti.inference.score import read_spool, score_to_spool
from fti.inference.skew import ServingProfile, check_features
from fti.inference.write import Slice, write_slice
from fti.monitoring import drift
from fti.monitoring.realized import record_realized_of_scored, write_shadow_slice
from fti.monitoring.results import record_drift
from fti.params import load_params
from fti.pipelines.runs import check_dates, setup
from fti.pipelines.training import feature_names, load_estimator
from fti.registry import aliases
from fti.registry.versions import get_version
from fti.settings import Settings
from fti.store.versions import FeatureStore

log = logging.getLogger("fti.pipelines")  # every step's logger (see fti/pipelines/__init__.py)


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


def _group_reads(
    project: Project, row: ModelVersion, store: FeatureStore, as_of: date, spine_ref: str | int
) -> list[GroupRead]:
    """What scoring reads: each group of the model version, spine first, at its version.

    The spine at the newest version holding the date (or the one named); the other groups at
    their latest version, of which rows at most their TTL old count.
    """
    reads = []
    for name, trained in model_groups(row.feature_group, row.features):
        version = (
            feature_version_for(store, name, as_of, spine_ref)
            if name == row.feature_group
            else store.resolve(name, "latest")
        )
        serving = {f.name: str(f.type) for f in store.schema(name, version)}
        check_features(f"{row.name} v{row.version}", trained, serving, f"{name} v{version}")
        reads.append(
            GroupRead(
                group=name,
                version=version,
                key=project.feature_group(name).entity.key,
                columns=[f["name"] for f in trained],
                ttl_days=int(trained[0].get("ttl_days", 0)),
            )
        )
    return reads


def _slice(
    name: str,
    row: ModelVersion,
    versions: dict[str, int],
    as_of: date,
    run_id: str,
    airflow_run_id: str | None,
    logical_date: date | None,
) -> Slice:
    """The prediction slice of ``row`` scoring ``as_of``, with its lineage, scored now."""
    return Slice(
        model_name=name,
        model_version=row.version,
        feature_group=row.feature_group,
        feature_version=versions[row.feature_group],
        as_of_date=as_of,
        run_id=run_id,
        scored_at=datetime.now(UTC),
        airflow_run_id=airflow_run_id,
        logical_date=logical_date,
    )


def score_batch(
    model_name: str,
    as_of: date,
    run_id: str,
    model: str = aliases.CHAMPION,
    feature_version: str | int = "latest",
    settings: Settings | None = None,
    airflow_run_id: str | None = None,
    logical_date: date | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Score every entity the model's spine group has on ``as_of`` and replace that slice.

    ``model`` is an alias or a version number; ``feature_version`` the spine group's version
    (``latest``: the newest holding the date). The run is recorded as running first, so a run
    that fails anywhere (no champion, no features for the date, a tampered artifact, the
    database going away mid-write) is marked failed with its error, and the previous slice
    stays. ``airflow_run_id`` and ``logical_date`` (from the DAG run) go on the run and on
    every row. A ``dry_run`` does every check and scores, but records no run, no drift and no
    predictions.
    """
    settings, project = setup(settings)
    spec = project.model(model_name)
    check_dates(project, as_of, as_of)
    name = spec.name
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
        reads = _group_reads(project, row, store, as_of, feature_version)
        versions = {r.group: r.version for r in reads}
        note(feature_version=versions[row.feature_group], feature_versions=versions)
        estimator = load_estimator(row)
        names = feature_names(row)
        task = getattr(row, "task", None) or spec.task
        profile = ServingProfile(names, row.training_statistics or {})
        counter = drift.DriftCounter(row.drift_reference or {}, names)
        with tempfile.TemporaryDirectory(prefix="fti-scores-") as spool_dir:
            spool = Path(spool_dir) / "scores.parquet"
            batches = feature_batches(store, reads, as_of, names)
            score_to_spool(estimator, task, batches, reads[0].key, names, spool, [profile, counter])
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
            unjudged = next((r["reason"] for r in results if not r["judged"]), None)
            if unjudged:
                log.info("drift of %s v%s on %s not judged: %s", name, row.version, as_of, unjudged)
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
            piece = _slice(name, row, versions, as_of, run_id, airflow_run_id, logical_date)
            if dry_run:
                count = pq.ParquetFile(spool).metadata.num_rows
                log.info("dry run: %s rows scored for %s, none written", count, as_of)
            else:
                count = write_slice(db, piece, read_spool(spool))
    except Exception as exc:
        if not dry_run:
            fail_run(db, run_id, exc)
        raise
    realized = [] if dry_run else record_realized_of_scored(settings, name, as_of)
    return {
        "run_id": run_id,
        "model": name,
        "model_version": row.version,
        "task": task,
        "feature_group": row.feature_group,
        "feature_version": versions[row.feature_group],
        "feature_versions": versions,
        "as_of_date": as_of.isoformat(),
        "rows": count,
        "warnings": [w["message"] for w in warnings],
        "drift_breached": [r["feature"] for r in drifted],
        "drift_not_judged": unjudged,
        "realized": next(  # the date's labels had landed: its realized metric, at once
            (r["value"] for r in realized if r["model_version"] == row.version), None
        ),
        "seconds": round(time.perf_counter() - clock, 3),
        "dry_run": dry_run,
    }


def score_shadow(
    model_name: str,
    as_of: date,
    run_id: str,
    alias: str = "challenger",
    settings: Settings | None = None,
    airflow_run_id: str | None = None,
    logical_date: date | None = None,
) -> dict[str, Any]:
    """Shadow-score ``as_of`` with the version ``alias`` points at into shadow_predictions,
    beside the served slice, so realized metrics compare both versions on the same days.

    The same reads, skew guard and scoring as ``score_batch``; a rerun replaces the shadow
    slice. No prediction run or drift is recorded (the served slice's run is the date's), and
    ``predictions`` is not touched. Skipped (``skipped`` says why) when nobody holds ``alias``
    or its version wrote the date's served slice itself.
    """
    settings, project = setup(settings)
    spec = project.model(model_name)
    check_dates(project, as_of, as_of)
    summary: dict[str, Any] = {"model": spec.name, "alias": alias, "as_of_date": as_of.isoformat()}
    with session_scope(settings.db_url) as session:
        held = aliases.current(session, spec.name, alias)
        served = session.scalar(
            select(Prediction.model_version)
            .where(Prediction.model_name == spec.name, Prediction.as_of_date == as_of)
            .limit(1)
        )
        row = get_version(session, spec.name, held) if held is not None else None
    if row is None or row.version == served:
        reason = f"no {alias}" if row is None else f"{alias} v{served} wrote the served slice"
        log.info("shadow scoring of %s on %s skipped: %s", spec.name, as_of, reason)
        return summary | {"skipped": reason}
    store = FeatureStore(settings.store_path)
    reads = _group_reads(project, row, store, as_of, "latest")
    versions = {r.group: r.version for r in reads}
    names = feature_names(row)
    with tempfile.TemporaryDirectory(prefix="fti-shadow-") as spool_dir:
        spool = Path(spool_dir) / "scores.parquet"
        batches = feature_batches(store, reads, as_of, names)
        score_to_spool(load_estimator(row), row.task, batches, reads[0].key, names, spool, [])
        piece = _slice(spec.name, row, versions, as_of, run_id, airflow_run_id, logical_date)
        count = write_shadow_slice(settings.db_url, piece, alias, read_spool(spool))
    record_realized_of_scored(settings, spec.name, as_of, alias)
    return summary | {"model_version": row.version, "feature_versions": versions, "rows": count}


def rollback_model(
    model: str, alias: str, actor: str, reason: str, rescore: bool, settings: Settings | None = None
) -> dict[str, Any]:
    """Re-point ``alias`` to its previous holder; re-score the dates the replaced version scored."""
    settings, project = setup(settings)
    project.model(model)
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
                model,
                day,
                f"rollback__{model}__v{replaced}__{day}__{time.time_ns()}",
                str(restored),
                "latest",
                settings,
            )
            rescored.append(day.isoformat())
    return {"from_version": replaced, "to_version": restored, "rescored": rescored}


def already_scored(
    model_name: str,
    as_of: date,
    model: str = aliases.CHAMPION,
    feature_version: str | int = "latest",
    settings: Settings | None = None,
) -> bool:
    """Whether the slice of ``as_of`` was already written by the version ``model`` names,
    from the feature versions a run would read now (so a rescore would change nothing)."""
    settings, project = setup(settings)
    spec = project.model(model_name)
    store = FeatureStore(settings.store_path)
    with session_scope(settings.db_url) as session:
        try:
            row = get_version(session, spec.name, aliases.resolve(session, spec.name, model))
            reads = _group_reads(project, row, store, as_of, feature_version)
        except FtiError:  # no such version, no features yet: not scored, the run says why
            return False
        versions = {r.group: r.version for r in reads}
        done = session.scalars(
            select(PredictionRun).where(
                PredictionRun.model_name == spec.name,
                PredictionRun.as_of_date == as_of,
                PredictionRun.model_version == row.version,
                PredictionRun.status == "succeeded",
            )
        )
        return any(run.feature_versions == versions for run in done)


def scoring_waits_for(
    model_name: str,
    as_of: date,
    model: str = aliases.CHAMPION,
    feature_version: str | int = "latest",
    settings: Settings | None = None,
) -> list[str]:
    """What scoring ``as_of`` still waits for (the inference DAG's sensor): empty when ready.

    Missing spine features for the date and an alias nobody holds yet are waited for; a
    version number that does not exist, or a date before the project's start, is an error now
    (waiting would not make it appear).
    """
    settings, project = setup(settings)
    spec = project.model(model_name)
    check_dates(project, as_of, as_of)
    waiting = []
    spine = project.model_groups(spec)[0]
    with session_scope(settings.db_url) as session:
        ref = str(model).removeprefix("v")
        if ref.isdigit():
            spine = get_version(session, spec.name, int(ref)).feature_group
        else:
            held = aliases.current(session, spec.name, str(model))
            if held is None:
                waiting.append(f"model {spec.name!r} has no {model} yet")
            else:
                spine = get_version(session, spec.name, held).feature_group
    try:
        feature_version_for(FeatureStore(settings.store_path), spine, as_of, feature_version)
    except VersionNotFoundError as exc:
        waiting.append(str(exc))
    return waiting
