"""Ids across days: an id accepted on one day is a duplicate on any other day (or, when the
source declares ``unique_within_days``, on any other day that close).

A day's accepted ids are its staged events' id column. Beside the staged file, ``ids_file``
holds their 64-bit hashes, sorted: written after the staged file (``remember_ids``; writing a
staged file removes the old one first), rebuilt from it when missing (a day staged before this index existed, or a crash between the two
writes). Checking a day's ids reads the other accepted days' hashes one day at a time, so the
memory it takes is one day's ids, whatever the history; the few ids whose hash another day
holds are compared as text with that day's staged ids, so a hash collision is never taken for
a duplicate. No id is kept in the database.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from fti.db.tables import ValidationRun
from fti.definitions import Source
from fti.features.staged import ids_file, staged_file


def id_texts(values: pd.Series | pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Ids as text, as they are compared across days: an int64 id as its digits, a null id as
    ``<NA>`` (nulls are one value, as a file's own duplicate check counts them)."""
    array = values if isinstance(values, pa.Array | pa.ChunkedArray) else pa.array(values)
    texts = array.cast(pa.string()).fill_null("<NA>")
    return np.asarray(texts.to_numpy(zero_copy_only=False), dtype=object)


def id_hashes(texts: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each id text (pandas' SipHash with its fixed key: the same in every
    process and release)."""
    return pd.util.hash_array(texts, categorize=False)


def remember_ids(staged: Path, ids: pd.Series | pa.Array | pa.ChunkedArray) -> None:
    """Write the sorted id hashes of the staged file ``staged`` (atomically), once it holds
    ``ids``."""
    target = ids_file(staged)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")  # two rebuilds never collide
    with tmp.open("wb") as out:
        np.save(out, np.sort(id_hashes(id_texts(ids))), allow_pickle=False)
    tmp.replace(target)


def _staged_ids(staged: Path, source: Source) -> pa.ChunkedArray:
    assert source.id_column is not None
    return pq.read_table(staged, columns=[source.id_column]).column(source.id_column)


def day_hashes(staging_root: Path, source: Source, day: date) -> np.ndarray | None:
    """The sorted id hashes of a staged day (rebuilt from its staged events when missing);
    None when the day has no staged events."""
    staged = staged_file(staging_root, source, day)
    if not staged.exists():  # its hashes without it are stale: the staged ids are the truth
        return None
    if not ids_file(staged).exists():
        remember_ids(staged, _staged_ids(staged, source))
    return np.load(ids_file(staged), allow_pickle=False)


def _accepted_days(session: Session, source: Source, day: date, own: bool) -> Iterator[date]:
    """The days of the source whose validation was accepted, oldest first: the others, and
    ``day`` too when ``own`` (within ``unique_within_days`` of ``day`` when declared)."""
    runs = select(ValidationRun.logical_date).where(
        ValidationRun.source == source.name, ValidationRun.status == "accepted"
    )
    if not own:
        runs = runs.where(ValidationRun.logical_date != day)
    window = source.unique_within_days
    if window is not None:
        runs = runs.where(
            ValidationRun.logical_date >= day - timedelta(days=window),
            ValidationRun.logical_date <= day + timedelta(days=window),
        )
    yield from session.scalars(runs.distinct().order_by(ValidationRun.logical_date))


def id_holders(
    session: Session,
    staging_root: Path,
    source: Source,
    day: date,
    ids: pd.Series | pa.Array | pa.ChunkedArray,
    own: bool = False,
) -> dict[int, date]:
    """Which other accepted day (or ``day`` itself too, when ``own``) holds each of ``day``'s
    ``ids``: {position in ``ids``: the oldest day holding it}, for those held. Reads one day's
    id hashes at a time."""
    texts = id_texts(ids)
    if not len(texts):
        return {}
    hashes = id_hashes(texts)
    order = np.argsort(hashes, kind="stable")
    wanted = hashes[order]
    free = np.ones(len(texts), dtype=bool)  # by position: no holder found yet
    held: dict[int, date] = {}
    for other in _accepted_days(session, source, day, own):
        known = day_hashes(staging_root, source, other)
        if known is None or not len(known):
            continue
        at = np.minimum(np.searchsorted(known, wanted), len(known) - 1)
        candidates = order[(known[at] == wanted) & free[order]]
        if not len(candidates):
            continue
        theirs = id_texts(_staged_ids(staged_file(staging_root, source, other), source))
        same = pd.Index(theirs[np.isin(id_hashes(theirs), hashes[candidates])])
        for position in candidates[same.get_indexer(texts[candidates]) >= 0]:
            held[int(position)] = other
            free[position] = False
    return held


def lock_ids(session: Session, source: str) -> None:
    """Hold the source's ids until the transaction ends, so two days validated at once on
    PostgreSQL cannot both take one id (SQLite's write transactions already queue up: see
    ``fti.db.engine.session_scope``)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": f"fti-ids:{source}"}
        )
