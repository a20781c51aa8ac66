"""Read the online store: the newest row of entities of a feature group, typed as published.

A read is one SQL statement (the groups' state rows, each joined with its requested rows by
primary key), so it sees one snapshot on SQLite and PostgreSQL alike: the rows of the version
each state row names, never a mix of two versions, also across the groups a model reads
(``read_held``). A group's schema is decoded once per process and schema hash, so a request of
one entity costs one indexed statement, however many groups it reads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import pandas as pd
import pyarrow as pa
from sqlalchemy import and_, bindparam, select

from fti.db.engine import get_engine
from fti.db.tables import OnlineRow, OnlineState
from fti.errors import FtiError, StoreError
from fti.online import codec
from fti.store.versions import DATE_COLUMN, schema_from_json

INTEGER = re.compile(r"^[+-]?[0-9]+$")
ATTEMPTS = 5  # reads that meet a schema change between two statements try again


@dataclass(frozen=True)
class OnlineRows:
    group: str
    version: int | None  # the group's version online (None: nothing materialised)
    schema: pa.Schema  # the group's published schema (entity key, feature columns; no date)
    # One row per FOUND entity, indexed by the entity key as the group's dtype (int64 or str),
    # columns: the requested feature columns with published dtypes, plus "feature_date"
    # (datetime.date).
    rows: pd.DataFrame
    missing: list[str]  # requested keys (as given, text) not held


@dataclass(frozen=True)
class _Layout:
    """A group's online schema as written under one schema hash (immutable per hash)."""

    schema_hash: str
    key: str
    schema: pa.Schema  # entity key first, then the features in the order of the stored values

    @property
    def features(self) -> list[pa.Field]:
        return list(self.schema)[1:]


_layouts: dict[tuple[str, str], _Layout] = {}  # (db_url, group) -> the layout last seen


def read_online(
    db_url: str, group: str, entities: Sequence[str], columns: Sequence[str] | None = None
) -> OnlineRows:
    """The online rows of ``entities`` (keys as text) of ``group``: ``columns`` (default:
    every feature) with their published types, and each row's ``feature_date``.

    A key that does not parse as the group's entity dtype is missing, like a key not held.

    Raises:
        StoreError: a requested column is not a feature of the version online.
    """
    given = [str(e) for e in entities]
    held = read_held(db_url, [group], given)[group]
    if held.version is None:
        return _nothing(group, given, columns)
    return _rows(held, given, columns)


@dataclass(frozen=True)
class HeldRows:
    """A group's online rows of some entities, as stored (not decoded yet): what
    ``read_held`` returns, for callers that type the few rows themselves (``fti serve``)."""

    group: str
    version: int | None  # the group's version online (None: nothing materialised)
    schema: pa.Schema  # the published schema: the entity key first, then every feature
    typed: dict[str, str]  # {key as given: key as stored}, for the keys that parse
    rows: dict[str, tuple[date, str]]  # key as stored: (feature_date, encoded values)
    encoded: list[pa.Field]  # the fields of the encoded values, in their order

    @property
    def key(self) -> str:
        return str(self.schema.field(0).name)

    def key_value(self, stored: str) -> Any:
        """A stored key as a Python value of the group's key type (int or str)."""
        return int(stored) if pa.types.is_integer(self.schema.field(0).type) else stored

    def decode(self, stored: Sequence[str], columns: Sequence[str]) -> pa.Table:
        """The ``columns`` of the rows of the ``stored`` keys (each held), in that order, with
        their published types.

        Raises:
            StoreError: a column is not a feature of the version online.
        """
        features = [f.name for f in self.encoded]
        unknown = [c for c in columns if c not in features]
        if unknown:
            raise StoreError(
                f"{self.group} v{self.version} online has no feature column(s) "
                f"{', '.join(unknown)}; it has {', '.join(features) or 'none'}"
            )
        return codec.decode([self.rows[k][1] for k in stored], self.encoded, columns)


def read_held(db_url: str, groups: Sequence[str], entities: Sequence[str]) -> dict[str, HeldRows]:
    """The online rows of ``entities`` (keys as text) of each of ``groups``, read in one
    statement (one snapshot of every group), with each group's schema (decoded once per
    process and schema hash)."""
    given = [str(e) for e in entities]
    engine = get_engine(db_url)
    for _ in range(ATTEMPTS):
        layouts = {}
        for group in groups:
            layout = _layouts.get((db_url, group)) or _fetch_layout(db_url, group)
            if layout is not None:
                layouts[group] = layout
        typed = {
            group: parse_keys(given, layout.schema.field(0).type)
            for group, layout in layouts.items()
        }
        keys = list(dict.fromkeys(k for t in typed.values() for k in t.values()))
        with engine.connect() as connection:
            found = connection.execute(_SNAPSHOT, {"groups": list(groups), "keys": keys}).all()
        by_group: dict[str, list[Any]] = {}
        for row in found:
            by_group.setdefault(row.group_name, []).append(row)
        retry = False
        for group in groups:
            layout, rows = layouts.get(group), by_group.get(group)
            if rows is None:  # nothing online (the group's versions were all forgotten)
                _layouts.pop((db_url, group), None)
            elif layout is None or rows[0].schema_hash != layout.schema_hash:
                _layouts.pop((db_url, group), None)  # a new schema came online: decode with it
                retry = True
        if retry:
            continue
        return {
            group: _held(group, by_group.get(group), layouts.get(group), typed) for group in groups
        }
    raise FtiError(
        f"the online schema of {', '.join(groups)} kept changing during the read: try again"
    )  # pragma: no cover - only under a schema change per statement


def _held(
    group: str, found: list[Any] | None, layout: _Layout | None, typed: dict[str, dict[str, str]]
) -> HeldRows:
    if found is None or layout is None:
        return HeldRows(group, None, pa.schema([]), {}, {}, [])
    keys = typed[group]
    wanted = set(keys.values())
    rows = {
        r.entity_key: (_day(r.feature_date), r.feature_values)
        for r in found
        if r.entity_key is not None and r.entity_key in wanted
    }
    return HeldRows(
        group, found[0].version, _without_date(layout.schema), keys, rows, layout.features
    )


def online_state(db_url: str, group: str) -> dict[str, Any] | None:
    """The version of ``group`` online: ``version``, ``schema`` (Arrow, no date column),
    ``columns`` ({name: type}), ``entity_key``, ``materialised_at``, ``rows`` (entities held),
    ``rows_written`` and ``rows_deleted`` (by the last materialisation); None when nothing is.
    """
    with get_engine(db_url).connect() as connection:
        state = connection.execute(
            select(OnlineState).where(OnlineState.group_name == group)
        ).first()
    if state is None:
        return None
    return {
        "group": group,
        "version": state.version,
        "entity_key": state.entity_key,
        "schema": _decode_schema(state.schema),
        "columns": dict(state.schema["columns"]),
        "materialised_at": state.materialised_at,
        "rows": state.rows,
        "rows_written": state.rows_written,
        "rows_deleted": state.rows_deleted,
    }


def _decode_schema(stored: dict[str, Any]) -> pa.Schema:
    return schema_from_json(json.dumps(stored))


def _fetch_layout(db_url: str, group: str) -> _Layout | None:
    with get_engine(db_url).connect() as connection:
        state = connection.execute(
            select(OnlineState.schema_hash, OnlineState.entity_key, OnlineState.schema).where(
                OnlineState.group_name == group
            )
        ).first()
    if state is None:
        return None
    layout = _Layout(state.schema_hash, state.entity_key, _decode_schema(state.schema))
    _layouts[(db_url, group)] = layout
    return layout


_ROWS = OnlineRow.__table__
_STATE = OnlineState.__table__
# One statement: the state rows of the groups asked for, each joined with its rows of the keys
# asked for (by primary key). SQLAlchemy caches its compiled form (per number of keys).
_SNAPSHOT = (
    select(
        _STATE.c.group_name,
        _STATE.c.version,
        _STATE.c.schema_hash,
        _ROWS.c.entity_key,
        _ROWS.c.feature_date,
        _ROWS.c.feature_values,
    )
    .select_from(
        _STATE.outerjoin(
            _ROWS,
            and_(
                _ROWS.c.group_name == _STATE.c.group_name,
                _ROWS.c.entity_key.in_(bindparam("keys", expanding=True)),
            ),
        )
    )
    .where(_STATE.c.group_name.in_(bindparam("groups", expanding=True)))
)


def parse_keys(given: list[str], key_type: pa.DataType) -> dict[str, str]:
    """{key as given: key as stored} for the keys that parse as the entity's type."""
    if not pa.types.is_integer(key_type):
        return {text: text for text in given}
    parsed = {}
    for text in given:
        if INTEGER.match(text):
            number = int(text)
            if -(2**63) <= number < 2**63:
                parsed[text] = str(number)
    return parsed


def _rows(held: HeldRows, given: list[str], columns: Sequence[str] | None) -> OnlineRows:
    wanted = list(columns) if columns is not None else [f.name for f in held.encoded]
    asked = dict.fromkeys(held.typed[t] for t in given if t in held.typed)
    order = [k for k in asked if k in held.rows]
    frame = held.decode(order, wanted).to_pandas()
    key_type = held.schema.field(0).type
    index = pa.array(order, pa.string()).cast(key_type).to_pandas()
    frame.index = pd.Index(index, name=held.key)
    days = pa.array([held.rows[k][0] for k in order], pa.date32())
    frame[DATE_COLUMN] = days.to_pandas().to_numpy()  # datetime.date objects, by position
    missing = [t for t in given if held.typed.get(t) not in held.rows]
    return OnlineRows(held.group, held.version, held.schema, frame, missing)


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _without_date(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name != DATE_COLUMN])


def _nothing(group: str, given: list[str], columns: Sequence[str] | None) -> OnlineRows:
    frame = pd.DataFrame(columns=[*(columns or []), DATE_COLUMN])
    return OnlineRows(group, None, pa.schema([]), frame, list(given))


def online_records(
    db_url: str, group: str, entities: Sequence[str]
) -> tuple[int | None, list[dict[str, Any]]]:
    """The group's version online (None: nothing) and one JSON-ready object per requested
    entity, in the order given: ``entity`` (as given), ``found``, ``version``, ``feature_date``
    and the features (dates and times in ISO form; NaN and NaT as null). What
    `fti features get --json` prints and ``POST /features/{group}`` of `fti serve` answers;
    no pandas on the way (a request's few rows decode straight from Arrow)."""
    held = read_held(db_url, [group], entities)[group]
    given = [str(e) for e in entities]
    stored = [held.typed.get(e) for e in given]
    present = list(dict.fromkeys(k for k in stored if k is not None and k in held.rows))
    values: dict[str, dict[str, Any]] = {}
    if held.version is not None and present:
        table = held.decode(present, [f.name for f in held.encoded])
        values = dict(zip(present, table.to_pylist(), strict=True))
    records = []
    for entity, key in zip(given, stored, strict=True):
        found = key is not None and key in values
        record: dict[str, Any] = {"entity": entity, "found": found, "version": held.version}
        if key is not None and found:
            record[DATE_COLUMN] = held.rows[key][0].isoformat()
            record.update({name: _native(value) for name, value in values[key].items()})
        records.append(record)
    return held.version, records


def _native(value: Any) -> Any:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value.item() if hasattr(value, "item") else value
