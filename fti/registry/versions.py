"""Model versions: registration with the next free number, look-ups, listing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from fti.db.tables import ModelAlias, ModelVersion
from fti.errors import RegistryError

REGISTER_ATTEMPTS = 20


def register_version(session: Session, name: str, **lineage: Any) -> ModelVersion:
    """Insert ``name`` at the next version number; a concurrent writer makes us take the next one.

    ``lineage`` holds the remaining ModelVersion columns (artifact, features, metrics, ...).
    """
    for _ in range(REGISTER_ATTEMPTS):
        current = session.scalar(
            select(func.max(ModelVersion.version)).where(ModelVersion.name == name)
        )
        row = ModelVersion(
            name=name, version=(current or 0) + 1, created_at=datetime.now(UTC), **lineage
        )
        try:
            with session.begin_nested():
                session.add(row)
            return row
        except IntegrityError:
            continue
    raise RegistryError(f"could not register a version of {name!r}: too many concurrent writers")


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


def list_versions(session: Session, name: str | None = None) -> list[ModelVersion]:
    query = select(ModelVersion).order_by(ModelVersion.name, ModelVersion.version)
    if name:
        query = query.where(ModelVersion.name == name)
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
        "metrics": row.metrics,
        "feature_group": row.feature_group,
        "feature_version": row.feature_version,
        "features": [f["name"] for f in row.features],
        "label": row.label,
        "train_start": row.train_start.isoformat(),
        "train_end": row.train_end.isoformat(),
        "created_at": row.created_at.isoformat(),
    }
    if full:
        data.update(
            feature_dtypes={f["name"]: f["dtype"] for f in row.features},
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
