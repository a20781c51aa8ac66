"""Schema and per-column statistics of an Arrow table, as recorded in the catalog.

Quantiles of numeric columns merge through a KLL sketch (Apache DataSketches,
``datasketches.kll_doubles_sketch``): each partition's statistics carry its sketch, the
statistics of a version merge its partitions' sketches and read their quantiles from the
merged one. A KLL sketch keeps every value while it has seen at most ``SKETCH_K`` of them, so
merged quantiles of few rows are exact; beyond that a quantile's rank is off by at most
``kll_doubles_sketch.get_normalized_rank_error(SKETCH_K, False)`` (1.33% for k = 200) with
99% confidence, and the merge says so with ``quantiles_approximate``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasketches import kll_doubles_sketch

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
TOP_KEPT = 100  # values counted per text column: distinct counts merge exactly up to this many
TOP_SHOWN = 10
# KLL's accuracy parameter (the library's default). A sketch of n <= k values holds them all
# (8 bytes each + 8); above that it holds about 1k-3k values. Stored zlib-compressed, as base64
# text per column per partition: counts and other repeated values shrink about 5 times (the
# churn demo's columns, 300 rows a day: 0.1-1.1 KB); continuous values hardly (normal draws:
# 2.2 KB at 200-300 rows, 4.4 KB at 2,000, 5.6 KB at 10,000, 6.4 KB at a million).
SKETCH_K = 200
SKETCH = "quantile_sketch"  # key of a partition's sketch: base64 of the zlib'd serialized sketch


def schema_of(table: pa.Table | pa.Schema) -> dict[str, str]:
    schema = table.schema if isinstance(table, pa.Table) else table
    return {field.name: str(field.type) for field in schema}


def schema_hash(schema: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def column_statistics(table: pa.Table) -> dict[str, dict[str, Any]]:
    """nulls, min/max/mean and quantiles for numbers; distinct count and top values otherwise.

    Quantiles are exact: for q, the smallest value with at least a share q of the non-null,
    non-NaN values at or below it (numpy's ``inverted_cdf``, the definition a KLL sketch
    reads with ``inclusive=True``). Numeric columns also carry ``quantile_sketch``, so the
    statistics of partitions merge (``merge_statistics``).
    """
    stats: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        entry: dict[str, Any] = {"nulls": column.null_count, "count": len(column)}
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            valid = pc.drop_null(column)
            if len(valid):
                values = _numbers(valid)
                entry.update(
                    min=_py(pc.min(valid)),
                    max=_py(pc.max(valid)),
                    mean=_py(pc.mean(valid)),
                    quantiles=_exact_quantiles(values),
                    **{SKETCH: _encode(_sketch(values))},
                )
        elif (
            pa.types.is_string(kind)
            or pa.types.is_large_string(kind)
            or pa.types.is_dictionary(kind)
        ):
            counts = pc.value_counts(column).to_pylist()
            counts.sort(key=lambda item: -item["counts"])
            entry.update(
                distinct=len(counts),
                top={str(c["values"]): c["counts"] for c in counts[:TOP_KEPT]},
            )
        elif pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            valid = pc.drop_null(column)
            if len(valid):
                entry.update(min=str(_py(pc.min(valid))), max=str(_py(pc.max(valid))))
        stats[name] = entry
    return stats


def _py(scalar: pa.Scalar) -> Any:
    return scalar.as_py()


def _numbers(valid: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values as float64, NaN left out (as Arrow's quantile and the sketch leave it out)."""
    values = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=np.float64)
    return values[~np.isnan(values)]


def _exact_quantiles(values: np.ndarray) -> dict[str, float | None]:
    if not len(values):
        return dict.fromkeys(map(str, QUANTILES))
    found = np.quantile(values, QUANTILES, method="inverted_cdf")
    return dict(zip(map(str, QUANTILES), map(float, found), strict=True))


def _sketch(values: np.ndarray) -> kll_doubles_sketch:
    sketch = kll_doubles_sketch(SKETCH_K)
    sketch.update(values)
    return sketch


def _encode(sketch: kll_doubles_sketch) -> str:
    return base64.b64encode(zlib.compress(sketch.serialize(), 9)).decode("ascii")


def _decode(text: str) -> kll_doubles_sketch:
    return kll_doubles_sketch.deserialize(zlib.decompress(base64.b64decode(text)))


def merge_statistics(parts: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The statistics of a union of partitions, from each partition's own statistics.

    So publishing one more day costs one day's statistics, not a re-read of the whole group.
    Exact: count, nulls, min, max, mean, and distinct counts of text columns with at most
    TOP_KEPT values per partition (beyond that ``distinct`` is a lower bound and
    ``distinct_exact`` is false). Quantiles of one partition are its own (exact); of several,
    they are read from the merge of the partitions' KLL sketches: exact up to SKETCH_K values,
    within the sketch's normalized rank error beyond, when ``quantiles_approximate`` is true.
    The merged statistics hold quantiles, not a sketch (they are shown as they are).

    Statistics recorded before partitions carried a sketch (catalog rows written before fti
    kept them) still merge: such a partition stands in with its recorded quantiles, min and
    max, as its row count of values spread linearly between them (exact when min equals max,
    as in a one-row partition), and the merge is flagged ``quantiles_approximate``.
    """
    merged: dict[str, dict[str, Any]] = {}
    for name in dict.fromkeys(n for part in parts for n in part):
        entries = [part[name] for part in parts if name in part]
        count = sum(e["count"] for e in entries)
        entry: dict[str, Any] = {"nulls": sum(e["nulls"] for e in entries), "count": count}
        numeric = [e for e in entries if isinstance(e.get("mean"), int | float)]
        if numeric:
            weights = [e["count"] - e["nulls"] for e in numeric]
            total = sum(weights) or 1
            quantiles, approximate = _merged_quantiles(numeric)
            entry.update(
                min=min(e["min"] for e in numeric),
                max=max(e["max"] for e in numeric),
                mean=sum(e["mean"] * w for e, w in zip(numeric, weights, strict=True)) / total,
                quantiles=quantiles,
                quantiles_approximate=approximate,
            )
        elif any("top" in e for e in entries):
            counts: dict[str, int] = {}
            for e in entries:
                for value, n in e.get("top", {}).items():
                    counts[value] = counts.get(value, 0) + n
            exact = all(e.get("distinct", 0) <= len(e.get("top", {})) for e in entries)
            ranked = sorted(counts.items(), key=lambda item: -item[1])
            entry.update(
                distinct=len(counts)
                if exact
                else max(len(counts), *(e["distinct"] for e in entries)),
                distinct_exact=exact,
                top=dict(ranked[:TOP_SHOWN]),
            )
        elif any("min" in e for e in entries):  # dates and timestamps, as ISO text
            entry.update(
                min=min(e["min"] for e in entries if "min" in e),
                max=max(e["max"] for e in entries if "max" in e),
            )
        merged[name] = entry
    return merged


def _merged_quantiles(numeric: list[dict[str, Any]]) -> tuple[dict[str, Any], bool]:
    """Quantiles of the union of numeric partitions, and whether they are approximate."""
    if len(numeric) == 1:
        return dict(numeric[0]["quantiles"]), bool(numeric[0].get("quantiles_approximate"))
    sketch = kll_doubles_sketch(SKETCH_K)
    approximate = False
    for e in numeric:
        if SKETCH in e:
            sketch.merge(_decode(e[SKETCH]))
        else:
            part, exact = _recorded_sketch(e)
            sketch.merge(part)
            approximate = approximate or not exact
    if sketch.is_empty():
        return dict.fromkeys(map(str, QUANTILES)), approximate
    found = sketch.get_quantiles(QUANTILES, inclusive=True)
    quantiles = dict(zip(map(str, QUANTILES), map(float, found), strict=True))
    return quantiles, approximate or sketch.is_estimation_mode()


def _recorded_sketch(entry: dict[str, Any]) -> tuple[kll_doubles_sketch, bool]:
    """A sketch standing in for a partition recorded without one, and whether it is exact.

    Its values are its row count of points spread along the line through (0, min), its
    recorded (quantile, value) pairs and (1, max): exact when min equals max.
    """
    rows = max(int(entry["count"]) - int(entry["nulls"]), 0)
    recorded = sorted(
        (float(q), float(v)) for q, v in (entry.get("quantiles") or {}).items() if v is not None
    )
    if entry["min"] == entry["max"]:
        return _sketch(np.full(rows, float(entry["min"]))), True
    if not recorded:
        return kll_doubles_sketch(SKETCH_K), False  # no non-NaN value was ever seen
    ranks = [0.0, *(q for q, _ in recorded), 1.0]
    values = [float(entry["min"]), *(v for _, v in recorded), float(entry["max"])]
    return _sketch(np.interp((np.arange(rows) + 0.5) / max(rows, 1), ranks, values)), False
