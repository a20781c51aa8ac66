"""What SQL holds of the feature store follows its git tags: catalog rows and online rows.

A version's git tag is its commit point (``FeatureStore.publish``). SQL holds two things of
a version: its catalog row (``fti.store.catalog``) and, for a feature group's newest version,
its online rows (``fti.online``). A publish writes the catalog row before the tag, unmarked
(so the statistics it computed while writing survive any kill), and after the tag marks the
row and puts the version online in one transaction (:func:`confirm_published`). Readers list
marked rows and read the online store only, so none sees a version without its tag.

A kill leaves at most one of two things, in any group: an unmarked row of a version with no
tag (killed before the tag; git's untagged commit is dropped by the store's recovery), or an
unmarked row of a tagged version with the previous version online (killed after the tag).
:func:`reconcile`, which every publish runs under the store's lock for every group (whichever
group it publishes) and ``fti features materialise`` runs too, deletes the first, marks the
second and puts each group's newest tagged version online, in one transaction.

:func:`publish_cataloged` is ``FeatureStore.publish`` with these steps, as every publish of
fti runs it (``publish_group``, the kill tests). Given the publishing project, it first claims
the group for it (fti.ownership), in the transaction of :func:`reconcile`, under the store's
lock and before anything is written: a group another project owns is refused with the store,
the catalog and the online store untouched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy.orm import Session

from fti.db.engine import session_scope
from fti.online.materialise import Materialised, materialise_published, reconcile_online
from fti.ownership import claim
from fti.store.catalog import PartitionStatistics, mark_tagged, reconcile_catalog, record_version
from fti.store.versions import FeatureStore, PublishedVersion, read_partition_in_work_tree

if TYPE_CHECKING:
    from fti.definitions import Project


@dataclass(frozen=True)
class Reconciled:
    """What :func:`reconcile` changed: versions by group, and the online groups it re-pointed."""

    dropped: dict[str, list[int]]  # catalog rows of versions that have no tag, deleted
    completed: dict[str, list[int]]  # catalog rows of tagged versions, marked
    online: list[Materialised]


def served_keys(project: Project) -> dict[str, str]:
    """The entity key column of each of ``project``'s feature groups (label groups are not
    served online)."""
    return {group.name: group.entity.key for group in project.feature_groups}


def confirm_published(
    session: Session, store: FeatureStore, published: PublishedVersion, key: str | None
) -> Materialised | None:
    """After the version's tag: mark its catalog row and, for a feature group (``key``: its
    entity key; None for a label group), put it online, in ``session``'s transaction."""
    mark_tagged(session, published.group, published.version)
    return None if key is None else materialise_published(session, store, published, key)


def reconcile(
    session: Session,
    store: FeatureStore,
    tags: Mapping[str, Sequence[int]],
    keys: Mapping[str, str],
) -> Reconciled:
    """Make the catalog and the online store say what ``tags`` ({group: tagged versions},
    ``FeatureStore.every_version``) say, for every group, in ``session``'s transaction.

    ``keys``: the entity key of the caller's feature groups (``served_keys``), for a group
    whose first version was killed after its tag (nothing of it online to name its key).
    Run under the store's publish lock.
    """
    dropped, completed = reconcile_catalog(session, tags)
    online = reconcile_online(session, store, tags, set(completed), keys)
    return Reconciled(dropped, completed, online)


def publish_cataloged(
    store: FeatureStore,
    db_url: str,
    group: str,
    partitions: Mapping[date, pa.Table],
    message: str,
    run_id: str,
    kind: str = "features",
    keys: Mapping[str, str] | None = None,
    project: str | None = None,
    period: str = "day",
) -> PublishedVersion:
    """Publish ``partitions`` of ``group`` as ``FeatureStore.publish`` does, with its SQL steps
    in the database at ``db_url``: first :func:`reconcile` (every group), then the version's
    catalog row before its tag (statistics computed as each partition is written), then
    :func:`confirm_published` after it.

    ``keys``: the entity key of each feature group the caller serves online (``served_keys``);
    the group goes online when it is one of them and ``kind`` is ``features``.
    ``project``: the publishing project's name; the group is claimed for it (``claim``) before
    anything is written. None: no claim (a caller outside any project, e.g. a benchmark).
    ``period``: the group's partitioning, ``day`` or ``month`` (``FeatureGroup.partition``).

    Raises:
        OwnershipError: another project owns ``group``; nothing was written.
        StoreError: as ``FeatureStore.publish``.
    """
    served = dict(keys or {})
    key = served.get(group) if kind == "features" else None
    statistics = PartitionStatistics()  # of each date as it is written: it is read once

    def record(published: PublishedVersion) -> None:
        with session_scope(db_url, write=True) as session:
            record_version(
                session,
                published,
                partitions,
                run_id,
                lambda day: read_partition_in_work_tree(store, group, day),
                kind=kind,
                statistics=statistics,
            )

    def on_tagged(published: PublishedVersion) -> None:
        with session_scope(db_url, write=True) as session:
            confirm_published(session, store, published, key)

    def reconcile_tags(tags: dict[str, list[int]]) -> None:
        with session_scope(db_url, write=True) as session:
            if project is not None:  # under the store's lock, before the version is written
                claim(session, kind, group, project, run_id)
            reconcile(session, store, tags, served)

    return store.publish(
        group,
        partitions,
        message,
        record=record,
        reconcile=reconcile_tags,
        on_written=statistics.add,
        on_tagged=on_tagged,
        period=period,
    )
