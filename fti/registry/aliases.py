"""Aliases (champion, challenger, ...) and their append-only history; rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import AliasEvent, ModelAlias
from fti.errors import RegistryError
from fti.registry.versions import check_loadable, get_version, lock_model

CHAMPION = "champion"


def current(session: Session, name: str, alias: str) -> int | None:
    row = session.get(ModelAlias, (name, alias))
    return row.version if row else None


def resolve(session: Session, name: str, ref: str | int) -> int:
    """A version number from ``3``, ``v3`` or an alias name.

    Raises:
        RegistryError: unknown version or alias.
    """
    text = str(ref).strip().removeprefix("v")
    if text.isdigit():
        return get_version(session, name, int(text)).version
    version = current(session, name, str(ref))
    if version is None:
        raise RegistryError(
            f"model {name!r} has no alias {ref!r}; train a model first or promote one with "
            f"`fti models promote {name} VERSION --alias {ref}`"
        )
    return version


def set_alias(
    session: Session,
    name: str,
    alias: str,
    version: int,
    actor: str,
    reason: str,
    run_id: str | None = None,
) -> AliasEvent:
    """Point ``alias`` at ``version`` and append the change to the history, in one transaction.

    Use in ``session_scope(url, write=True)``: concurrent changes of one model queue up, so each
    history row's ``from_version`` is the holder it really replaced.
    """
    lock_model(session, name)
    check_loadable(get_version(session, name, version))
    now = datetime.now(UTC)
    row = session.get(ModelAlias, (name, alias), populate_existing=True)
    previous = row.version if row else None
    if row is None:
        session.add(ModelAlias(name=name, alias=alias, version=version, updated_at=now))
    else:
        row.version, row.updated_at = version, now
    event = AliasEvent(
        name=name,
        alias=alias,
        from_version=previous,
        to_version=version,
        actor=actor,
        reason=reason,
        run_id=run_id,
        created_at=now,
    )
    session.add(event)
    session.flush()
    return event


def history(
    session: Session, name: str, alias: str | None = None, at: datetime | None = None
) -> list[AliasEvent]:
    """Alias changes, oldest first; with ``at``, only those made at or before it."""
    query = (
        select(AliasEvent)
        .where(AliasEvent.name == name)
        .order_by(AliasEvent.created_at, AliasEvent.id)
    )
    if alias:
        query = query.where(AliasEvent.alias == alias)
    if at is not None:
        query = query.where(AliasEvent.created_at <= at)
    return list(session.scalars(query))


def holder_at(session: Session, name: str, alias: str, at: datetime) -> int | None:
    """The version ``alias`` pointed at, at time ``at`` (None before it first pointed anywhere)."""
    events = history(session, name, alias, at)
    return events[-1].to_version if events else None


def rollback(session: Session, name: str, alias: str, actor: str, reason: str) -> AliasEvent:
    """Re-point ``alias`` to its previous holder (the ``from_version`` of its latest change).

    Raises:
        RegistryError: the alias has never changed hands.
    """
    lock_model(session, name)
    events = history(session, name, alias)
    if not events or events[-1].from_version is None:
        raise RegistryError(
            f"model {name!r} alias {alias!r} has no earlier version to roll back to"
        )
    return set_alias(session, name, alias, events[-1].from_version, actor, reason or "rollback")


def event_as_dict(event: AliasEvent) -> dict[str, Any]:
    return {
        "name": event.name,
        "alias": event.alias,
        "from_version": event.from_version,
        "to_version": event.to_version,
        "actor": event.actor,
        "reason": event.reason,
        "run_id": event.run_id,
        "created_at": event.created_at.isoformat(),
    }
