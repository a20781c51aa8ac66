"""View models of the index (group versions, model versions, prediction runs) and of one
feature or label group version, read from fti's tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fti.pages.format import Direction, direction
from fti.pages.views.common import Chip, Link, Urls

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fti.db.tables import FeatureVersion, ModelVersion


@dataclass(frozen=True)
class GroupVersionRow:
    group: str
    kind: str
    version: int
    href: str
    rows: int
    partitions: int
    min_date: date | None
    max_date: date | None
    dvc_md5: str
    git_tag: str
    run: Link | None
    created_at: datetime
    owner: str | None = None  # the project that owns the group (fti.ownership); None: unclaimed


@dataclass(frozen=True)
class ModelVersionRow:
    name: str
    version: int
    href: str
    aliases: list[str]
    task: str
    metric: str
    value: float | None
    direction: Direction | None
    groups: list[Chip]
    label: Chip | None
    features: int
    train_start: date
    train_end: date
    run: Link | None
    created_at: datetime
    owner: str | None = None


@dataclass(frozen=True)
class RunRow:
    run: Link
    model: Chip | None
    groups: list[Chip]
    as_of_date: date
    status: str
    error: str | None
    rows: int
    warnings: list[str]
    drift: Link | None
    drift_breached: bool | None
    started_at: datetime


@dataclass(frozen=True)
class ModelSummary:
    """A model at a glance: its champion and that version's holdout figure."""

    name: str
    versions: int
    champion: int | None
    champion_href: str | None
    metric: str
    value: float | None
    direction: Direction | None
    metrics_href: str
    realized_href: str
    owner: str | None = None


@dataclass(frozen=True)
class Index:
    groups: list[GroupVersionRow]
    models: list[ModelVersionRow]
    runs: list[RunRow]
    summaries: list[ModelSummary]
    page: int
    pages: int
    per_page: int
    project: str | None = None  # only this project's groups, models and runs


def group_version_row(row: FeatureVersion, urls: Urls, owner: str | None = None) -> GroupVersionRow:
    return GroupVersionRow(
        group=row.group_name,
        kind=row.kind,
        owner=owner,
        version=row.version,
        href=urls.group_version(row.group_name, row.version),
        rows=row.row_count,
        partitions=row.partitions,
        min_date=row.min_date,
        max_date=row.max_date,
        dvc_md5=row.dvc_md5,
        git_tag=row.git_tag,
        run=urls.lineage_run(row.run_id),
        created_at=row.created_at,
    )


def label_chip(row: ModelVersion, urls: Urls) -> Chip | None:
    if row.label_group and row.label_version is not None:
        return Chip(
            f"{row.label_group} v{row.label_version}",
            urls.group_version(row.label_group, row.label_version),
            "label group version",
            "labels",
        )
    return Chip(row.label, None, "a label column of the features") if row.label else None


def model_version_row(
    row: ModelVersion, aliases: list[str], urls: Urls, owner: str | None = None
) -> ModelVersionRow:
    value = row.metrics.get(row.metric)
    return ModelVersionRow(
        name=row.name,
        owner=owner,
        version=row.version,
        href=urls.model_version(row.name, row.version),
        aliases=sorted(aliases),
        task=row.task,
        metric=row.metric,
        value=value if isinstance(value, int | float) else None,
        direction=direction(row.metric),
        groups=urls.group_chips(row.feature_versions or {row.feature_group: row.feature_version}),
        label=label_chip(row, urls),
        features=len(row.features),
        train_start=row.train_start,
        train_end=row.train_end,
        run=urls.lineage_run(row.run_id),
        created_at=row.created_at,
    )


def run_row(run: Any, urls: Urls) -> RunRow:
    """A prediction run (a ``PredictionRun`` row) as a table row."""
    model = (
        Chip(
            f"{run.model_name} v{run.model_version}",
            urls.model_version(run.model_name, run.model_version),
            "model version",
        )
        if run.model_version is not None
        else Chip(run.model_name, None, "no version resolved")
    )
    versions = run.feature_versions or (
        {run.feature_group: run.feature_version} if run.feature_group else {}
    )
    return RunRow(
        run=urls.prediction_run(run.run_id, run.airflow_run_id),
        model=model,
        groups=urls.group_chips(versions),
        as_of_date=run.as_of_date,
        status=run.status,
        error=run.error,
        rows=run.row_count,
        warnings=[
            str(w.get("message", w)) if isinstance(w, dict) else str(w) for w in run.warnings or []
        ],
        drift=Link("report", urls.drift(run.run_id)) if run.drift_breached is not None else None,
        drift_breached=run.drift_breached,
        started_at=run.started_at,
    )


def index(
    session: Session, urls: Urls, page: int, per_page: int, project: str | None = None
) -> Index:
    """A page (``per_page`` rows, newest first) of each: group versions, model versions,
    prediction runs; and every model's champion at a glance. Each group and model with its
    owner; with ``project``, only what that project owns (runs: of its models)."""
    from sqlalchemy import func, select

    from fti.db.tables import FeatureVersion, ModelVersion, PredictionRun
    from fti.ownership import GROUP_KINDS, MODEL, owners
    from fti.registry import aliases as alias_table
    from fti.registry.versions import aliases_by_version, list_versions
    from fti.store.catalog import list_versions as list_group_versions

    claimed = owners(session)
    group_names = model_names = None
    if project is not None:
        group_names = {n for (k, n), p in claimed.items() if k in GROUP_KINDS and p == project}
        model_names = {n for (k, n), p in claimed.items() if k == MODEL and p == project}
    offset = (page - 1) * per_page
    groups = list_group_versions(session, limit=per_page, offset=offset, groups=group_names)
    models = list_versions(session, limit=per_page, offset=offset, names=model_names)
    tags = aliases_by_version(session)
    runs_query = select(PredictionRun)
    counts = [
        select(func.count()).select_from(FeatureVersion).where(FeatureVersion.tagged),
        select(func.count()).select_from(ModelVersion),
        select(func.count()).select_from(PredictionRun),
    ]
    if model_names is not None and group_names is not None:
        runs_query = runs_query.where(PredictionRun.model_name.in_(model_names))
        counts = [
            counts[0].where(FeatureVersion.group_name.in_(group_names)),
            counts[1].where(ModelVersion.name.in_(model_names)),
            counts[2].where(PredictionRun.model_name.in_(model_names)),
        ]
    runs = session.scalars(
        runs_query.order_by(PredictionRun.started_at.desc(), PredictionRun.run_id)
        .limit(per_page)
        .offset(offset)
    ).all()
    pages = max(-(-(session.scalar(count) or 0) // per_page) for count in counts)
    summaries = []
    counted = session.execute(
        select(ModelVersion.name, func.count())
        .group_by(ModelVersion.name)
        .order_by(ModelVersion.name)
    ).all()
    for name, versions in counted:
        if model_names is not None and name not in model_names:
            continue
        champion = alias_table.current(session, name, alias_table.CHAMPION)
        held = session.scalar(
            select(ModelVersion).where(
                ModelVersion.name == name,
                ModelVersion.version == (champion if champion is not None else versions),
            )
        )
        value = held.metrics.get(held.metric) if held else None
        summaries.append(
            ModelSummary(
                name=name,
                owner=claimed.get((MODEL, name)),
                versions=versions,
                champion=champion,
                champion_href=urls.model_version(name, champion) if champion is not None else None,
                metric=held.metric if held else "",
                value=value if isinstance(value, int | float) else None,
                direction=direction(held.metric) if held else None,
                metrics_href=urls.model_metrics(name),
                realized_href=urls.model_realized(name),
            )
        )
    return Index(
        groups=[group_version_row(g, urls, claimed.get((g.kind, g.group_name))) for g in groups],
        models=[
            model_version_row(
                m, tags.get((m.name, m.version), []), urls, claimed.get((MODEL, m.name))
            )
            for m in models
        ],
        runs=[run_row(r, urls) for r in runs],
        summaries=summaries,
        page=page,
        pages=max(pages, 1),
        per_page=per_page,
        project=project,
    )


@dataclass(frozen=True)
class ColumnRow:
    name: str
    dtype: str
    nulls: int | None
    count: int | None
    minimum: Any
    median: Any
    mean: Any
    maximum: Any
    distinct: int | None
    top: list[tuple[str, int]]
    approximate: bool


@dataclass(frozen=True)
class GroupVersion:
    """One immutable version of a feature or label group: lineage, columns, and what used it."""

    row: GroupVersionRow
    versions: list[int]  # every version of the group, for the version switcher
    git_rev: str
    schema_hash: str
    changed_dates: list[str]
    columns: list[ColumnRow]
    used_by: list[Chip] = field(default_factory=list)  # model versions trained on it
    scored_by: int = 0  # prediction runs that read it


def group_version(session: Session, group: str, version: int, urls: Urls) -> GroupVersion:
    """Raises FtiError (404) for a version the catalog does not hold."""
    from sqlalchemy import func, select

    from fti.db.tables import FeatureVersion, ModelVersion, PredictionRun
    from fti.store.catalog import get_version

    row = get_version(session, group, version)
    statistics = row.statistics or {}
    columns = []
    for name, dtype in (row.schema or {}).items():
        stats = statistics.get(name, {})
        quantiles = stats.get("quantiles") or {}
        top = stats.get("top") or {}
        columns.append(
            ColumnRow(
                name=name,
                dtype=dtype,
                nulls=stats.get("nulls"),
                count=stats.get("count"),
                minimum=stats.get("min"),
                median=quantiles.get("0.5"),
                mean=stats.get("mean"),
                maximum=stats.get("max"),
                distinct=stats.get("distinct"),
                top=[(str(k), int(v)) for k, v in list(top.items())[:5]],
                approximate=bool(stats.get("quantiles_approximate")),
            )
        )
    used_by = []
    for model in session.scalars(
        select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
    ):
        read = model.feature_versions or {model.feature_group: model.feature_version}
        as_features = read.get(group) == version
        as_label = model.label_group == group and model.label_version == version
        if as_features or as_label:
            used_by.append(
                Chip(
                    f"{model.name} v{model.version}",
                    urls.model_version(model.name, model.version),
                    "trained on it" + (" (labels)" if as_label else ""),
                )
            )
    scored_by = 0
    if row.kind == "features":
        spine = session.scalar(
            select(func.count()).where(
                PredictionRun.feature_group == group, PredictionRun.feature_version == version
            )
        )
        scored_by = int(spine or 0)
    versions = list(
        session.scalars(
            select(FeatureVersion.version)
            .where(FeatureVersion.group_name == group, FeatureVersion.tagged)
            .order_by(FeatureVersion.version)
        )
    )
    return GroupVersion(
        row=group_version_row(row, urls),
        versions=versions,
        git_rev=row.git_rev,
        schema_hash=row.schema_hash,
        changed_dates=[str(d) for d in row.changed_dates or []],
        columns=columns,
        used_by=used_by,
        scored_by=scored_by,
    )
