"""View models of a model version (lineage, champion, runs, alias history) and of a model's
holdout metrics over its versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from fti.pages import charts
from fti.pages.format import Direction, direction
from fti.pages.svg import Chart
from fti.pages.views.catalog import RunRow, label_chip, run_row
from fti.pages.views.common import Chip, Link, Urls

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fti.db.tables import ModelVersion

RUNS_SHOWN = 20  # prediction runs of a version on its page, newest first
NOT_METRICS = {"rows", "label_mean", "positive_rate"}  # figures in ``metrics`` that rank nothing


@dataclass(frozen=True)
class Metric:
    name: str
    value: float | None
    direction: Direction | None
    gate: bool  # the metric the promotion gate compares


@dataclass(frozen=True)
class FeatureGroupChips:
    """The features a version reads from one group, with the group version and its TTL."""

    group: Chip
    ttl_days: int | None
    features: list[Chip]


@dataclass(frozen=True)
class AliasEvent:
    id: int
    alias: str
    from_version: int | None
    to_version: int
    actor: str
    reason: str
    created_at: datetime


@dataclass(frozen=True)
class Served:
    champion: int | None
    last_version: int | None
    last_at: datetime | None


@dataclass(frozen=True)
class ModelVersionPage:
    name: str
    version: int
    versions: list[int]
    aliases: list[str]
    task: str
    created_at: datetime
    metrics: list[Metric]
    groups: list[FeatureGroupChips]
    label: Chip | None
    train_start: date
    train_end: date
    n_train: int
    n_holdout: int
    estimator: str
    params: dict[str, Any]
    promotion: dict[str, Any] | None
    artifact_uri: str
    artifact_sha256: str
    code_version: str
    library_versions: dict[str, Any]
    run: Link | None
    runs: list[RunRow]
    runs_total: int
    champion: int | None
    previous: int | None  # the version the champion replaced (what a rollback goes back to)
    served: Served
    history: list[AliasEvent]
    recorded: AliasEvent | None  # the change a form just made (?event=)
    metrics_href: str
    realized_href: str
    dags: list[Link]  # the model's training and inference DAGs in Airflow


def metrics_of(row: ModelVersion) -> list[Metric]:
    """The gate's metric first, then the others by name; figures that rank nothing last."""
    found = [
        Metric(
            name,
            value if isinstance(value, int | float) else None,
            direction(name),
            name == row.metric,
        )
        for name, value in row.metrics.items()
        if not isinstance(value, dict | list)
    ]
    return sorted(found, key=lambda m: (not m.gate, m.name in NOT_METRICS, m.name))


def feature_groups(row: ModelVersion, urls: Urls) -> list[FeatureGroupChips]:
    """The features as chips grouped by their group, in the order the model reads the groups."""
    read = row.feature_versions or {row.feature_group: row.feature_version}
    by_group: dict[str, list[dict[str, Any]]] = {group: [] for group in read}
    for feature in row.features:
        by_group.setdefault(feature.get("group", row.feature_group), []).append(feature)
    found = []
    for group, features in by_group.items():
        version = read.get(group)
        found.append(
            FeatureGroupChips(
                group=Chip(
                    f"{group} v{version}" if version is not None else group,
                    urls.group_version(group, int(version)) if version is not None else None,
                    "feature group version",
                ),
                ttl_days=next((f.get("ttl_days") for f in features if "ttl_days" in f), None),
                features=[
                    Chip(f["name"], None, f"{group}.{f['name']}: {f.get('dtype', '?')}")
                    for f in features
                ],
            )
        )
    return found


def last_served(session: Session, name: str) -> tuple[int, datetime] | None:
    """The version ``fti serve`` last answered with for model ``name``, and when, from its
    request log (``served_predictions``); None when nothing was logged or the table is not
    there yet (a database before migration 0009)."""
    from sqlalchemy import DateTime, Integer, String, column, inspect, select, table

    if not inspect(session.connection()).has_table("served_predictions"):
        return None
    served = table(
        "served_predictions",
        column("model_name", String),
        column("model_version", Integer),
        column("served_at", DateTime(timezone=True)),
    )
    row = session.execute(
        select(served.c.model_version, served.c.served_at)
        .where(served.c.model_name == name)
        .order_by(served.c.served_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def model_version(
    session: Session, name: str, version: int, urls: Urls, event: int | None = None
) -> ModelVersionPage:
    """Raises RegistryError (404) for a version the registry does not hold."""
    from sqlalchemy import func, select

    from fti.db.tables import ModelVersion, PredictionRun
    from fti.registry import aliases
    from fti.registry.versions import aliases_by_version, get_version

    row = get_version(session, name, version)
    tags = aliases_by_version(session, name).get((name, version), [])
    history = [
        AliasEvent(e.id, e.alias, e.from_version, e.to_version, e.actor, e.reason, e.created_at)
        for e in aliases.history(session, name)
    ]
    champion = aliases.current(session, name, aliases.CHAMPION)
    champion_events = [e for e in history if e.alias == aliases.CHAMPION]
    served = last_served(session, name)
    scored = select(PredictionRun).where(
        PredictionRun.model_name == name, PredictionRun.model_version == version
    )
    runs = session.scalars(scored.order_by(PredictionRun.started_at.desc()).limit(RUNS_SHOWN)).all()
    total = session.scalar(select(func.count()).select_from(scored.subquery())) or 0
    versions = list(
        session.scalars(
            select(ModelVersion.version)
            .where(ModelVersion.name == name)
            .order_by(ModelVersion.version)
        )
    )
    return ModelVersionPage(
        name=name,
        version=version,
        versions=versions,
        aliases=sorted(tags),
        task=row.task,
        created_at=row.created_at,
        metrics=metrics_of(row),
        groups=feature_groups(row, urls),
        label=label_chip(row, urls),
        train_start=row.train_start,
        train_end=row.train_end,
        n_train=row.n_train,
        n_holdout=row.n_holdout,
        estimator=row.estimator,
        params=dict(row.params or {}),
        promotion=row.promotion,
        artifact_uri=row.artifact_uri,
        artifact_sha256=row.artifact_sha256,
        code_version=row.code_version,
        library_versions=dict(row.library_versions or {}),
        run=urls.lineage_run(row.run_id),
        runs=[run_row(r, urls) for r in runs],
        runs_total=int(total),
        champion=champion,
        previous=champion_events[-1].from_version if champion_events else None,
        served=Served(champion, served[0] if served else None, served[1] if served else None),
        history=history,
        recorded=next((e for e in history if e.id == event), None) if event is not None else None,
        metrics_href=urls.model_metrics(name),
        realized_href=urls.model_realized(name),
        dags=[
            Link(f"{kind} DAG", urls.airflow_dag(f"{name}_{kind}"), top=True)
            for kind in ("training", "inference")
        ],
    )


@dataclass(frozen=True)
class MetricsRow:
    version: int
    href: str
    aliases: list[str]
    was_champion: bool
    values: list[float | None]
    groups: list[Chip]
    created_at: datetime


@dataclass(frozen=True)
class MetricsPage:
    name: str
    metric: str
    names: list[str]
    directions: list[Direction | None]
    rows: list[MetricsRow]
    chart: Chart


def model_metrics(session: Session, name: str, urls: Urls) -> MetricsPage:
    """Raises FtiError (404) for a model without versions."""
    from sqlalchemy import select

    from fti.db.tables import ModelVersion
    from fti.errors import FtiError
    from fti.registry.aliases import CHAMPION, history
    from fti.registry.versions import aliases_by_version

    versions = list(
        session.scalars(
            select(ModelVersion).where(ModelVersion.name == name).order_by(ModelVersion.version)
        )
    )
    if not versions:
        raise FtiError(f"model {name!r} has no versions; `fti models list` lists them")
    champions = {e.to_version for e in history(session, name, CHAMPION)}
    tags = aliases_by_version(session, name)
    gate = versions[-1].metric
    names = sorted(
        {
            k
            for v in versions
            for k, x in v.metrics.items()
            if isinstance(x, int | float) and not isinstance(x, bool)
        }
        - NOT_METRICS,
        key=lambda n: (n != gate, n),
    )
    values = {n: [_number(v.metrics.get(n)) for v in versions] for n in names}
    chart = charts.metrics_over_versions(
        [v.version for v in versions],
        values,
        {n: d.words for n in names if (d := direction(n))},
        champions,
        f"Holdout metrics of {name} per version",
    )
    return MetricsPage(
        name=name,
        metric=gate,
        names=names,
        directions=[direction(n) for n in names],
        rows=[
            MetricsRow(
                version=v.version,
                href=urls.model_version(name, v.version),
                aliases=sorted(tags.get((name, v.version), [])),
                was_champion=v.version in champions,
                values=[values[n][i] for n in names],
                groups=urls.group_chips(v.feature_versions or {v.feature_group: v.feature_version}),
                created_at=v.created_at,
            )
            for i, v in enumerate(versions)
        ],
        chart=chart,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
