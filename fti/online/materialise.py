"""Materialise a feature group's version into the online store: each entity's newest row.

A publish calls :func:`materialise_published` once the version's git tag exists, in the
transaction that marks its catalog row tagged (``fti.store.tagged``): readers of the online
store never see a version without its tag. A publish killed after its tag and before that
transaction leaves the previous version online; the next publish of any group (under the
store's lock, see ``FeatureStore.publish``) calls :func:`reconcile_online`, which puts each
group's newest tagged version online. The rule: **the online store holds a tagged version of
each feature group, the newest one except for the moment between a publish's tag and its
transaction**.

What a materialisation writes:

- Only entities whose newest row changed (a hash of feature date and values per row), in one
  transaction with the group's ``online_state`` row; a reader reading both in one snapshot
  sees the old version or the new one, never a mix. The same version again writes nothing.
- An entity that has no row in the version any more (its only partitions were replaced
  without it) is deleted; no other row is.
- A new version whose previous version is online reads only its changed partitions, plus,
  for the few entities whose online row sat in a replaced partition and is not in it any
  more, their rows in the other partitions (the newest row of an entity can only change if a
  partition at or after its current feature date changed). Otherwise (first load, a schema
  change, recovery, ``fti features materialise``) the whole version is read.

Memory follows the entities, not the dates: partitions are read one at a time, newest first
(a partition's rows carry its date), and an entity's first row found is its newest; the
entities already found are one Arrow array of keys. Rows are compared and written in batches
of ``WRITE_BATCH`` as they are found, so a history load of 75 dates holds one partition, the
keys, the online rows it compares with (key, date, hash) and one batch.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import repeat
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fti.db.tables import OnlineRow, OnlineState
from fti.errors import FtiError
from fti.online import codec
from fti.store.newest import Taken, days_of, newest_per_entity
from fti.store.statistics import schema_hash, schema_of
from fti.store.versions import (
    DATE_COLUMN,
    FeatureStore,
    PublishedVersion,
    fault_point,
    read_work_tree,
    schema_to_json,
)

if TYPE_CHECKING:
    from fti.settings import Settings

PUBLISH_LOCK = ".publish.lock"  # FeatureStore.publish's lock file in the store (versions.py)
LOCK_TIMEOUT_S = 600
DELETE_CHUNK = 500
WRITE_BATCH = 50_000  # rows compared, encoded and upserted at a time (their Python objects)
ONLINE_CHUNK = 50_000  # online rows fetched from the database at a time
SQLITE_WRITE_CACHE_KIB = 256 * 1024  # see fti.inference.write: big upserts thrash a small cache
COLUMNS = ("group_name", "entity_key", "feature_date", "version", "row_hash", "feature_values")
# Written between a materialisation's rows and its state row (tests kill the publisher there).
FAULT_POINT = "online.rows"


@dataclass(frozen=True)
class Materialised:
    """What a materialisation did: ``mode`` full, incremental, unchanged or removed."""

    group: str
    version: int | None
    rows: int  # entities online now
    written: int  # rows inserted or updated
    deleted: int
    mode: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "version": self.version,
            "mode": self.mode,
            "rows": self.rows,
            "written": self.written,
            "deleted": self.deleted,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class VersionSource:
    """A version's partitions to read: ``read(dates, filter)`` returns their rows, typed with
    ``schema`` (the version's, entity key and feature date included)."""

    group: str
    version: int
    schema: pa.Schema
    dates: list[date]
    read: Callable[[Sequence[date], pc.Expression | None], pa.Table]


def work_tree_source(store: FeatureStore, published: PublishedVersion) -> VersionSource:
    """The version a publish is making, from the store's work tree (under the publish lock,
    between its commit and the publish's end, the work tree holds it)."""

    def read(dates: Sequence[date], where: pc.Expression | None) -> pa.Table:
        return read_work_tree(store, published.group, dates, published.schema, where)

    return VersionSource(
        published.group, published.version, published.schema, list(published.dates), read
    )


def tagged_source(store: FeatureStore, group: str, version: int) -> VersionSource:
    """A published (tagged) version, read through the store."""

    def read(dates: Sequence[date], where: pc.Expression | None) -> pa.Table:
        return store.read(group, version, dates=list(dates), where=where)

    return VersionSource(
        group, version, store.schema(group, version), store.partition_dates(group, version), read
    )


# ---- entry points ----------------------------------------------------------------------------
def materialise_published(
    session: Session, store: FeatureStore, published: PublishedVersion, key: str
) -> Materialised:
    """Put the version a publish just tagged online, in the transaction that marks its catalog
    row (``fti.store.tagged.confirm_published``); only its changed partitions are read when
    the previous version is online. ``key``: the group's entity key column."""
    return materialise(session, work_tree_source(store, published), key, published.changed_dates)


def reconcile_online(
    session: Session,
    store: FeatureStore,
    tags: Mapping[str, Sequence[int]],
    completed: Collection[str],
    keys: Mapping[str, str],
) -> list[Materialised]:
    """Put each group's newest tagged version (``tags``: {group: versions}) online where the
    online store holds another, or nothing of a group whose newest version was ``completed``
    (a publish killed between its tag and its transaction, see ``reconcile_catalog``).

    A group without tags has its rows removed. ``keys`` names the entity key of the feature
    groups the caller defines; the others' come from their ``online_state`` row. Called under
    the store's publish lock.
    """
    done = []
    held = {
        state.group_name: state for state in session.scalars(select(OnlineState).with_for_update())
    }
    for group in sorted(set(held) | set(completed)):
        state = held.get(group)
        tagged = tags.get(group, [])
        key = state.entity_key if state is not None else keys.get(group)
        if key is None:  # a label group, or a group of another project never online yet
            continue
        if not tagged:
            done.append(_remove(session, group))
        elif state is None or state.version != max(tagged):
            done.append(materialise(session, tagged_source(store, group, max(tagged)), key))
    return done


def materialise_latest(
    settings: Settings, groups: Sequence[str] | None = None
) -> list[Materialised]:
    """Put the newest version of each feature group (or of ``groups``) online; idempotent.

    For stores published before the online store existed, and to finish what a killed
    publish left (``fti.store.tagged.reconcile`` first, for every group). Holds the store's
    publish lock, so no publish is between its catalog row and its transaction.

    Raises:
        FtiError: a named group is a label group (label groups are not served).
    """
    from filelock import FileLock

    from fti.db.engine import session_scope
    from fti.definitions import load_project
    from fti.store.tagged import reconcile, served_keys

    project = load_project(settings.project)
    chosen = [project.group(name) for name in groups] if groups else project.feature_groups
    for group in chosen:
        if group.kind != "features":
            raise FtiError(
                f"{group.name!r} is a {group.noun}: only feature groups are materialised "
                f"online; feature groups: {', '.join(g.name for g in project.feature_groups)}"
            )
    store = FeatureStore(settings.store_path)
    lock = FileLock(str(store.path / PUBLISH_LOCK), timeout=LOCK_TIMEOUT_S)
    with lock, session_scope(settings.db_url, write=True) as session:
        reconcile(session, store, store.every_version(), served_keys(project))
    done = []
    for group in chosen:  # the lock per group: a publish waits for one group at most
        with lock, session_scope(settings.db_url, write=True) as session:
            tagged = store.versions(group.name)
            if not tagged:
                done.append(_remove(session, group.name))
                continue
            source = tagged_source(store, group.name, tagged[-1])
            done.append(materialise(session, source, group.entity.key))
    return done


# ---- materialising ---------------------------------------------------------------------------
def materialise(
    session: Session,
    source: VersionSource,
    key: str,
    changed: Sequence[date] | None = None,
    batch_rows: int = WRITE_BATCH,
) -> Materialised:
    """Make the online rows of ``source.group`` those of ``source``, in ``session``.

    ``changed``: the partitions this version wrote over the previous one (a publish's
    ``changed_dates``); with the previous version online, only they are read (and the rows of
    entities that left them). Without, or with another version or schema online, the whole
    version is read. ``batch_rows``: rows compared and written at a time. The caller commits.
    """
    started = time.perf_counter()
    group = source.group
    features = [n for n in source.schema.names if n not in (key, DATE_COLUMN)]
    if key not in source.schema.names:
        raise FtiError(
            f"{group} v{source.version} has no entity key column {key!r}; it has "
            f"{', '.join(source.schema.names)}: check the group's entity in the project"
        )
    online_schema = pa.schema([source.schema.field(n) for n in [key, *features]])
    digest = schema_hash(schema_of(online_schema))
    state = _locked_state(session, group)
    if state is not None and (state.version, state.schema_hash) == (source.version, digest):
        return Materialised(group, source.version, state.rows, 0, 0, "unchanged", _since(started))
    incremental = (
        changed is not None
        and state is not None
        and state.version == source.version - 1
        and state.schema_hash == digest
        and set(changed) <= set(source.dates)
    )
    if incremental:
        assert changed is not None
        online = _Online(session, group, since=min(changed))
        writer = _Writer(session, source, key, features, online, batch_rows)
        gone = _write_changed_partitions(writer, sorted(changed))
        entities = None
        mode = "incremental"
    else:
        online = _Online(session, group, since=None)
        writer = _Writer(session, source, key, features, online, batch_rows)
        gone, entities = _write_version(writer)
        mode = "full"
    _delete(session, group, list(gone))
    fault_point(FAULT_POINT)
    if entities is None:
        entities = session.scalar(select(func.count()).where(OnlineRow.group_name == group))
    rows = entities or 0
    values = {
        "version": source.version,
        "entity_key": key,
        "schema": json.loads(schema_to_json(online_schema)),
        "schema_hash": digest,
        "rows": rows,
        "rows_written": writer.written,
        "rows_deleted": len(gone),
        "materialised_at": datetime.now(UTC),
    }
    if state is None:
        session.add(OnlineState(group_name=group, **values))
    else:
        for name, value in values.items():
            setattr(state, name, value)
    session.flush()
    return Materialised(
        group, source.version, rows, writer.written, len(gone), mode, _since(started)
    )


def _since(started: float) -> float:
    return time.perf_counter() - started


def _locked_state(session: Session, group: str) -> OnlineState | None:
    """The group's state row, locked until the transaction ends (PostgreSQL; a SQLite write
    transaction holds the database's write lock already)."""
    return session.scalar(
        select(OnlineState).where(OnlineState.group_name == group).with_for_update()
    )


def _remove(session: Session, group: str) -> Materialised:
    """No version of the group is published: nothing of it online."""
    started = time.perf_counter()
    gone = _count(session.execute(delete(OnlineRow).where(OnlineRow.group_name == group)))
    held = _count(session.execute(delete(OnlineState).where(OnlineState.group_name == group)))
    mode = "removed" if held else "none"
    return Materialised(group, None, 0, 0, gone or 0, mode, _since(started))


def _count(result: Any) -> int:
    return int(result.rowcount or 0)  # a DELETE's CursorResult


def _keys(table: pa.Table, key: str) -> np.ndarray:
    return codec.key_text(table.column(key)).to_numpy(zero_copy_only=False)


def _newest_rows(
    source: VersionSource,
    key: str,
    dates: Iterable[date],
    taken: Taken,
    where: pc.Expression | None = None,
) -> Iterator[pa.Table]:
    """Each entity's newest row over the partitions of ``dates`` (filtered by ``where``), for
    entities not ``taken``: a partition at a time, newest first, so an entity's first row
    found is its newest (memory: one partition and the taken keys)."""
    for day in sorted(dates, reverse=True):
        rows = taken.newest_of_the_rest(source.read([day], where), key)
        if rows.num_rows:
            yield rows


def _batches(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """The tables cut into slices of at most ``rows`` rows."""
    for table in tables:
        for start in range(0, table.num_rows, rows):
            yield table.slice(start, rows)


class _Online:
    """The group's online rows a materialisation compares with (from ``since`` on): feature
    date and row hash by entity key, and which of them the rows looked up so far hold."""

    def __init__(self, session: Session, group: str, since: date | None) -> None:
        query = select(OnlineRow.entity_key, OnlineRow.feature_date, OnlineRow.row_hash).where(
            OnlineRow.group_name == group
        )
        if since is not None:
            query = query.where(OnlineRow.feature_date >= since)
        keys: list[str] = []
        days: list[np.ndarray] = []
        hashes: list[np.ndarray] = []
        result = session.execute(query.execution_options(yield_per=ONLINE_CHUNK))
        for chunk in result.partitions():
            keys.extend(r[0] for r in chunk)
            days.append(np.array([r[1] for r in chunk], dtype="datetime64[D]"))
            hashes.append(np.array([r[2] for r in chunk], dtype=np.int64))
        self.index = pd.Index(keys, dtype=object)
        self.days = np.concatenate(days) if days else np.array([], dtype="datetime64[D]")
        self.hashes = np.concatenate(hashes) if hashes else np.array([], dtype=np.int64)
        self.looked_up = np.zeros(len(keys), dtype=bool)

    def find(self, keys: np.ndarray) -> np.ndarray:
        """Where each key's online row is (-1: none), remembered as looked up."""
        at = self.index.get_indexer(keys)
        self.looked_up[at[at >= 0]] = True
        return at

    def days_at(self, at: np.ndarray) -> np.ndarray:
        """The feature date of the online rows ``at`` (NaT where -1)."""
        return np.append(self.days, np.datetime64("NaT", "D"))[at]


class _Writer:
    """Writes the rows whose hash differs from their online row's (or that have none)."""

    def __init__(
        self,
        session: Session,
        source: VersionSource,
        key: str,
        features: list[str],
        online: _Online,
        batch_rows: int,
    ) -> None:
        self.session, self.source, self.key, self.features = session, source, key, features
        self.online = online
        self.batch_rows = max(batch_rows, 1)
        self.written = 0

    def write(self, newest: pa.Table) -> None:
        """Upsert the rows of ``newest`` (one per entity, at most a batch) that changed."""
        if newest.num_rows == 0:
            return
        keys, days = _keys(newest, self.key), days_of(newest)
        texts = codec.encode(newest, self.features)
        hashes = codec.row_hashes(days, texts)
        at = self.online.find(keys)
        held = self.online.hashes
        old = held[at] if len(held) else np.zeros(len(at), np.int64)  # at -1: masked below
        changed = np.flatnonzero((at < 0) | (old != hashes))
        if not len(changed):
            return
        picked = changed.tolist()
        rows = list(
            zip(
                repeat(self.source.group),
                keys[changed].tolist(),
                np.datetime_as_string(days[changed], unit="D").tolist(),
                repeat(self.source.version),
                hashes[changed].tolist(),
                [texts[i] for i in picked],
                strict=False,  # the repeats are endless
            )
        )
        _upsert(self.session, rows)
        self.written += len(rows)


def _write_version(writer: _Writer) -> tuple[np.ndarray, int]:
    """Write each entity's newest row of the whole version that differs from its online row;
    returns the online entities the version has no row for, and how many entities it has."""
    source, key, online = writer.source, writer.key, writer.online
    taken = Taken()
    for batch in _batches(_newest_rows(source, key, source.dates, taken), writer.batch_rows):
        writer.write(batch)
    return online.index[~online.looked_up].to_numpy(), len(taken)


def _write_changed_partitions(writer: _Writer, changed: list[date]) -> np.ndarray:
    """With the previous version online: write the newest rows that differ from the online
    ones; returns the entities to delete.

    An entity whose online row is older than the first changed partition and not in any
    changed partition keeps its row, unread. Of the others, the online rows (feature date at
    or after the first changed partition: one indexed range) are compared with the newest
    row of the changed partitions; an entity whose online row was in a replaced partition and
    is not there any more gets its newest row from the other partitions.
    """
    source, key, online = writer.source, writer.key, writer.online
    replaced = np.array(changed, dtype="datetime64[D]")
    left: list[pa.Table] = []  # rows older than the online row of a replaced partition
    taken = Taken()
    for batch in _batches(_newest_rows(source, key, changed, taken), writer.batch_rows):
        keys, days = _keys(batch, key), days_of(batch)
        at = online.find(keys)
        held = at >= 0
        held_day = online.days_at(at)
        in_replaced = held & np.isin(held_day, replaced)
        # A held row in a kept partition newer than the changed rows stays (nothing to write).
        keep = ~held | (days >= held_day)
        back = in_replaced & (days < held_day)  # its row's partition was replaced, an older came
        writer.write(batch.filter(pa.array(keep & ~back)))
        if back.any():
            left.append(batch.filter(pa.array(back)))
    vanished = online.index[np.isin(online.days, replaced) & ~online.looked_up].to_numpy()
    lookup = np.concatenate([*(_keys(t, key) for t in left), vanished])
    if not len(lookup):
        return np.array([], dtype=object)
    others = sorted(set(source.dates) - set(changed))
    wanted = pa.array(lookup.tolist(), pa.string()).cast(source.schema.field(key).type)
    candidates = list(left)
    elsewhere = Taken()
    for rows in _newest_rows(source, key, others, elsewhere, pc.field(key).isin(wanted)):
        candidates.append(rows)
        if len(elsewhere) == len(lookup):
            break  # every entity looked up has its newest row in the other partitions
    found = newest_per_entity(pa.concat_tables(candidates), key) if candidates else None
    if found is None:
        return pd.Index(lookup).unique().to_numpy()
    for batch in _batches([found], writer.batch_rows):
        writer.write(batch)
    return pd.Index(lookup).difference(pd.Index(_keys(found, key))).to_numpy()


def _upsert(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert or replace rows in one go: COPY into a temporary table and one INSERT ... ON
    CONFLICT on PostgreSQL, one executemany on SQLite; inside the session's transaction."""
    connection = session.connection()
    driver: Any = connection.connection.driver_connection
    names = ", ".join(COLUMNS)
    updates = ", ".join(f"{c} = excluded.{c}" for c in COLUMNS[2:])
    conflict = f"ON CONFLICT (group_name, entity_key) DO UPDATE SET {updates}"
    if connection.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            cursor.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS fti_online_stage"
                " (LIKE online_rows) ON COMMIT DROP"
            )
            cursor.execute("TRUNCATE fti_online_stage")
            with cursor.copy(f"COPY fti_online_stage ({names}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO online_rows ({names}) SELECT {names} FROM fti_online_stage {conflict}"
            )
        return
    driver.execute(f"PRAGMA cache_size=-{SQLITE_WRITE_CACHE_KIB}")
    driver.executemany(
        f"INSERT INTO online_rows ({names}) VALUES ({', '.join('?' * len(COLUMNS))}) {conflict}",
        rows,
    )


def _delete(session: Session, group: str, keys: list[Any]) -> None:
    for start in range(0, len(keys), DELETE_CHUNK):
        chunk = [str(k) for k in keys[start : start + DELETE_CHUNK]]
        session.execute(
            delete(OnlineRow).where(OnlineRow.group_name == group, OnlineRow.entity_key.in_(chunk))
        )
