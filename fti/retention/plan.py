"""What retention keeps and what it frees, decided as plain data from plain facts.

Nothing here reads a store or a file: ``fti.retention.models``, ``fti.retention.store`` and
``fti.retention.staging`` gather the facts and apply a plan, each to its own store;
``fti.pipelines.retention`` ties them together (`fti gc`, the retention DAG). The rules:

**Model versions** (registry rows stay; a pruned version's artifact goes). Kept: every version
an alias points at or ever pointed at (``alias_events``: champions, challengers, rollback
targets), every version a prediction names (batch, shadow and served scores, prediction runs,
realized metrics), and each model's newest ``keep_model_versions``. The others are pruned; an
artifact file goes once no kept version has the same file (artifacts are content-addressed).

**Group versions** (a version's git tag in the store, its catalog row, then the DVC objects
no remaining version needs). Kept: each group's newest ``keep_group_versions`` (the newest
always: it is online and ``latest``), every version a kept model version was trained on
(feature groups and label group), every version a prediction run read, every version a
training set still in staging was built from (a training run in flight registers it next).

**Staging**. A staged day of validated events goes when no build, id check or rerun can read
it any more: before every look-back that reads the source's days, that is, for each group
that reads the source, the first day of events its next date (the day after its newest
version's last date) or a rerun of its newest ``rerun_days`` dates may see, and for a source
with an id column, ``unique_within_days`` before its next day (never, for a source whose ids
are compared with every day). Staged builds of runs that ended before a group's rerun window
go, and the training sets and scoring spools of all but each model's newest
``keep_model_versions`` runs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from fti.definitions import Project

STAGED_KINDS = (
    "validated events",
    "staged build",
    "staged build record",
    "training set",
    "scoring spool",
)
ModelKey = tuple[str, int]  # (model name, version)
GroupKey = tuple[str, int]  # (group name, version)


@dataclass(frozen=True)
class ModelRow:
    """What retention needs of a registered model version."""

    name: str
    version: int
    artifact_uri: str
    artifact_sha256: str
    feature_versions: Mapping[str, int]
    label_group: str | None
    label_version: int | None
    pruned: bool = False

    @property
    def groups(self) -> dict[str, int]:
        """Every group version the version was trained on, its label group's included."""
        named = {g: int(v) for g, v in self.feature_versions.items()}
        if self.label_group is not None and self.label_version is not None:
            named[self.label_group] = int(self.label_version)
        return named


@dataclass(frozen=True)
class ModelPlan:
    kept: dict[ModelKey, list[str]]  # why each kept version is kept
    pruned: list[ModelRow]  # to mark pruned now
    artifacts: dict[str, int]  # artifact files to remove (path: bytes): no kept version's


@dataclass(frozen=True)
class GroupPlan:
    kept: dict[GroupKey, list[str]]
    dropped: list[GroupKey]  # their tags go, then their catalog rows and unused DVC objects


@dataclass(frozen=True)
class StagedFile:
    """A file or folder under the staging folder that retention removes."""

    kind: str  # validated events | staged build | training set | scoring spool
    path: Path
    bytes: int
    why: str


@dataclass
class Plan:
    models: ModelPlan
    groups: GroupPlan
    staging: list[StagedFile] = field(default_factory=list)
    cuts: dict[str, str] = field(default_factory=dict)  # per source: up to which day, and why
    remote: bool = False

    def removals(self) -> list[dict[str, Any]]:
        """One record per thing the plan removes, as `fti gc --dry-run` lists them."""
        rows: list[dict[str, Any]] = [
            {
                "kind": "model version",
                "what": f"{m.name} v{m.version}",
                "bytes": None,
                "action": "mark pruned",
            }
            for m in self.models.pruned
        ]
        rows += [
            {"kind": "model artifact", "what": path, "bytes": size, "action": "delete file"}
            for path, size in sorted(self.models.artifacts.items())
        ]
        rows += [
            {
                "kind": "group version",
                "what": f"{g}/v{v}",
                "bytes": None,
                "action": "delete tag and catalog row",
            }
            for g, v in self.groups.dropped
        ]
        if self.groups.dropped:
            where = "cache and remote" if self.remote else "cache"
            rows.append(
                {
                    "kind": "store objects",
                    "what": "not used by a remaining version",
                    "bytes": None,
                    "action": f"remove from the DVC {where}",
                }
            )
        rows += [
            {"kind": f.kind, "what": str(f.path), "bytes": f.bytes, "action": f"delete ({f.why})"}
            for f in self.staging
        ]
        return rows

    def listing(self) -> list[dict[str, Any]]:
        """``removals`` for people: staged files folded into one row per kind and folder."""
        rows = [r | {"files": 1} for r in self.removals() if r["kind"] not in STAGED_KINDS]
        folded: dict[tuple[str, str], dict[str, Any]] = {}
        for f in self.staging:
            row = folded.setdefault(
                (f.kind, str(f.path.parent)),
                {"kind": f.kind, "what": [], "bytes": 0, "files": 0, "action": f"delete ({f.why})"},
            )
            row["what"].append(f.path.name)
            row["bytes"] += f.bytes
            row["files"] += 1
        for (_, folder), row in folded.items():
            names = sorted(row["what"])
            shown = names[0] if len(names) == 1 else f"{names[0]} .. {names[-1]}"
            rows.append(row | {"what": f"{folder}/{shown}"})
        return rows

    def summary(self) -> dict[str, Any]:
        return {
            "model_versions_pruned": len(self.models.pruned),
            "model_versions_kept": len(self.models.kept),
            "artifact_bytes": sum(self.models.artifacts.values()),
            "group_versions_dropped": len(self.groups.dropped),
            "group_versions_kept": len(self.groups.kept),
            "staging_bytes": sum(f.bytes for f in self.staging),
            "staging_cuts": self.cuts,
        }


# ---- model versions -----------------------------------------------------------------------------
def decide_models(
    rows: Sequence[ModelRow],
    aliased: Mapping[ModelKey, Collection[str]],
    scored: Collection[ModelKey],
    keep: int,
    artifact_sizes: Mapping[str, int],
) -> ModelPlan:
    """Which versions keep their artifacts and which are pruned.

    ``aliased``: for each version an alias points at or ever pointed at, why (``champion``,
    ``was challenger``); ``scored``: the versions a prediction names; ``artifact_sizes``: the
    artifact files that exist (path: bytes), the others are gone already.
    """
    kept: dict[ModelKey, list[str]] = {}
    newest: dict[str, list[int]] = {}
    for row in rows:
        newest.setdefault(row.name, []).append(row.version)
    for name, versions in newest.items():
        for version in sorted(versions)[-keep:]:
            kept.setdefault((name, version), []).append(f"newest {keep}")
    for key, why in aliased.items():
        kept.setdefault(key, []).extend(sorted(why))
    for key in scored:
        kept.setdefault(key, []).append("named by predictions")
    known = {(row.name, row.version) for row in rows}
    kept = {key: why for key, why in kept.items() if key in known}
    pruned = [row for row in rows if (row.name, row.version) not in kept and not row.pruned]
    used = {row.artifact_uri for row in rows if (row.name, row.version) in kept} | {
        row.artifact_sha256 for row in rows if (row.name, row.version) in kept
    }
    gone = {
        row.artifact_uri
        for row in rows
        if (row.name, row.version) not in kept
        and row.artifact_uri not in used
        and row.artifact_sha256 not in used
        and row.artifact_uri in artifact_sizes
    }
    return ModelPlan(kept, pruned, {path: artifact_sizes[path] for path in sorted(gone)})


# ---- group versions -----------------------------------------------------------------------------
def decide_groups(
    tags: Mapping[str, Sequence[int]], named: Mapping[GroupKey, Collection[str]], keep: int
) -> GroupPlan:
    """Which group versions keep their tag. ``tags``: every group's tagged versions;
    ``named``: the versions something kept reads, and what."""
    kept: dict[GroupKey, list[str]] = {}
    for group, versions in tags.items():
        for version in sorted(versions)[-max(keep, 1) :]:
            kept.setdefault((group, version), []).append(f"newest {keep}")
    for key, why in named.items():
        if key[1] in tags.get(key[0], ()):
            kept.setdefault(key, []).extend(sorted(why))
    dropped = [
        (group, version)
        for group, versions in sorted(tags.items())
        for version in sorted(versions)
        if (group, version) not in kept
    ]
    return GroupPlan(kept, dropped)


# ---- staging --------------------------------------------------------------------------------------
def staging_cuts(
    project: Project,
    next_dates: Mapping[str, date | None],
    next_days: Mapping[str, date | None],
    rerun_days: int,
) -> dict[str, tuple[date | None, str]]:
    """Per source of ``project``: the first staged day anything may still read (None: every
    day), and why.

    ``next_dates``: per group, the day after its newest version's last date (None: no version
    yet); ``next_days``: per source, the day after its newest validated day. A group's next
    date, or a rerun of its newest ``rerun_days`` dates, reads events from ``lookback_days - 1``
    days before it (the horizon of a label lies after it); a new day's ids are compared with the
    days ``unique_within_days`` before it.
    """
    cuts: dict[str, tuple[date | None, str]] = {}
    for source in project.sources:
        firsts: list[tuple[date | None, str]] = []
        for group in project.groups:
            if source.name not in {s.name for s in group.sources}:
                continue
            after = next_dates.get(group.name)
            if after is None:
                firsts.append((None, f"{group.name} has no version yet"))
                continue
            first = after - timedelta(days=rerun_days + group.lookback_days - 1)
            firsts.append((first, f"{group.name}'s look-back of {group.lookback_days} day(s)"))
        if source.id_column is not None:
            window = source.unique_within_days
            upcoming = next_days.get(source.name)
            if window is None:
                firsts.append((None, f"ids of {source.name} are compared with every day"))
            elif upcoming is None:
                firsts.append((None, f"{source.name} has no validated day yet"))
            else:
                first = upcoming - timedelta(days=rerun_days + window)
                firsts.append((first, f"ids unique within {window} day(s)"))
        if not firsts:
            cuts[source.name] = (None, "no group reads it")
        elif any(first is None for first, _ in firsts):
            cuts[source.name] = next((f, why) for f, why in firsts if f is None)
        else:
            cuts[source.name] = min((f, why) for f, why in firsts if f is not None)
    return cuts


def rerun_window_start(next_date: date | None, rerun_days: int) -> date | None:
    """The first date of a group a rerun may still build (None: any)."""
    return None if next_date is None else next_date - timedelta(days=rerun_days)
