"""Retention in the feature store: which group versions something kept still reads (facts from
SQL and the staged training sets), and dropping the others.

A version exists while its git tag does (``fti.store.versions``), so dropping versions is, under
the store's publish lock (no publisher is between its catalog row and its tag meanwhile), each
step safe to be killed in:

1. one transaction: the statistics of the partitions the dropped versions wrote are carried to
   the next kept version's catalog row (a later publish takes the statistics of the partitions
   it keeps from there instead of reading them again), and their rows are marked untagged, so
   readers of the catalog stop listing them before their tags go;
2. their git tags are deleted (one ``git tag -d``), after the in-progress marker
   ``GC_IN_PROGRESS`` is written;
3. ``fti.store.tagged.reconcile`` in one transaction: the catalog rows of versions without a tag
   are deleted, and the online store stays on each group's newest version (never dropped);
4. the DVC objects no remaining version and no work-tree file reads are removed from the cache
   (and from the DVC remote, with ``remote: true``), as ``dvc gc`` removes them
   (``collect_objects`` says why not ``dvc gc --all-tags`` itself); then the marker goes.

No step removes data a remaining tag names, and the tags go before any object does: a reader
sees a version whole or not at all. A kill leaves the marker; the next gc (or publish, which
recovers the store and reconciles the catalog with the tags) finishes: gc collects the objects
again whenever it finds the marker, whatever its plan drops.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from filelock import FileLock
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fti.db.engine import session_scope
from fti.db.tables import FeatureVersion, ModelVersion, PredictionRun, ShadowPrediction
from fti.online.materialise import PUBLISH_LOCK
from fti.retention.plan import GroupKey, GroupPlan, ModelKey, decide_groups
from fti.store.layout import version_tag
from fti.store.recovery import fault_point
from fti.store.registry_repo import git, open_dvc
from fti.store.tagged import reconcile
from fti.store.versions import LOCK_TIMEOUT_S, FeatureStore

GC_IN_PROGRESS = ".git/fti-gc-in-progress"  # from the first tag deleted until objects are gone
# Where the kill tests stop a gc (``FTI_FAULT_POINT``, see fti.store.recovery.fault_point).
FAULT_POINTS = ("gc.untagged", "gc.tags", "gc.reconciled")


def named_versions(
    session: Session,
    staging: Path,
    pruned: Collection[ModelKey] = (),
    removed: Collection[Path] = (),
) -> dict[GroupKey, set[str]]:
    """The group versions something kept reads, and what: the versions (feature groups and
    label group) a model version that is not pruned was trained on, those a prediction run
    (or a shadow score) read, and those a training set still in ``staging`` was built from.

    A dry run counts the versions in ``pruned`` as pruned and the training sets in ``removed``
    as removed, as the gc it stands for will have done by then."""
    named: dict[GroupKey, set[str]] = {}

    def add(group: str | None, version: Any, why: str) -> None:
        if group is not None and version is not None:
            named.setdefault((group, int(version)), set()).add(why)

    models = select(
        ModelVersion.name,
        ModelVersion.version,
        ModelVersion.feature_versions,
        ModelVersion.label_group,
        ModelVersion.label_version,
    ).where(ModelVersion.pruned_at.is_(None))
    for name, version, groups, label, label_version in session.execute(models):
        if (name, version) in pruned:
            continue
        for group, number in (groups or {}).items():
            add(group, number, f"model {name} v{version}")
        add(label, label_version, f"model {name} v{version}")
    runs = select(
        PredictionRun.feature_group, PredictionRun.feature_version, PredictionRun.feature_versions
    )
    for group, number, groups in session.execute(runs):
        add(group, number, "a prediction run")
        for other, version in (groups or {}).items():
            add(other, version, "a prediction run")
    shadows = select(ShadowPrediction.feature_group, ShadowPrediction.feature_version).distinct()
    for group, number in session.execute(shadows):
        add(group, number, "a shadow score")
    for meta in sorted(set((staging / "training").glob("*/*.json")) - set(removed)):
        try:
            lineage = json.loads(meta.read_text(encoding="utf-8"))
            for group, number in lineage["feature_versions"].items():
                add(group, number, "a training set in staging")
            add(lineage["label_group"], lineage["label_version"], "a training set in staging")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue  # being written, or not one of fti's: nothing to keep for it
    return named


def plan_groups(
    session: Session, store: FeatureStore, staging: Path, keep: int, theirs: Collection[str]
) -> GroupPlan:
    """What happens to the versions of every group but ``theirs`` (those other projects own:
    their gc's). Whatever any model reads is kept, whoever owns the model."""
    return decide_groups(own_tags(store, theirs), named_versions(session, staging), keep)


def own_tags(store: FeatureStore, theirs: Collection[str]) -> dict[str, list[int]]:
    """The tagged versions of every group of the store but ``theirs``."""
    return {g: list(v) for g, v in store.every_version().items() if g not in theirs}


def next_dates(session: Session) -> dict[str, date | None]:
    """Per group: the day after the last date of its newest tagged version (None: no version)."""
    newest: dict[str, Any] = {}
    rows = select(FeatureVersion.group_name, FeatureVersion.version, FeatureVersion.max_date).where(
        FeatureVersion.tagged
    )
    for group, version, last in session.execute(rows):
        if group not in newest or version > newest[group][0]:
            newest[group] = (version, last)
    return {
        group: (last + timedelta(days=1) if last is not None else None)
        for group, (_, last) in newest.items()
    }


def carry_statistics(session: Session, dropped: Sequence[GroupKey]) -> None:
    """Give each kept version the partition statistics of the dropped versions just before it
    (for the days it does not hold statistics of itself): a later publish finds the statistics
    of the partitions it keeps in the newest earlier row that has them
    (``fti.store.catalog``), and without this it would read those partitions again."""
    gone: dict[str, set[int]] = {}
    for group, version in dropped:
        gone.setdefault(group, set()).add(version)
    for group, versions in gone.items():
        rows = session.scalars(
            select(FeatureVersion)
            .where(FeatureVersion.group_name == group)
            .order_by(FeatureVersion.version)
        )
        pending: dict[str, Any] = {}
        for row in rows:
            if row.version in versions:
                pending.update(row.partition_statistics or {})
            elif pending:
                row.partition_statistics = {**pending, **(row.partition_statistics or {})}
                pending = {}


def drop_versions(
    store: FeatureStore,
    db_url: str,
    staging: Path,
    keep: int,
    keys: Mapping[str, str],
    theirs: Collection[str] = (),
    remote: bool = False,
) -> GroupPlan:
    """Drop the group versions retention does not keep (the plan is decided under the store's
    lock), in the order the module's docstring gives; returns the plan applied.

    ``keys``: the entity key of each served feature group (``fti.store.tagged.served_keys``);
    ``theirs``: the groups other projects own, whose versions their own gc decides. The DVC
    objects no remaining tag of any group reads go from the whole store.

    Raises:
        StoreError: git or DVC failed; what was done stays done and the next gc goes on.
    """
    with FileLock(str(store.path / PUBLISH_LOCK), timeout=LOCK_TIMEOUT_S):
        store.recover()
        marker = store.path / GC_IN_PROGRESS
        with session_scope(db_url, write=True) as session:
            plan = plan_groups(session, store, staging, keep, theirs)
            carry_statistics(session, plan.dropped)
            for group, version in plan.dropped:
                session.execute(
                    update(FeatureVersion)
                    .where(FeatureVersion.group_name == group, FeatureVersion.version == version)
                    .values(tagged=False)
                )
        fault_point("gc.untagged")
        if plan.dropped:
            marker.write_text(" ".join(version_tag(g, v) for g, v in plan.dropped))
            git(store.path, "tag", "-d", *(version_tag(g, v) for g, v in plan.dropped))
        fault_point("gc.tags")
        with session_scope(db_url, write=True) as session:
            reconcile(session, store, store.every_version(), keys)
        fault_point("gc.reconciled")
        if marker.exists():
            collect_objects(store, remote)
            marker.unlink()
    return plan


def used_objects(store: FeatureStore) -> set[str]:
    """The md5 of every DVC object a tagged version or the work tree reads."""
    used: set[str] = set()
    for group, versions in store.every_version().items():
        for version in versions:
            used |= store.objects(group, version)
    for dvc_file in sorted((store.path / "data").glob("*.dvc")):
        used |= store.objects(dvc_file.stem)
    return used


def collect_objects(store: FeatureStore, remote: bool) -> None:
    """Remove the DVC objects that no remaining version tag and no work-tree file reads, from
    the cache (and from the DVC remote, with ``remote``).

    Not ``dvc gc --all-tags``: a tag names a commit of the whole store, so DVC would keep, for
    each remaining tag, every group as it was at that commit (a dropped version of one group
    stays as long as a later tag of another group exists). The objects kept here are exactly
    those of each remaining ``<group>/v<N>``'s own ``data/<group>.dvc``, removed by the same
    function ``dvc gc`` uses (``dvc_data.hashfile.gc``), under DVC's repository lock.
    """
    from dvc_data.hashfile.db import get_index
    from dvc_data.hashfile.gc import gc
    from dvc_data.hashfile.hash_info import HashInfo

    used = [HashInfo("md5", md5) for md5 in used_objects(store)]
    with open_dvc(store.path) as repo, repo.lock:
        gc(repo.cache.local, used)
        if remote:
            odb = repo.cloud.get_remote_odb(None, "gc -c", hash_name="md5")
            gc(odb, used)
            get_index(odb).clear()  # as `dvc gc --cloud`: its index of the remote is stale now
