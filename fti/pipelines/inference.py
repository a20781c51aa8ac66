"""The inference pipeline's steps: score a model's slice of a date, shadow-score it with
the challenger, tell whether a date is ready or already scored, roll an alias back.

Scoring a date reads exactly the features the model version was trained on (skew guard),
records drift and replaces the date's prediction slice, in three steps, as a group's build is
planned, built by shard and published (fti.pipelines.features): ``plan_shards`` starts the
run, pins its versions and counts the entity shards; ``score_shard`` scores one shard's
entities into a spool (one Airflow mapped task each); ``write_scores`` merges the shards'
spools, drift counts and skew profiles into the one prediction run and slice. ``score_batch``
runs the three in one process. ``score_shadow`` writes the challenger's scores beside the
slice; ``scoring_waits_for`` and ``already_scored`` are what the inference DAG asks before
scoring; ``rollback_model`` re-points an alias and re-scores its dates.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction, PredictionRun
from fti.definitions import Project
from fti.errors import FtiError, VersionNotFoundError
from fti.features.shards import Shard, scale_section, scoring_shard_count
from fti.inference import spools
from fti.inference.features import GroupRead, feature_batches, model_groups, rows_read
from fti.inference.runs import fail_run, start_run, update_run
from fti.inference.score import read_spool, score_to_spool
from fti.inference.skew import ServingProfile, check_features
from fti.inference.write import Slice, write_slice
from fti.monitoring import drift
from fti.monitoring.realized import record_realized_of_scored, write_shadow_slice
from fti.monitoring.results import pool_window, record_drift
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
    project: Project,
    row: ModelVersion,
    store: FeatureStore,
    as_of: date,
    spine_ref: str | int = "latest",
    pinned: Mapping[str, int] | None = None,
) -> list[GroupRead]:
    """What scoring reads: each group of the model version, spine first, at its version.

    The spine at the newest version holding the date (or the one named); the other groups at
    their latest version, of which rows at most their TTL old count. ``pinned``: the versions a
    plan chose (every shard of a run reads the same ones, whatever was published since).
    """
    reads = []
    for name, trained in model_groups(row.feature_group, row.features):
        if pinned is not None:
            version = int(pinned[name])
        elif name == row.feature_group:
            version = feature_version_for(store, name, as_of, spine_ref)
        else:
            version = store.resolve(name, "latest")
        serving = {f.name: str(f.type) for f in store.schema(name, version)}
        check_features(f"{row.name} v{row.version}", trained, serving, f"{name} v{version}")
        entity = project.readable_group(name).entity
        reads.append(
            GroupRead(
                group=name,
                version=version,
                key=entity.key,
                columns=[f["name"] for f in trained],
                ttl_days=int(trained[0].get("ttl_days", 0)),
                key_dtype=entity.dtype,
            )
        )
    return reads


def _shard_count(
    settings: Settings, store: FeatureStore, model: str, reads: list[GroupRead], as_of: date
) -> int:
    """How many shards score ``as_of``: params.yaml's ``shards.models.<model>``, else by the
    feature rows the run reads against ``shards.score_rows_per_shard`` (fti.features.shards)."""
    section = scale_section(load_params(settings.params_file, "shards"))
    if model in section["models"]:
        return scoring_shard_count(model, 0, section)
    return scoring_shard_count(model, rows_read(store, reads, as_of), section)


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


@contextmanager
def _failure_marks_run(plan: dict[str, Any], settings: Settings) -> Iterator[None]:
    """An error in a step of ``plan`` marks its prediction run failed (not for a dry run)."""
    try:
        yield
    except Exception as exc:
        if not plan["dry_run"]:
            fail_run(settings.db_url, plan["run_id"], exc)
        raise


def plan_shards(
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
    """Get the scoring of ``as_of`` ready: record its run as running, pin the model version and
    the feature versions it reads, and say how many entity shards score it.

    ``model`` is an alias or a version number; ``feature_version`` the spine group's version
    (``latest``: the newest holding the date). Returns the plan (pointers only) that
    ``score_shard`` and ``write_scores`` take: every shard scores with the same versions,
    whatever is promoted or published meanwhile. A run that fails anywhere from here to the
    write (no champion, no features for the date, a tampered artifact, a shard, the database
    going away mid-write) is marked failed with its error, and the previous slice stays.
    A ``dry_run`` records nothing.
    """
    settings, project = setup(settings)
    spec = project.model(model_name)
    check_dates(project, as_of, as_of)
    started = time.time()
    plan: dict[str, Any] = {
        "model": spec.name,
        "as_of_date": as_of.isoformat(),
        "run_id": run_id,
        "airflow_run_id": airflow_run_id,
        "logical_date": logical_date.isoformat() if logical_date else None,
        "dry_run": dry_run,
        "started": started,
    }
    db = settings.db_url
    if not dry_run:
        start_run(db, run_id, spec.name, as_of, airflow_run_id, logical_date)
    with _failure_marks_run(plan, settings):
        store = FeatureStore(settings.store_path)
        with session_scope(db) as session:
            row = get_version(session, spec.name, aliases.resolve(session, spec.name, model))
        if not dry_run:
            update_run(db, run_id, model_version=row.version, feature_group=row.feature_group)
        reads = _group_reads(project, row, store, as_of, feature_version)
        versions = {r.group: r.version for r in reads}
        if not dry_run:
            update_run(
                db,
                run_id,
                feature_version=versions[row.feature_group],
                feature_versions=versions,
            )
        load_estimator(row)  # a tampered artifact fails the run now, not in every shard
        shards = _shard_count(settings, store, spec.name, reads, as_of)
        spools.clear(spools.spool_root(settings.staging_path, spec.name, as_of, run_id))
    log.info("%s v%s on %s: %d shard(s)", spec.name, row.version, as_of, shards)
    return plan | {
        "model_version": row.version,
        "task": getattr(row, "task", None) or spec.task,
        "feature_group": row.feature_group,
        "feature_versions": versions,
        "shards": shards,
    }


def score_shard(plan: dict[str, Any], shard: int, settings: Settings | None = None) -> str:
    """Score the entities of ``shard`` (of the plan's count) into its spool: their feature rows
    at the plan's versions (the skew guard again), the model, the skew profile and drift counts
    of its rows beside them. Returns the spool's path. A retry replaces only this shard's spool.
    """
    settings, project = setup(settings)
    piece = Shard(shard, plan["shards"])
    as_of = date.fromisoformat(plan["as_of_date"])
    with _failure_marks_run(plan, settings):
        store = FeatureStore(settings.store_path)
        with session_scope(settings.db_url) as session:
            row = get_version(session, plan["model"], plan["model_version"])
        reads = _group_reads(project, row, store, as_of, pinned=plan["feature_versions"])
        names = feature_names(row)
        profile = ServingProfile(names, row.training_statistics or {})
        counter = drift.DriftCounter(row.drift_reference or {}, names)
        root = spools.spool_root(settings.staging_path, plan["model"], as_of, plan["run_id"])
        spooled = spools.start_shard(root, piece)
        rows = score_to_spool(
            load_estimator(row),
            plan["task"],
            feature_batches(store, reads, as_of, names, piece),
            reads[0].key,
            names,
            spooled,
            [profile, counter],
        )
        counts = {"rows": rows, "profile": profile.counts(), "drift": counter.counts()}
        spool = spools.finish_shard(root, piece, spooled, counts)
    log.info("%s on %s, %s: %d rows scored", plan["model"], as_of, piece, rows)
    return str(spool)


def write_scores(plan: dict[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Replace the date's prediction slice with every shard's spool, in one transaction, and
    record the run's drift and skew warnings from the shards' merged counts: the same slice,
    figures and summary one process scoring every entity gives. A retry after the slice was
    written returns the same summary.

    Raises:
        FtiError: a shard of the plan has not scored (its spool is not marked whole).
    """
    settings, _ = setup(settings)
    name, run_id, dry_run = plan["model"], plan["run_id"], plan["dry_run"]
    as_of = date.fromisoformat(plan["as_of_date"])
    root = spools.spool_root(settings.staging_path, name, as_of, run_id)
    if (done := spools.already_written(root)) is not None:
        return done
    db = settings.db_url
    versions = {group: int(v) for group, v in plan["feature_versions"].items()}
    with _failure_marks_run(plan, settings):
        with session_scope(db) as session:
            row = get_version(session, name, plan["model_version"])
        names = feature_names(row)
        profile = ServingProfile(names, row.training_statistics or {})
        counter = drift.DriftCounter(row.drift_reference or {}, names)
        scored = spools.scored_shards(root, plan["shards"])
        for _, counts in scored:
            profile.merge(counts["profile"])
            counter.merge(counts["drift"])
        warnings = profile.warnings()
        for warning in warnings:
            log.warning(
                "skew guard, %s v%s on %s: %s", name, row.version, as_of, warning["message"]
            )
        thresholds = drift.Thresholds.from_params(load_params(settings.params_file, "monitor"))
        own = counter.counts()  # before the window's earlier dates join it
        window = pool_window(db, counter, name, row.version, as_of, thresholds.window_days)
        results = counter.compare(thresholds)
        drifted = (
            [r for r in results if r["breached"]]
            if dry_run
            else record_drift(db, run_id, results, own)
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
        if not dry_run:
            update_run(
                db,
                run_id,
                warnings=warnings,
                drift_breached=bool(drifted),
                drift_window=window if results else None,
            )
        logical = plan["logical_date"]
        piece = _slice(
            name,
            row,
            versions,
            as_of,
            run_id,
            plan["airflow_run_id"],
            date.fromisoformat(logical) if logical else None,
        )
        if dry_run:
            count = sum(int(counts["rows"]) for _, counts in scored)
            log.info("dry run: %s rows scored for %s, none written", count, as_of)
        else:
            batches = (batch for spool, _ in scored for batch in read_spool(spool))
            count = write_slice(db, piece, batches)
    realized = [] if dry_run else record_realized_of_scored(settings, name, as_of)
    summary = {
        "run_id": run_id,
        "model": name,
        "model_version": row.version,
        "task": plan["task"],
        "feature_group": row.feature_group,
        "feature_version": versions[row.feature_group],
        "feature_versions": versions,
        "as_of_date": as_of.isoformat(),
        "rows": count,
        "shards": plan["shards"],
        "warnings": [w["message"] for w in warnings],
        "drift_breached": [r["feature"] for r in drifted],
        "drift_not_judged": unjudged,
        "drift_window": window if results else None,
        "realized": next(  # the date's labels had landed: its realized metric, at once
            (r["value"] for r in realized if r["model_version"] == row.version), None
        ),
        "seconds": round(time.time() - plan["started"], 3),
        "dry_run": dry_run,
    }
    spools.finish(root, summary)
    return summary


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
    """Score every entity the model's spine group has on ``as_of`` and replace that slice: the
    inference DAG's steps (``plan_shards``, ``score_shard`` for each shard, ``write_scores``)
    one after the other in this process (`fti infer`, rollback re-scoring).

    ``model`` is an alias or a version number; ``feature_version`` the spine group's version
    (``latest``: the newest holding the date). The run is recorded as running first, so a run
    that fails anywhere is marked failed with its error, and the previous slice stays.
    ``airflow_run_id`` and ``logical_date`` (from the DAG run) go on the run and on every row.
    A ``dry_run`` does every check and scores, but records no run, no drift and no predictions.
    """
    settings, _ = setup(settings)
    plan = plan_shards(
        model_name,
        as_of,
        run_id,
        model,
        feature_version,
        settings,
        airflow_run_id,
        logical_date,
        dry_run,
    )
    root = spools.spool_root(settings.staging_path, plan["model"], as_of, run_id)
    try:
        for shard in range(plan["shards"]):
            score_shard(plan, shard, settings)
        return write_scores(plan, settings)
    finally:
        spools.clear(root)  # nothing to retry here: no spool or record is left behind


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

    The same reads, skew guard and scoring as ``score_batch``, shard by shard in this process
    (memory follows one shard); a rerun replaces the shadow slice. No prediction run or drift
    is recorded (the served slice's run is the date's), and ``predictions`` is not touched.
    Skipped (``skipped`` says why) when nobody holds ``alias`` or its version wrote the date's
    served slice itself.
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
    estimator = load_estimator(row)
    count = _shard_count(settings, store, spec.name, reads, as_of)
    with tempfile.TemporaryDirectory(prefix="fti-shadow-") as spool_dir:
        paths = [Path(spool_dir) / f"{Shard(i, count).name}.parquet" for i in range(count)]
        for i, spool in enumerate(paths):
            batches = feature_batches(store, reads, as_of, names, Shard(i, count))
            score_to_spool(estimator, row.task, batches, reads[0].key, names, spool, [])
        piece = _slice(spec.name, row, versions, as_of, run_id, airflow_run_id, logical_date)
        scores = (batch for spool in paths for batch in read_spool(spool))
        written = write_shadow_slice(settings.db_url, piece, alias, scores)
    record_realized_of_scored(settings, spec.name, as_of, alias)
    return summary | {"model_version": row.version, "feature_versions": versions, "rows": written}


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
