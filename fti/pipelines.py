"""One function per pipeline task. Airflow tasks, dvc.yaml stages and the CLI all call these.

Each takes plain arguments (names of the project's groups and models, dates, versions), reads
the settings when it runs, and returns a small pointer (a path, a version number, a summary
dict), never the data itself.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction, PredictionRun
from fti.definitions import (
    LABEL,
    LABEL_DATE,
    Entity,
    FeatureGroup,
    LabelGroup,
    Model,
    ModelFeature,
    Project,
    Source,
    load_project,
)
from fti.errors import FtiError, VersionNotFoundError
from fti.features.build import (
    build_partitions,
    check_shard,
    finish_shard,
    first_event_day,
    last_event_day,
    leakage_dates,
    read_partitions,
    start_shard,
    write_partitions,
)
from fti.features.events import load_events, raw_file, staged_file, validate_and_stage
from fti.features.shards import Shard, scale_section, shard_count
from fti.inference.features import GroupRead, feature_batches, model_groups
from fti.inference.runs import fail_run, start_run, update_run
from fti.inference.score import predict, read_spool, score_to_spool
from fti.inference.skew import ServingProfile, check_features
from fti.inference.write import Slice, write_slice
from fti.lineage import code_version, library_versions
from fti.monitoring import drift
from fti.monitoring.gaps import Gap, missing_dates
from fti.monitoring.realized import (
    record_realized_after_publish,
    record_realized_of_scored,
    write_shadow_slice,
)
from fti.monitoring.results import record_drift
from fti.online.materialise import forget_untagged_online, materialise_published
from fti.params import load_params, model_params
from fti.registry import aliases
from fti.registry.versions import find_identical, get_version, lock_model, register_version
from fti.settings import Settings, file_safe, get_settings
from fti.store.catalog import forget_untagged_versions, record_version
from fti.store.statistics import column_statistics
from fti.store.versions import (
    FeatureStore,
    PublishedVersion,
    fault_point,
    read_partition_in_work_tree,
)
from fti.training import metrics
from fti.training.artifacts import load_artifact, save_artifact
from fti.training.dataset import TrainingSet
from fti.training.dataset import build_training_set as _build_set
from fti.training.fit import fit
from fti.training.promotion import gate, shared_holdout

log = logging.getLogger(__name__)


def quarantine_root(settings: Settings) -> Path:
    """Where the Parquet copies of quarantined rows live: in the store, outside git."""
    return settings.store_path / "quarantine"


def days(start: date, end: date) -> list[date]:
    if end < start:
        raise FtiError(f"date range is empty: end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def setup(settings: Settings | None = None) -> tuple[Settings, Project]:
    """The settings (read now) and the checked project definition they name."""
    settings = settings or get_settings()
    return settings, load_project(settings.project)


def check_dates(project: Project, start: date, end: date) -> None:
    """Refuse dates before the project's start date: no run may "succeed" doing nothing."""
    if start < project.first_date:
        raise FtiError(
            f"{start} is before the start date {project.first_date} of project "
            f"{project.name!r}: run dates from then on (or move start_date in the definition)"
        )
    if end < start:
        raise FtiError(f"date range is empty: end {end} is before start {start}")


# ---- feature pipeline ------------------------------------------------------------------------
def validate_raw_events(
    start: date,
    end: date,
    run_id: str,
    settings: Settings | None = None,
    sources: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Validate every source's raw files of [start, end] (or ``sources``'): stage accepted
    rows, record quarantined ones. Returns totals over all files and per source."""
    settings, project = setup(settings)
    check_dates(project, start, end)
    chosen = [project.source(name) for name in sources] if sources else list(project.sources)
    totals: dict[str, Any] = {"files": 0, "rows_read": 0, "rows_accepted": 0, "rows_quarantined": 0}
    per_source = {}
    for source in chosen:
        counts = dict.fromkeys(("files", "rows_read", "rows_accepted", "rows_quarantined"), 0)
        for day in days(start, end):
            with session_scope(settings.db_url, write=True) as session:
                result = validate_and_stage(
                    session,
                    source,
                    settings.raw_path,
                    settings.staging_path,
                    day,
                    run_id,
                    settings.max_quarantine_share,
                    quarantine_root(settings),
                    quarantine_min_rows=settings.quarantine_min_rows,
                    entity=slot_entity(project, source),
                )
            counts["files"] += 1
            counts["rows_read"] += result.rows_read
            counts["rows_accepted"] += result.rows_accepted
            counts["rows_quarantined"] += result.rows_quarantined
        per_source[source.name] = counts
        for key, value in counts.items():
            totals[key] += value
    return totals | {"sources": per_source}


def group_dates(
    project: Project, group: FeatureGroup | LabelGroup, start: date, end: date
) -> list[date]:
    """The dates a feature run of [start, end] computes for ``group``: the same dates for a
    feature group; for a label group the dates whose horizon ended, [start - h, end - h], from
    the project's start date on."""
    shift = timedelta(days=group.horizon)
    first = max(start - shift, project.first_date)
    return days(first, end - shift) if end - shift >= first else []


def slot_entity(project: Project, source: Source) -> Entity | None:
    """The entity whose key a source's staged events are sorted by (for shards): the first of
    the project's entities whose key is one of the source's columns."""
    return next((e for e in project.entities if e.key in source.columns), None)


def _event_window(
    project: Project, group: FeatureGroup | LabelGroup, dates: Sequence[date]
) -> tuple[date, date]:
    """The first and last day of events computing ``dates`` of ``group`` may see."""
    first = max(first_event_day(group, min(dates)), project.first_date)
    return first, last_event_day(group, max(dates))


def plan_group(
    group_name: str, start: date, end: date, run_id: str, settings: Settings | None = None
) -> int:
    """Get a group's run over [start, end] ready to build: return how many shards build it
    (0 when the run has no date for it: labels not yet matured).

    Days of the events window that have raw files but were never validated (e.g. history)
    are validated first, so the shards, running side by side, only read (a day still missing
    then fails each shard's build, naming the day). The shard count is
    params.yaml's ``shards.groups.<group>``, else enough that a shard's chunk of dates loads at
    most ``shards.rows_per_shard`` validated events (see fti.features.shards).
    """
    settings, project = setup(settings)
    check_dates(project, start, end)
    group = project.group(group_name)
    dates = group_dates(project, group, start, end)
    if not dates:
        log.info("%s: no date of %s..%s to compute (labels mature later)", group.name, start, end)
        return 0
    first, last = _event_window(project, group, dates)
    for source in group.sources:
        for day in days(first, last):
            staged = staged_file(settings.staging_path, source, day)
            if not staged.exists() and (
                raw_file(settings.raw_path, source, day).exists()
                or (day >= dates[0] and source.missing_day == "empty")
            ):
                validate_raw_events(day, day, run_id, settings, [source.name])
    section = scale_section(load_params(settings.params_file, "shards"))
    if any(group.entity.key not in source.columns for source in group.sources):
        return 1  # a source without the entity's key cannot be split by entity
    window = days(first, last)
    rows = sum(_staged_rows(settings, source, day) for source in group.sources for day in window)
    chunk = min(len(dates), section["dates_per_chunk"]) + group.lookback_days - 1 + group.horizon
    return shard_count(group.name, rows / len(window) * min(chunk, len(window)), section)


def _staged_rows(settings: Settings, source: Source, day: date) -> int:
    """How many validated events a staged day holds (its Parquet footer; 0 when not staged)."""
    path = staged_file(settings.staging_path, source, day)
    return pq.ParquetFile(path).metadata.num_rows if path.exists() else 0


def _check_staged(settings: Settings, group: FeatureGroup | LabelGroup, dates: list[date]) -> None:
    for source in group.sources:
        for day in days(dates[0], last_event_day(group, dates[-1])):
            if not staged_file(settings.staging_path, source, day).exists():
                raise FtiError(
                    f"no validated {source.name} events for {day}, which {group.name} for "
                    f"{dates[0]}..{dates[-1]} needs: run the feature pipeline for that day first"
                )


def build_root(settings: Settings, group: str, start: date, end: date, run_id: str) -> Path:
    """Where a run's build of a group is staged (every shard writes its parts there)."""
    return settings.staging_path / "features" / group / f"{start}_{end}_{file_safe(run_id)}"


def build_group(
    group_name: str,
    start: date,
    end: date,
    run_id: str,
    settings: Settings | None = None,
    shard: int = 0,
    shards: int | None = None,
) -> str | None:
    """Compute a feature or label group's partitions for a run over [start, end], for the
    entities of ``shard`` of ``shards``; return the staged folder (the same for every shard),
    or None when the run has no date for it.

    ``shards`` None (the command line, dvc repro): plan the run first (``plan_group``) and
    build every shard here, one after the other. Each shard gets its sources' validated
    events of its entities for the days its dates may see (look-back before, horizon after
    for labels), in chunks of at most ``shards.dates_per_chunk`` dates, so memory follows one
    shard's entities over one chunk, never the whole group. A retried shard replaces only its
    own parts.
    """
    settings, project = setup(settings)
    check_dates(project, start, end)
    group = project.group(group_name)
    if shards is None:
        count = plan_group(group_name, start, end, run_id, settings)
        built = [
            build_group(group_name, start, end, run_id, settings, i, count) for i in range(count)
        ]
        return built[0] if built else None
    dates = group_dates(project, group, start, end)
    if not dates:
        return None
    _check_staged(settings, group, dates)
    piece = Shard(shard, shards)
    root = build_root(settings, group.name, start, end, run_id)
    published_record(root).unlink(missing_ok=True)  # a new build: publish it, not the old one
    start_shard(root, piece)
    chunk = scale_section(load_params(settings.params_file, "shards"))["dates_per_chunk"]
    checked = leakage_dates(dates)
    for at in range(0, len(dates), chunk):
        part = dates[at : at + chunk]
        first, last = _event_window(project, group, part)
        events = {
            source.name: load_events(
                settings.staging_path, source, first, last, piece, group.entity
            )
            for source in group.sources
        }
        partitions = build_partitions(group, events, part, checked=checked)
        del events
        check_shard(group, piece, partitions)
        write_partitions(root, partitions, piece)
        fault_point("build.shard")
        log.info("%s, %s: built %s..%s (%d dates)", group.name, piece, part[0], part[-1], len(part))
    finish_shard(root, piece)
    return str(root)


def published_record(build: Path) -> Path:
    """Where ``publish_group`` keeps what it returned for a staged build it removed."""
    return build.with_name(f"{build.name}.published.json")


def already_published(build: Path) -> dict[str, Any] | None:
    """What ``publish_group`` returned for ``build``, when that build was published (else None).

    A retry of a publish that succeeded (the task died before Airflow recorded its success, or
    a cleared task) returns the same result, without the removed build; a partial removal that
    a kill left is finished here.
    """
    record = published_record(build)
    if not record.is_file():
        return None
    shutil.rmtree(build, ignore_errors=True)
    return dict(json.loads(record.read_text(encoding="utf-8")))


def drop_published_build(build: Path, result: dict[str, Any], settings: Settings) -> None:
    """Replace a published build (a run's partitions under ``staging/features``) by a record of
    ``result``: the version holds the data now, in the store and on its DVC remote.

    The record is written (atomically) before the build goes, so a kill between the two leaves
    a record that ``already_published`` honours; ``build_group`` removes it when it builds the
    folder again, so a rebuilt run is published, not remembered. Only a build under the staging
    folder's ``features`` is removed (``publish_group`` may be given any folder).
    """
    if not build.resolve().is_relative_to((settings.staging_path / "features").resolve()):
        return
    record = published_record(build)
    temp = record.with_name(f"{record.name}.tmp")
    temp.write_text(json.dumps(result), encoding="utf-8")
    temp.replace(record)
    shutil.rmtree(build, ignore_errors=True)


def publish_group(
    group_name: str,
    partitions_path: str,
    run_id: str,
    settings: Settings | None = None,
    shards: int | None = None,
) -> dict[str, Any]:
    """Publish staged partitions (every shard's, ``shards`` of them; default: as many as
    the build's marks say) as one new immutable version of the group, cataloged in SQL.
    Partitions are read one date at a time.

    Returns ``{"group", "version", "new", "kind"}``; ``new`` is False when the partitions
    changed nothing (a rerun) and ``version`` is then the existing latest one. The staged build
    is removed once published (see ``drop_published_build``); a retry returns the same result.
    """
    settings, project = setup(settings)
    if (done := already_published(Path(partitions_path))) is not None:
        return done  # a retry of a publish that succeeded; its build was removed
    group = project.group(group_name)
    kind = group.kind
    partitions = read_partitions(Path(partitions_path), group.entity.key, shards)
    store = FeatureStore(settings.store_path)
    dates = sorted(partitions)
    if not dates:
        raise FtiError(f"{partitions_path} holds no partitions of {group.name} to publish")

    def record(published: PublishedVersion) -> None:  # before the tag: both land or neither
        with session_scope(settings.db_url, write=True) as session:
            record_version(
                session,
                published,
                partitions,
                run_id,
                lambda day: read_partition_in_work_tree(store, group.name, day),
                kind=kind,
            )
            materialise_published(session, store, group, published)  # same transaction

    def forget_untagged(tagged: list[int]) -> None:  # rows a publish killed before its tag left
        with session_scope(settings.db_url, write=True) as session:
            forget_untagged_versions(session, group.name, tagged)
            forget_untagged_online(session, store, group, tagged)

    published = store.publish(
        group.name,
        partitions,
        f"{len(dates)} partition(s) {dates[0]}..{dates[-1]} by {run_id}",
        record=record,
        forget_untagged=forget_untagged,
    )
    result = {
        "group": group.name,
        "version": published.version,
        "new": published.new,
        "kind": kind,
        "first_date": dates[0].isoformat(),
        "last_date": dates[-1].isoformat(),
    }
    drop_published_build(Path(partitions_path), result, settings)
    if kind == LabelGroup.kind and published.new:  # outcomes landed: how did the scores do?
        record_realized_after_publish(settings, group.name, published.version, run_id)
    return result


def run_features(
    start: date,
    end: date,
    run_id: str,
    settings: Settings | None = None,
    groups: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The whole feature pipeline for [start, end]: validate every source, then build and
    publish each feature and label group (or ``groups``). What `fti features run` does."""
    settings, project = setup(settings)
    summary = validate_raw_events(start, end, run_id, settings)
    published = {}
    for group in groups or [g.name for g in project.groups]:
        path = build_group(group, start, end, run_id, settings)
        published[group] = publish_group(group, path, run_id, settings) if path else None
    return summary | {"published": published}


# ---- training pipeline -----------------------------------------------------------------------
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
    training = _build_set(store, project, model, resolved, label_version, as_of, chosen)
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
    path, digest = save_artifact(estimator, settings.artifacts_path)
    train_table = pa.Table.from_pandas(training.train[names], preserve_index=False)
    spine = next(iter(training.feature_versions))
    holdout_outputs = predict(model.task, estimator, training.holdout[names])
    with session_scope(settings.db_url, write=True) as session:
        row = register_version(
            session,
            model.name,
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
            (version, _load(candidate), _feature_names(candidate)),
            (champion.version, _load(champion), _feature_names(champion)) if champion else None,
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
        estimator = _load(row)
        names = _feature_names(row)
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
    names = _feature_names(row)
    with tempfile.TemporaryDirectory(prefix="fti-shadow-") as spool_dir:
        spool = Path(spool_dir) / "scores.parquet"
        batches = feature_batches(store, reads, as_of, names)
        score_to_spool(_load(row), row.task, batches, reads[0].key, names, spool, [])
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


def find_gaps(through: date, settings: Settings | None = None) -> list[Gap]:
    """The dates missing from the project's start through ``through``: groups without the
    day's partition, models without the day's slice (fti.monitoring.gaps)."""
    settings, project = setup(settings)
    with session_scope(settings.db_url) as session:
        return missing_dates(FeatureStore(settings.store_path), session, project, through)


def report_gaps(through: date, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Log the gaps through ``through``, a warning each with the command that fills it."""
    gaps = find_gaps(through, settings)
    for gap in gaps:
        ranges = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in gap.ranges())
        log.warning(
            "fti: %s %s has no %s for %s day(s) up to %s: %s; fill them with: %s",
            "model" if gap.kind == "predictions" else "group",
            gap.name,
            "predictions" if gap.kind == "predictions" else "partition",
            len(gap.days),
            through,
            ranges,
            "; ".join(gap.fill()[:3]),
        )
    return [gap.as_dict() for gap in gaps]


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
