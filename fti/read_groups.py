"""The groups a project reads from other projects, against what the store's catalog holds.

A ``ReadGroup`` declares the columns a project uses and their types; the owning project may
drop or retype one in a later version. ``read_problems`` compares a declaration with a
version's schema (the catalog's ``feature_versions.schema``, Arrow type names) and says, one
line each naming the models that read it, what no longer matches; `fti check` runs it on the
newest tagged version (``catalog_findings``), training on the version it reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from fti.definitions import LABEL, LABEL_DATE, Project, ReadGroup, ReadLabelGroup
from fti.ownership import owner_of
from fti.store.catalog import list_versions

KEY_DATE = {"features": "feature_date", "labels": LABEL_DATE}  # the date column of each kind
# A column with no value in any partition yet: the store lets a later version type it.
NO_VALUES_YET = "null"


@dataclass
class ReadFindings:
    """``problems``: the definition no longer matches the store (`fti check` fails);
    ``notes``: read groups with no published version yet (awaited from their owner)."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def readers(project: Project, group: str) -> list[str]:
    """The project's models that read ``group`` (as a feature group or as their label)."""
    return [
        m.name for m in project.models if m.label.name == group or group in project.model_groups(m)
    ]


def read_problems(
    group: ReadGroup | ReadLabelGroup,
    models: Sequence[str],
    version: int,
    kind: str,
    schema: Mapping[str, str],
    which: str = "newest version",
) -> list[str]:
    """What of ``group``'s declaration ``version`` (of ``kind``, with ``schema``: column ->
    Arrow type) does not hold, one line each; empty when it all does."""
    who = _who(group, models)
    origin = f"read from project {group.owner!r}"
    held = f"its {which} v{version}"
    if kind != group.kind:
        other = "ReadLabelGroup" if kind == "labels" else "ReadGroup"
        return [
            f"{who}: {group.name!r} {origin} is a {_noun(kind)} in {held}, not a "
            f"{group.noun}; declare it as a {other}"
        ]
    key = group.entity.key
    if key not in schema:
        return [
            f"{who}: {group.noun} {group.name!r} {origin} has no column {key!r} (the key of "
            f"entity {group.entity.name!r}) in {held}; it has {', '.join(schema) or 'none'}: "
            "declare the entity it is about"
        ]
    has = ", ".join(f"{c} ({t})" for c, t in schema.items() if c not in (key, KEY_DATE[kind]))
    problems = []
    for column, declared in group.declared.items():
        name = f"label of {group.name!r}" if column == LABEL else f"feature '{group.name}.{column}'"
        if column not in schema:
            problems.append(
                f"{who}: {name} {origin} is not in {held} (dropped?); it has: {has or 'nothing'}"
            )
        elif schema[column] not in (declared, NO_VALUES_YET):
            problems.append(
                f"{who}: {name} {origin} is declared {declared} but {held} has {schema[column]} "
                "(retyped?); declare the new type, or ask the owner"
            )
    return problems


def catalog_findings(session: Session, project: Project) -> ReadFindings:
    """Each read group against the newest tagged version the catalog holds of it."""
    found = ReadFindings()
    for group in project.reads:
        models = readers(project, group.name)
        versions = list_versions(session, group.name)
        if not versions:
            found.notes.append(
                f"{_who(group, models)}: {group.noun} {group.name!r} has no published version "
                f"yet: awaited from its owner, project {group.owner!r}"
            )
            continue
        owner = owner_of(session, group.kind, group.name)
        if owner is not None and owner != group.owner:
            found.problems.append(
                f"{_who(group, models)}: {group.noun} {group.name!r} is declared as read from "
                f"project {group.owner!r}, but project {owner!r} owns it: set owner={owner!r}"
            )
        newest = versions[-1]
        found.problems += read_problems(
            group, models, newest.version, newest.kind, dict(newest.schema)
        )
    return found


def _who(group: ReadGroup | ReadLabelGroup, models: Sequence[str]) -> str:
    if not models:
        return f"read {group.noun} {group.name!r} (no model uses it)"
    return ("model " if len(models) == 1 else "models ") + ", ".join(repr(m) for m in models)


def _noun(kind: str) -> str:
    return "label group" if kind == "labels" else "feature group"
