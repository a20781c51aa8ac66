"""The feature pipeline's steps: validate the raw files, then plan, build and publish each
feature and label group.

``validate_raw_events`` stages every source's accepted rows; ``plan_group`` says how many
shards build a group's run; ``build_group`` computes one shard's partitions into a staged
folder; ``publish_group`` turns the staged folder into one new immutable version (catalog,
online table, realized metrics of a label group). ``run_features`` does all of it, one step
after the other: `fti features run`.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from fti.db.engine import session_scope
from fti.definitions import Entity, FeatureGroup, LabelGroup, Project, Source
from fti.errors import FtiError
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
from fti.monitoring.realized import record_realized_after_publish
from fti.ownership import SOURCE, claim
from fti.params import load_params
from fti.pipelines.runs import check_dates, days, setup
from fti.settings import Settings, file_safe
from fti.store.tagged import publish_cataloged, served_keys
from fti.store.versions import FeatureStore, fault_point

log = logging.getLogger("fti.pipelines")  # every step's logger (see fti/pipelines/__init__.py)


def quarantine_root(settings: Settings) -> Path:
    """Where the Parquet copies of quarantined rows live: in the store, outside git."""
    return settings.store_path / "quarantine"


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
                claim(session, SOURCE, source.name, project.name, run_id)  # before its records
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
    published = publish_cataloged(
        store,
        settings.db_url,
        group.name,
        partitions,
        f"{len(dates)} partition(s) {dates[0]}..{dates[-1]} by {run_id}",
        run_id,
        kind=kind,
        keys=served_keys(project),
        project=project.name,
        period=group.partition,
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
