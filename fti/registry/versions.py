"""Model versions: registration with the next free number, look-ups, listing."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from fti.db.tables import ModelAlias, ModelVersion
from fti.errors import RegistryError
from fti.ownership import MODEL, claim


def lock_model(session: Session, name: str) -> None:
    """Serialise writers of one model's versions and aliases until the transaction ends.

    PostgreSQL: a transaction-level advisory lock per model name. SQLite: the caller's
    ``session_scope(url, write=True)`` already holds the database's write lock.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"fti-model:{name}"}
        )


def register_version(
    session: Session, name: str, project: str | None = None, **lineage: Any
) -> ModelVersion:
    """Insert ``name`` at the next version number: 1, 2, 3 ... without gaps or duplicates.

    Use in ``session_scope(url, write=True)``; concurrent registrations queue on the model's lock.
    ``lineage`` holds the remaining ModelVersion columns (artifact, features, metrics, ...).
    ``project``: the registering project's name; the model is claimed for it first
    (fti.ownership), in this transaction. None: no claim (a caller outside any project).

    Raises:
        OwnershipError: another project owns the model; nothing was registered.
    """
    lock_model(session, name)
    if project is not None:
        claim(session, MODEL, name, project, lineage["run_id"])
    current = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.name == name)
    )
    row = ModelVersion(
        name=name, version=(current or 0) + 1, created_at=datetime.now(UTC), **lineage
    )
    session.add(row)
    session.flush()
    return row


def find_identical(
    session: Session,
    name: str,
    feature_versions: dict[str, int],
    label_group: str,
    label_version: int,
    features: list[dict[str, str]],
    params: dict[str, Any],
    code_version: str,
    train_start: date,
    train_end: date,
) -> int | None:
    """The newest version of ``name`` trained on exactly these inputs, if there is one (and
    not pruned by retention).

    Same group and label versions, training window, features (group and name, in order),
    params and code version: training it again would only make a copy.
    """
    rows = session.scalars(
        select(ModelVersion)
        .where(
            ModelVersion.name == name,
            ModelVersion.label_group == label_group,
            ModelVersion.label_version == label_version,
            ModelVersion.code_version == code_version,
            ModelVersion.train_start == train_start,
            ModelVersion.train_end == train_end,
            ModelVersion.pruned_at.is_(None),  # its artifact is gone: train it again
        )
        .order_by(ModelVersion.version.desc())
    )
    for row in rows:
        mine = [{"group": f.get("group"), "name": f["name"]} for f in row.features]
        if row.feature_versions == feature_versions and mine == features and row.params == params:
            return row.version
    return None


def get_version(session: Session, name: str, version: int) -> ModelVersion:
    row = session.scalar(
        select(ModelVersion).where(ModelVersion.name == name, ModelVersion.version == version)
    )
    if row is None:
        known = list_versions(session, name)
        raise RegistryError(
            f"model {name!r} has no version {version}; known: {[v.version for v in known] or 'none'}"
        )
    return row


def check_loadable(row: ModelVersion) -> ModelVersion:
    """``row``, unless retention removed its artifact.

    Raises:
        RegistryError: the version was pruned (``fti gc``): it cannot be loaded or promoted.
    """
    if row.pruned_at is not None:
        raise RegistryError(
            f"model {row.name!r} v{row.version} was pruned by retention on "
            f"{row.pruned_at:%Y-%m-%d} (`fti gc`): its artifact is gone; use a kept version "
            f"(`fti models list`) or train again"
        )
    return row


def list_versions(
    session: Session,
    name: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    names: Collection[str] | None = None,
) -> list[ModelVersion]:
    """Versions by name and number (with ``limit``: a page of them, newest first); only
    those of ``names``, when given."""
    query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
    if limit is not None:
        query = (
            select(ModelVersion)
            .order_by(ModelVersion.created_at.desc(), ModelVersion.id.desc())
            .limit(limit)
            .offset(offset)
        )
    if name:
        query = query.where(ModelVersion.name == name)
    if names is not None:
        query = query.where(ModelVersion.name.in_(list(names)))
    return list(session.scalars(query))


def aliases_by_version(
    session: Session, name: str | None = None
) -> dict[tuple[str, int], list[str]]:
    query = select(ModelAlias)
    if name:
        query = query.where(ModelAlias.name == name)
    found: dict[tuple[str, int], list[str]] = {}
    for alias in session.scalars(query):
        found.setdefault((alias.name, alias.version), []).append(alias.alias)
    return found


def as_dict(
    row: ModelVersion, aliases: list[str] | None = None, full: bool = False
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": row.name,
        "version": row.version,
        "aliases": sorted(aliases or []),
        "task": row.task,
        "metric": row.metric,
        "metric_value": row.metrics.get(row.metric),
        "metrics": row.metrics,
        "feature_group": row.feature_group,
        "feature_version": row.feature_version,
        "feature_versions": row.feature_versions,
        "features": [f"{f.get('group', row.feature_group)}.{f['name']}" for f in row.features],
        "label": row.label,
        "label_group": row.label_group,
        "label_version": row.label_version,
        "train_start": row.train_start.isoformat(),
        "train_end": row.train_end.isoformat(),
        "created_at": row.created_at.isoformat(),
        # When retention removed the artifact (`fti gc`); None: the version can be loaded.
        "pruned_at": row.pruned_at.isoformat() if row.pruned_at else None,
    }
    if full:
        data.update(
            feature_dtypes={f["name"]: f["dtype"] for f in row.features},
            feature_ttl_days={
                f.get("group", row.feature_group): f.get("ttl_days", 0) for f in row.features
            },
            promotion=row.promotion,
            artifact_uri=row.artifact_uri,
            artifact_sha256=row.artifact_sha256,
            estimator=row.estimator,
            params=row.params,
            n_train=row.n_train,
            n_holdout=row.n_holdout,
            library_versions=row.library_versions,
            code_version=row.code_version,
            run_id=row.run_id,
        )
    return data


def compare(a: ModelVersion, b: ModelVersion) -> dict[str, Any]:
    """Two versions side by side: metrics, feature sets, training windows, parameters."""
    a_features = {f"{f.get('group', a.feature_group)}.{f['name']}": f["dtype"] for f in a.features}
    b_features = {f"{f.get('group', b.feature_group)}.{f['name']}": f["dtype"] for f in b.features}
    metrics = {}
    for key in sorted(set(a.metrics) | set(b.metrics)):
        left, right = a.metrics.get(key), b.metrics.get(key)
        delta = (
            right - left
            if isinstance(left, int | float) and isinstance(right, int | float)
            else None
        )
        metrics[key] = {f"v{a.version}": left, f"v{b.version}": right, "delta": delta}
    return {
        "name": a.name,
        "versions": [a.version, b.version],
        "metrics": metrics,
        "features": {
            "common": sorted(set(a_features) & set(b_features)),
            f"only_v{a.version}": sorted(set(a_features) - set(b_features)),
            f"only_v{b.version}": sorted(set(b_features) - set(a_features)),
            "dtype_changed": sorted(
                n for n in set(a_features) & set(b_features) if a_features[n] != b_features[n]
            ),
        },
        "metric": a.metric,
        "feature_versions": {
            f"v{a.version}": a.feature_versions,
            f"v{b.version}": b.feature_versions,
        },
        "label_versions": {
            f"v{v.version}": f"{v.label_group} v{v.label_version}" if v.label_group else v.label
            for v in (a, b)
        },
        "training_windows": {
            f"v{v.version}": {
                "start": v.train_start.isoformat(),
                "end": v.train_end.isoformat(),
                "n_train": v.n_train,
                "n_holdout": v.n_holdout,
            }
            for v in (a, b)
        },
        "params_changed": {
            key: {f"v{a.version}": a.params.get(key), f"v{b.version}": b.params.get(key)}
            for key in sorted(set(a.params) | set(b.params))
            if a.params.get(key) != b.params.get(key)
        },
    }
