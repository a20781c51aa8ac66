"""Schema and per-column statistics of an Arrow table, as recorded in the catalog."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]
TOP_KEPT = 100  # values counted per text column: distinct counts merge exactly up to this many
TOP_SHOWN = 10


def schema_of(table: pa.Table | pa.Schema) -> dict[str, str]:
    schema = table.schema if isinstance(table, pa.Table) else table
    return {field.name: str(field.type) for field in schema}


def schema_hash(schema: dict[str, str]) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def column_statistics(table: pa.Table) -> dict[str, dict[str, Any]]:
    """nulls, min/max/mean and quantiles for numbers; distinct count and top values otherwise."""
    stats: dict[str, dict[str, Any]] = {}
    for name in table.column_names:
        column = table.column(name)
        entry: dict[str, Any] = {"nulls": column.null_count, "count": len(column)}
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind):
            valid = pc.drop_null(column)
            if len(valid):
                entry.update(
                    min=_py(pc.min(valid)),
                    max=_py(pc.max(valid)),
                    mean=_py(pc.mean(valid)),
                    quantiles=dict(
                        zip(
                            map(str, QUANTILES),
                            pc.quantile(valid, q=QUANTILES).to_pylist(),
                            strict=True,
                        )
                    ),
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


def merge_statistics(parts: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """The statistics of a union of partitions, from each partition's own statistics.

    So publishing one more day costs one day's statistics, not a re-read of the whole group.
    Exact: count, nulls, min, max, mean, and distinct counts of text columns with at most
    TOP_KEPT values per partition (beyond that ``distinct`` is a lower bound and
    ``distinct_exact`` is false). Quantiles are the row-weighted mean of the partitions'
    quantiles, flagged ``quantiles_approximate``.
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
            entry.update(
                min=min(e["min"] for e in numeric),
                max=max(e["max"] for e in numeric),
                mean=sum(e["mean"] * w for e, w in zip(numeric, weights, strict=True)) / total,
                quantiles={
                    q: sum(e["quantiles"][q] * w for e, w in zip(numeric, weights, strict=True))
                    / total
                    for q in numeric[0]["quantiles"]
                },
                quantiles_approximate=len(numeric) > 1,
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
