"""Point-in-time correct joins of label rows to feature rows."""

from __future__ import annotations

import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Literal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pandas.api.extensions import take

# From this many label + feature rows DuckDB's ASOF JOIN on every core finds the rows sooner than
# pandas' merge_asof; below it, starting DuckDB costs more than it saves (benchmarks/RESULTS.md,
# "Point-in-time join").
DUCKDB_FROM_ROWS = 1_000_000

# Each label's newest feature row at or before its time, found by DuckDB for every label (in no
# particular order). The inequality compares (time, row) as one 128-bit key, time * 2^63 + row,
# so that among feature rows of one entity and time the last in the input's order wins: a
# label's key carries the largest row number, so every row at its time is "at or before" it.
# (A STRUCT key costs the same; plain time would let DuckDB pick any of the tied rows.)
ASOF_ROWS = """
SELECT l.r AS label_row, f.r AS feature_row
FROM (SELECT e, t::HUGEINT * 9223372036854775808 + 9223372036854775807 AS k, r FROM labels) l
ASOF LEFT JOIN (
    SELECT e, t::HUGEINT * 9223372036854775808 + r AS k, r FROM features WHERE t IS NOT NULL
) f ON l.e = f.e AND l.k >= f.k
"""


def point_in_time_join(
    labels: pd.DataFrame,
    features: pd.DataFrame,
    entity: str,
    label_time: str,
    feature_time: str,
    ttl: timedelta | None = None,
) -> pd.DataFrame:
    """For each label row, attach the newest feature row of the same entity at or before its time.

    Never a later row. Rows without such a feature row (or one older than ``ttl``) get nulls, as
    do labels with a null entity or time; feature rows with a null entity or time are never
    used. Input order does not matter; the result keeps ``labels``' order and index. When
    several feature rows share the newest timestamp, the last of them in ``features``' order
    wins.

    Each label's feature row is found from slim Arrow tables of (entity, time, row number), by
    DuckDB's ASOF JOIN on every core, or below ``DUCKDB_FROM_ROWS`` by pandas' ``merge_asof``;
    then every feature column is gathered once, in label order, a column per thread.
    benchmarks/bench_feature_store.py compares it with ``merge_asof`` and DuckDB joining whole
    tables.
    """
    label_t, feature_t = _as_time(labels[label_time]), _as_time(features[feature_time])
    if len(label_t) and len(feature_t) and label_t.dt.tz != feature_t.dt.tz:
        raise ValueError(
            f"label time {label_time!r} and feature time {feature_time!r} differ in time zone"
        )
    label_ids, feature_ids = _ids(entity, labels[entity], features[entity])
    rows = _feature_rows(_slim(label_ids, label_t), _slim(feature_ids, feature_t))
    if ttl is not None:
        found = rows >= 0
        age = label_t.array.asi8[found] - feature_t.array.asi8[rows[found]]
        rows[np.flatnonzero(found)[age > pd.Timedelta(ttl).value]] = -1
    gathered = _gather(features.drop(columns=entity), rows)
    return pd.concat([labels, gathered.set_axis(labels.index)], axis=1)


def _feature_rows(labels: pa.Table, features: pa.Table) -> np.ndarray:
    """Position in ``features`` of each label's feature row; -1 where there is none."""
    if pa.types.is_null(labels["e"].type) or pa.types.is_null(features["e"].type):
        return np.full(len(labels), -1, dtype=np.int64)  # no ids on one side: nothing joins
    if len(labels) + len(features) < DUCKDB_FROM_ROWS:
        return _rows_by_merge_asof(labels, features)
    return _rows_by_duckdb(labels, features)


def _rows_by_duckdb(labels: pa.Table, features: pa.Table) -> np.ndarray:
    # An in-memory DuckDB spills to ./.tmp past its memory limit: keep that out of the cwd.
    with (
        tempfile.TemporaryDirectory(prefix="fti-pit-") as spill,
        duckdb.connect(config={"temp_directory": spill}) as connection,
    ):
        connection.register("labels", labels)
        connection.register("features", features)
        matched = connection.sql(ASOF_ROWS).to_arrow_table()  # every label, in any order
    rows = np.empty(len(labels), dtype=np.int64)
    rows[matched["label_row"].to_numpy()] = matched["feature_row"].fill_null(-1).to_numpy()
    return rows


def _rows_by_merge_asof(labels: pa.Table, features: pa.Table) -> np.ndarray:
    """What ASOF_ROWS finds, by pandas' merge_asof over the slim tables sorted by time."""
    rows = np.full(len(labels), -1, dtype=np.int64)
    with ThreadPoolExecutor(max_workers=2) as pool:  # numpy's sorts free the GIL
        left = pool.submit(_sorted_by_time, labels, "quicksort")
        right = pool.submit(_sorted_by_time, features, "stable")  # ties keep features' order
        left_rows, right_rows = left.result(), right.result()
    if left_rows.empty or right_rows.empty:
        return rows
    # backward, exact matches allowed: the last row at or before the label time
    matched = pd.merge_asof(left_rows, right_rows, on="t", by="e", suffixes=("", "_f"))
    found = matched["r_f"].notna().to_numpy()
    rows[matched["r"].to_numpy()[found]] = matched["r_f"].to_numpy()[found]
    return rows


def _sorted_by_time(slim: pa.Table, kind: Literal["quicksort", "stable"]) -> pd.DataFrame:
    """The rows with an entity and a time, as a frame sorted by time."""
    usable = slim.filter(pc.and_(pc.is_valid(slim["e"]), pc.is_valid(slim["t"]))).to_pandas()
    return usable.take(np.argsort(usable["t"].to_numpy(), kind=kind))


def _gather(frame: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """``frame``'s rows at ``rows`` (-1: nulls), a column per thread (numpy's take frees the GIL)."""

    def column(name: str) -> pd.api.extensions.ExtensionArray | np.ndarray:
        return take(frame[name].array, rows, allow_fill=True)

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:
        taken = list(pool.map(column, frame.columns))
    return pd.DataFrame(dict(zip(frame.columns, taken, strict=True)), copy=False)


def _slim(ids: pa.Array, times: pd.Series) -> pa.Table:
    """(entity, time as int64 nanoseconds, row number); nulls stay null."""
    return pa.table(
        {
            "e": ids,
            "t": pa.array(times.array.asi8, mask=times.isna().to_numpy()),
            "r": np.arange(len(times), dtype=np.int64),
        }
    )


def _ids(entity: str, labels: pd.Series, features: pd.Series) -> tuple[pa.Array, pa.Array]:
    """Both sides' entity ids as Arrow arrays of one type that compare by value.

    Categoricals become their values; integers beside floats (ids with a missing value in a
    NumPy column) become floats. Integer ids that span less than 2^31 become int32 offsets
    from the smallest: DuckDB sorts (id, 128-bit key) pairs ~1.6x faster with 4-byte ids than
    with 8-byte ones (benchmarks/RESULTS.md).

    Raises:
        ValueError: one side holds strings and the other numbers (or other unlike types).
    """
    left, right = (_values(pa.array(ids, from_pandas=True)) for ids in (labels, features))
    if pa.types.is_null(left.type) or pa.types.is_null(right.type):
        return left, right  # no ids at all on one side: nothing joins
    if pa.types.is_integer(left.type) and pa.types.is_integer(right.type):
        return _int32_offsets(left.cast(pa.int64()), right.cast(pa.int64()))
    if _kind(left.type) == _kind(right.type) == "number":
        return left.cast(pa.float64()), right.cast(pa.float64())
    if _kind(left.type) != _kind(right.type):
        raise ValueError(
            f"entity {entity!r} holds {left.type} in the labels but {right.type} in the "
            "features: convert one side so that equal ids compare equal"
        )
    return left, right


def _values(ids: pa.Array) -> pa.Array:
    return ids.dictionary_decode() if pa.types.is_dictionary(ids.type) else ids


def _kind(ids: pa.DataType) -> str:
    if pa.types.is_integer(ids) or pa.types.is_floating(ids):
        return "number"
    return "string" if pa.types.is_string(ids) or pa.types.is_large_string(ids) else str(ids)


def _int32_offsets(left: pa.Array, right: pa.Array) -> tuple[pa.Array, pa.Array]:
    bounds = [pc.min_max(side) for side in (left, right)]
    ends = [b[end].as_py() for b in bounds for end in ("min", "max") if b[end].is_valid]
    if not ends or max(ends) - min(ends) >= 2**31:
        return left, right
    smallest = pa.scalar(min(ends), pa.int64())
    return (
        pc.subtract(left, smallest).cast(pa.int32()),
        pc.subtract(right, smallest).cast(pa.int32()),
    )


def _as_time(values: pd.Series) -> pd.Series:
    """Datetimes in nanoseconds (one unit on both sides; tz kept), converted only if need be."""
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = pd.to_datetime(values)
    return values if values.dt.unit == "ns" else values.dt.as_unit("ns")
