"""Retention in the model registry: which versions are kept (facts from the SQL tables) and
pruning the others (their rows marked, then their artifact files removed).

Order, each step safe to be killed in: the rows are marked pruned in one transaction (under
every model's lock, with the plan decided again inside it, so a promotion that names a
version meanwhile keeps it), then the files go, in a second transaction under the same locks
that removes a file only when no unpruned version names it (a training run stores and
registers an artifact under its model's lock, so a file it registers meanwhile stays). A
kill between leaves pruned rows whose files still exist; the next `fti gc` removes those
files (its plan lists the files of every pruned version that no kept version shares). A
version is never shown as loadable without its file: the mark comes first.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fti.db.tables import (
    AliasEvent,
    ModelAlias,
    ModelVersion,
    Prediction,
    PredictionRun,
    RealizedMetric,
    ServedPrediction,
    ShadowPrediction,
)
from fti.registry.versions import lock_model
from fti.retention.plan import ModelKey, ModelPlan, ModelRow, decide_models


def model_rows(session: Session, theirs: Collection[str]) -> list[ModelRow]:
    """The registry rows of every model but ``theirs`` (those other projects own: their gc's)."""
    query = select(
        ModelVersion.name,
        ModelVersion.version,
        ModelVersion.artifact_uri,
        ModelVersion.artifact_sha256,
        ModelVersion.feature_versions,
        ModelVersion.label_group,
        ModelVersion.label_version,
        ModelVersion.pruned_at,
    )
    query = query.where(ModelVersion.name.not_in(sorted(theirs))).order_by(
        ModelVersion.name, ModelVersion.version
    )
    return [
        ModelRow(name, version, uri, sha, dict(groups or {}), label, label_version, at is not None)
        for name, version, uri, sha, groups, label, label_version, at in session.execute(query)
    ]


def aliased_versions(session: Session) -> dict[ModelKey, set[str]]:
    """Every version an alias points at (``champion``) or ever pointed at (``was champion``)."""
    found: dict[ModelKey, set[str]] = {}
    for name, alias, version in session.execute(
        select(ModelAlias.name, ModelAlias.alias, ModelAlias.version)
    ):
        found.setdefault((name, version), set()).add(alias)
    events = select(
        AliasEvent.name, AliasEvent.alias, AliasEvent.from_version, AliasEvent.to_version
    )
    for name, alias, before, after in session.execute(events):
        for held in (before, after):
            if held is not None:
                found.setdefault((name, held), set()).add(f"was {alias}")
    return found


def scored_versions(session: Session) -> set[ModelKey]:
    """Every version a prediction names: batch, shadow and served scores, prediction runs,
    realized metrics."""
    found: set[ModelKey] = set()
    for table in (Prediction, ShadowPrediction, ServedPrediction, RealizedMetric):
        query = select(table.model_name, table.model_version).distinct()
        found.update((name, version) for name, version in session.execute(query))
    runs = select(PredictionRun.model_name, PredictionRun.model_version).distinct()
    found.update((n, v) for n, v in session.execute(runs) if v is not None)
    return found


def artifact_sizes(rows: list[ModelRow], root: Path) -> dict[str, int]:
    """The artifact files of ``rows`` that exist under ``root`` (path: bytes). A file outside
    ``root`` (put there by hand) is left out: retention never removes it."""
    inside = root.resolve()
    sizes: dict[str, int] = {}
    for row in rows:
        path = Path(row.artifact_uri)
        try:
            size = path.stat().st_size
        except OSError:
            continue
        if path.resolve().is_relative_to(inside):
            sizes[row.artifact_uri] = size
    return sizes


def plan_models(session: Session, keep: int, root: Path, theirs: Collection[str]) -> ModelPlan:
    rows = model_rows(session, theirs)
    return decide_models(
        rows, aliased_versions(session), scored_versions(session), keep, artifact_sizes(rows, root)
    )


def prune(session: Session, keep: int, root: Path, theirs: Collection[str]) -> ModelPlan:
    """Mark the versions retention drops pruned, in ``session``'s write transaction, the plan
    decided again under each model's lock; returns that plan (its ``artifacts`` are for
    :func:`remove_artifacts` once the transaction is committed)."""
    lock_models(session, theirs)
    decided = plan_models(session, keep, root, theirs)
    by_name: dict[str, list[int]] = {}
    for row in decided.pruned:
        by_name.setdefault(row.name, []).append(row.version)
    now = datetime.now(UTC)
    for name, versions in by_name.items():
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.name == name, ModelVersion.version.in_(versions))
            .values(pruned_at=now)
        )
    return decided


def lock_models(session: Session, theirs: Collection[str] = ()) -> None:
    """The locks of every model but ``theirs``, in one order (see
    ``fti.registry.versions.lock_model``)."""
    names = select(ModelVersion.name).distinct().where(ModelVersion.name.not_in(sorted(theirs)))
    for name in sorted(session.scalars(names)):
        lock_model(session, name)


def remove_artifacts(session: Session, artifacts: Mapping[str, int]) -> int:
    """Remove the artifact files that no unpruned version names, in ``session``'s write
    transaction under every model's lock (training stores and registers an artifact under its
    model's lock: ``fti.training.artifacts.store_artifact``); returns the bytes freed.
    The hash folders a removal leaves empty go too. Every model's lock: an artifact may be
    another project's model's too (the same bytes, the same file)."""
    lock_models(session)
    named = select(ModelVersion.artifact_uri, ModelVersion.artifact_sha256).where(
        ModelVersion.pruned_at.is_(None)
    )
    used = {value for row in session.execute(named) for value in row}
    freed = 0
    for uri, size in artifacts.items():
        path = Path(uri)
        if uri in used or path.name.removesuffix(".skops") in used:
            continue
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        freed += size
        try:
            os.rmdir(path.parent)  # sha256/<ab>/ once empty
        except OSError:
            pass
    return freed
