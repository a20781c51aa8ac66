"""Recording realized metrics: for each date a label group version labels, the scores every
model version trained on that label group wrote for it (served and shadow), scored against
the labels; one ``realized_metrics`` row per (model, version, date), replaced on recompute."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fti.db.engine import session_scope
from fti.db.tables import (
    AliasEvent,
    FeatureVersion,
    ModelVersion,
    Prediction,
    RealizedMetric,
    ShadowPrediction,
)
from fti.definitions import load_project
from fti.errors import FtiError, VersionNotFoundError
from fti.monitoring.realized._alerts import realized_alerts
from fti.monitoring.realized._pool import load_estimator, read_labels, read_scores
from fti.monitoring.realized._score import realized
from fti.monitoring.realized._tables import as_dict
from fti.registry import aliases
from fti.settings import Settings, get_settings
from fti.store.versions import FeatureStore

log = logging.getLogger(__name__)


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
    key = project.readable_group(label_group).entity.key
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
        labels = read_labels(store, label_group, label_version, key, day)
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
        scores = read_scores(session, model, day)
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
            estimator = load_estimator(row)
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
