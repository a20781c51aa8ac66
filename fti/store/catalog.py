"""The SQL catalog that mirrors every published feature-group version."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from fti.db.tables import FeatureVersion
from fti.errors import VersionNotFoundError
from fti.store.statistics import column_statistics, merge_statistics, schema_hash, schema_of
from fti.store.versions import PublishedVersion


def record_version(
    session: Session,
    published: PublishedVersion,
    partitions: Mapping[date, pa.Table],
    run_id: str,
    read_partition: Callable[[date], pa.Table],
    kind: str = "features",
    statistics: Mapping[date, dict[str, dict[str, Any]]] | None = None,
) -> FeatureVersion:
    """Write the catalog row of a version (replacing a row a killed publish left behind).

    Statistics of the partitions it wrote are ``statistics[day]`` when given (computed as the
    publish wrote them, see ``PartitionStatistics``), else computed from ``partitions``; those
    it kept come from the catalog rows of the versions that wrote them (``read_partition``
    reads a partition only when no row has them, e.g. for versions published before fti kept
    them), and the version's statistics are merged from all of them.
    """
    session.execute(
        delete(FeatureVersion).where(
            FeatureVersion.group_name == published.group,
            FeatureVersion.version == published.version,
        )
    )
    given = statistics or {}
    written = {
        day.isoformat(): given[day] if day in given else column_statistics(partitions[day])
        for day in published.changed_dates
    }
    kept = _kept_partition_statistics(session, published)
    for day in published.dates:
        if day.isoformat() not in written and day.isoformat() not in kept:
            kept[day.isoformat()] = column_statistics(read_partition(day))
    every = [written.get(d.isoformat()) or kept[d.isoformat()] for d in published.dates]
    schema = schema_of(published.schema)
    row = FeatureVersion(
        group_name=published.group,
        kind=kind,
        version=published.version,
        git_tag=published.git_tag,
        git_rev=published.git_rev,
        dvc_md5=published.dvc_md5,
        schema=schema,
        schema_hash=schema_hash(schema),
        row_count=sum(_rows(stats) for stats in every),
        partitions=len(published.dates),
        min_date=min(published.dates) if published.dates else None,
        max_date=max(published.dates) if published.dates else None,
        statistics=merge_statistics(every),
        partition_statistics=written,
        changed_dates=[d.isoformat() for d in published.changed_dates],
        run_id=run_id,
        created_at=datetime.now(UTC),
        tagged=False,  # until the version's tag exists (see mark_tagged)
    )
    session.add(row)
    session.flush()
    return row


class PartitionStatistics(dict[date, dict[str, dict[str, Any]]]):
    """Each partition's statistics, computed as a publish writes it: pass it as
    ``FeatureStore.publish(..., on_written=stats.add)`` and to ``record_version(...,
    statistics=stats)``, and a publish reads each partition once (the table it writes)."""

    def add(self, day: date, table: pa.Table) -> None:
        self[day] = column_statistics(table)


def mark_tagged(session: Session, group: str, version: int) -> None:
    """Mark the catalog row of ``group`` ``version`` as tagged: readers see it from now on."""
    session.execute(
        update(FeatureVersion)
        .where(FeatureVersion.group_name == group, FeatureVersion.version == version)
        .values(tagged=True)
    )


def reconcile_catalog(
    session: Session, tags: Mapping[str, Collection[int]]
) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
    """Make the catalog say what the store's ``tags`` say ({group: its tagged versions}).

    Returns ``(dropped, completed)``, versions by group: the rows of versions without a tag
    are deleted (a publish killed after writing its row and before its tag left them), and
    the rows of tagged versions not marked yet are marked (a publish killed after its tag and
    before marking the row). Every group's rows, whichever group is publishing now; run under
    the store's publish lock, when no publisher is between its row and its tag.
    """
    dropped: dict[str, list[int]] = {}
    completed: dict[str, list[int]] = {}
    rows = session.execute(
        select(FeatureVersion.group_name, FeatureVersion.version, FeatureVersion.tagged)
    )
    for group, version, tagged in rows.all():
        if version not in tags.get(group, ()):
            dropped.setdefault(group, []).append(version)
        elif not tagged:
            completed.setdefault(group, []).append(version)
    for group, versions in dropped.items():
        session.execute(
            delete(FeatureVersion).where(
                FeatureVersion.group_name == group, FeatureVersion.version.in_(versions)
            )
        )
    for group, versions in completed.items():
        session.execute(
            update(FeatureVersion)
            .where(FeatureVersion.group_name == group, FeatureVersion.version.in_(versions))
            .values(tagged=True)
        )
    return dropped, completed


def _kept_partition_statistics(
    session: Session, published: PublishedVersion
) -> dict[str, dict[str, Any]]:
    """Statistics of the partitions this version kept, from the newest earlier version with them."""
    wanted = {d.isoformat() for d in published.dates} - {
        d.isoformat() for d in published.changed_dates
    }
    found: dict[str, dict[str, Any]] = {}
    earlier = session.scalars(
        select(FeatureVersion.partition_statistics)
        .where(
            FeatureVersion.group_name == published.group,
            FeatureVersion.version < published.version,
        )
        .order_by(FeatureVersion.version.desc())
    )
    for partition_statistics in earlier:
        for day, stats in (partition_statistics or {}).items():
            if day in wanted and day not in found:
                found[day] = stats
        if len(found) == len(wanted):
            break
    return found


def _rows(stats: dict[str, dict[str, Any]]) -> int:
    return next(iter(stats.values()))["count"] if stats else 0


def list_versions(
    session: Session,
    group: str | None = None,
    limit: int | None = None,
    offset: int = 0,
    groups: Collection[str] | None = None,
) -> list[FeatureVersion]:
    """Catalog rows of tagged versions, oldest first (with ``limit``: a page of them, newest
    first); only those of ``groups``, when given.

    (A publish writes its row before its tag and marks it once the tag exists; a row it was
    killed between leaves is not listed, and the next publish deletes it or marks it, see
    ``reconcile_catalog``.)
    """
    query = select(FeatureVersion).order_by(FeatureVersion.group_name, FeatureVersion.version)
    if limit is not None:
        query = (
            select(FeatureVersion)
            .order_by(FeatureVersion.created_at.desc(), FeatureVersion.id.desc())
            .limit(limit)
            .offset(offset)
        )
    query = query.where(FeatureVersion.tagged)
    if group:
        query = query.where(FeatureVersion.group_name == group)
    if groups is not None:
        query = query.where(FeatureVersion.group_name.in_(list(groups)))
    return list(session.scalars(query))


def newest_versions(session: Session) -> list[FeatureVersion]:
    """The catalog row of each group's newest tagged version, by group name."""
    newest = (
        select(FeatureVersion.group_name, func.max(FeatureVersion.version).label("version"))
        .where(FeatureVersion.tagged)
        .group_by(FeatureVersion.group_name)
        .subquery()
    )
    query = (
        select(FeatureVersion)
        .join(
            newest,
            (FeatureVersion.group_name == newest.c.group_name)
            & (FeatureVersion.version == newest.c.version),
        )
        .order_by(FeatureVersion.group_name)
    )
    return list(session.scalars(query))


def diff_versions(a: FeatureVersion, b: FeatureVersion) -> dict[str, Any]:
    """What changed from version ``a`` to ``b``: schema, rows, dates and statistic shifts."""
    schema = {
        "added": {k: v for k, v in b.schema.items() if k not in a.schema},
        "removed": {k: v for k, v in a.schema.items() if k not in b.schema},
        "retyped": {
            k: [a.schema[k], v] for k, v in b.schema.items() if k in a.schema and a.schema[k] != v
        },
    }
    shifts: dict[str, dict[str, Any]] = {}
    for name in sorted(set(a.statistics) & set(b.statistics)):
        old, new = a.statistics[name], b.statistics[name]
        change: dict[str, Any] = {
            key: {"from": old.get(key), "to": new.get(key)}
            for key in ("min", "max", "mean", "distinct")
            if old.get(key) != new.get(key)
        }
        null_shares = [_share(old), _share(new)]
        if null_shares[0] != null_shares[1]:
            change["null_share"] = {"from": null_shares[0], "to": null_shares[1]}
        if isinstance(old.get("mean"), int | float) and isinstance(new.get("mean"), int | float):
            spread = (old.get("max", 0) - old.get("min", 0)) or 1
            change["mean_shift_in_ranges"] = round((new["mean"] - old["mean"]) / spread, 6)
        new_values = sorted(set(new.get("top", {})) - set(old.get("top", {})))
        if new_values:
            change["new_top_values"] = new_values
        if change:
            shifts[name] = change
    return {
        "group": b.group_name,
        "from": a.version,
        "to": b.version,
        "schema": schema,
        "rows": {"from": a.row_count, "to": b.row_count, "change": b.row_count - a.row_count},
        "partitions": {"from": a.partitions, "to": b.partitions},
        "dates": {
            "from": [_iso(a.min_date), _iso(a.max_date)],
            "to": [_iso(b.min_date), _iso(b.max_date)],
        },
        "changed_dates": b.changed_dates,
        "statistics": shifts,
    }


def _share(stats: dict[str, Any]) -> float:
    return round(stats["nulls"] / stats["count"], 6) if stats.get("count") else 0.0


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None


def get_version(session: Session, group: str, version: int) -> FeatureVersion:
    row = session.scalar(
        select(FeatureVersion).where(
            FeatureVersion.group_name == group,
            FeatureVersion.version == version,
            FeatureVersion.tagged,
        )
    )
    if row is None:
        raise VersionNotFoundError(
            f"the catalog has no {group} v{version}; `fti features versions {group}` lists "
            "the versions it has (one the store has and the catalog lacks was being published "
            "when its publisher died: `fti features materialise` completes it)"
        )
    return row


def as_dict(row: FeatureVersion, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "group": row.group_name,
        "kind": row.kind,
        "version": row.version,
        "rows": row.row_count,
        "partitions": row.partitions,
        "min_date": row.min_date.isoformat() if row.min_date else None,
        "max_date": row.max_date.isoformat() if row.max_date else None,
        "dvc_md5": row.dvc_md5,
        "git_tag": row.git_tag,
        "changed_dates": row.changed_dates,
        "run_id": row.run_id,
        "created_at": row.created_at.isoformat(),
    }
    if full:
        data.update(
            git_rev=row.git_rev,
            schema=row.schema,
            schema_hash=row.schema_hash,
            statistics=row.statistics,
        )
    return data
