"""Which project owns each source, feature group, label group and model, and the claims.

Several projects may share one database and one feature store. Each name is owned by the
project that first wrote it: a source at its first validation (validation state, staged
events and quarantine are keyed by source name), a group at its first publish, a model at its
first registration. :func:`claim` runs in the transaction of that write, before it; another
project's claim is refused with one line naming the owner. Reading what another project owns
is allowed; writing it is not. A claim commits with its transaction: when the write after it
fails in a later one (a publish that dies after its claim), the project keeps the name it set
out to write, and its retry claims it again.

A claim is one ``INSERT ... ON CONFLICT DO NOTHING`` followed by a read of the row: of two
first claims at once, one inserts and the other waits for it (PostgreSQL's unique index;
SQLite's write lock, taken by ``session_scope(url, write=True)``), then reads its owner.
Feature and label groups share the store's names (a folder, a git tag per version), so a group
is refused when another project owns the name as either kind; publishes of one store are
serialised by its lock, so that check needs no more.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from fti.db.tables import Owner
from fti.errors import OwnershipError

SOURCE, FEATURES, LABELS, MODEL = "source", "features", "labels", "model"
KINDS = (SOURCE, FEATURES, LABELS, MODEL)
GROUP_KINDS = (FEATURES, LABELS)
NOUNS = {SOURCE: "source", FEATURES: "feature group", LABELS: "label group", MODEL: "model"}


def refusal(kind: str, name: str, owner: str, project: str) -> str:
    """The one line a refused claim raises: who owns the name and what ``project`` may do."""
    head = f"{NOUNS[kind]} {name!r} belongs to project {owner!r}; project {project!r}"
    if kind in GROUP_KINDS:
        return f"{head} may read it (declare it as read from {owner!r}), not publish it"
    if kind == SOURCE:
        return (
            f"{head} may not validate it: validation state, staged events and quarantine are "
            f"kept by source name, so give {project!r}'s source another name"
        )
    return f"{head} may not register versions of it: give {project!r}'s model another name"


def claim(session: Session, kind: str, name: str, project: str, run_id: str) -> None:
    """Make ``project`` the owner of ``name`` (a ``kind``), or confirm it already is.

    Run it in the transaction that writes ``name`` (``session_scope(url, write=True)``),
    before the write. Idempotent for the owner: a second claim changes nothing.

    Raises:
        OwnershipError: another project owns the name (for a group: as either group kind).
    """
    if kind not in KINDS:
        raise ValueError(f"unknown kind of owned name {kind!r}; one of {', '.join(KINDS)}")
    values = {
        "kind": kind,
        "name": name,
        "project": project,
        "claimed_at": datetime.now(UTC),
        "run_id": run_id,
    }
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(Owner)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["kind", "name"])
    )
    kinds = GROUP_KINDS if kind in GROUP_KINDS else (kind,)
    for row in session.scalars(select(Owner).where(Owner.name == name, Owner.kind.in_(kinds))):
        if row.project != project:
            raise OwnershipError(refusal(row.kind, name, row.project, project))


def owner_of(session: Session, kind: str, name: str) -> str | None:
    """The project that owns ``name`` (a ``kind``); None when no project claimed it yet."""
    row = session.get(Owner, (kind, name))
    return None if row is None else row.project


def owners(session: Session, kinds: Iterable[str] = KINDS) -> dict[tuple[str, str], str]:
    """``{(kind, name): project}`` of every claimed name of ``kinds``."""
    query = select(Owner).where(Owner.kind.in_(list(kinds)))
    return {(row.kind, row.name): row.project for row in session.scalars(query)}


def list_owners(
    session: Session, project: str | None = None, kind: str | None = None
) -> list[Owner]:
    """Claimed names by kind and name; only ``project``'s, only of ``kind``, when given."""
    query = select(Owner).order_by(Owner.kind, Owner.name)
    if project is not None:
        query = query.where(Owner.project == project)
    if kind is not None:
        query = query.where(Owner.kind == kind)
    return list(session.scalars(query))


def owned_elsewhere(
    session: Session, project: str, names: Iterable[tuple[str, str]]
) -> list[tuple[str, str, str]]:
    """Of ``names`` ((kind, name) that ``project`` writes), those another project owns, as
    (kind, name, owner) in the order given; a group counts under either group kind."""
    claimed = owners(session)
    found = []
    for kind, name in names:
        kinds = GROUP_KINDS if kind in GROUP_KINDS else (kind,)
        for other in kinds:
            owner = claimed.get((other, name))
            if owner is not None and owner != project:
                found.append((other, name, owner))
                break
    return found


def as_dict(row: Owner) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "name": row.name,
        "project": row.project,
        "claimed_at": row.claimed_at.isoformat(),
        "run_id": row.run_id,
    }
