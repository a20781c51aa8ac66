"""The SQL catalog that mirrors every published feature-group version."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import FeatureVersion
from fti.errors import VersionNotFoundError
from fti.store.statistics import column_statistics, schema_hash, schema_of
from fti.store.versions import DATE_COLUMN, PublishedVersion


def record_version(
    session: Session, published: PublishedVersion, snapshot: pa.Table, partitions: int, run_id: str
) -> FeatureVersion:
    """Insert the catalog row of a version from the full snapshot it holds."""
    schema = schema_of(snapshot)
    dates = snapshot.column(DATE_COLUMN)
    row = FeatureVersion(
        group_name=published.group,
        version=published.version,
        git_tag=published.git_tag,
        git_rev=published.git_rev,
        dvc_md5=published.dvc_md5,
        schema=schema,
        schema_hash=schema_hash(schema),
        row_count=snapshot.num_rows,
        partitions=partitions,
        min_date=pc.min(dates).as_py() if len(dates) else None,
        max_date=pc.max(dates).as_py() if len(dates) else None,
        statistics=column_statistics(snapshot),
        changed_dates=[d.isoformat() for d in published.changed_dates],
        run_id=run_id,
        created_at=datetime.now(UTC),
    )
    session.add(row)
    session.flush()
    return row


def list_versions(session: Session, group: str | None = None) -> list[FeatureVersion]:
    query = select(FeatureVersion).order_by(FeatureVersion.group_name, FeatureVersion.version)
    if group:
        query = query.where(FeatureVersion.group_name == group)
    return list(session.scalars(query))


def get_version(session: Session, group: str, version: int) -> FeatureVersion:
    row = session.scalar(
        select(FeatureVersion).where(
            FeatureVersion.group_name == group, FeatureVersion.version == version
        )
    )
    if row is None:
        raise VersionNotFoundError(f"the catalog has no {group} v{version}")
    return row


def as_dict(row: FeatureVersion, full: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "group": row.group_name,
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
