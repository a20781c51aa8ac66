"""Schema and per-column statistics of an Arrow table, as recorded in the catalog."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

QUANTILES = [0.05, 0.25, 0.5, 0.75, 0.95]


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
                distinct=len(counts), top={str(c["values"]): c["counts"] for c in counts[:10]}
            )
        elif pa.types.is_date(kind) or pa.types.is_timestamp(kind):
            valid = pc.drop_null(column)
            if len(valid):
                entry.update(min=str(_py(pc.min(valid))), max=str(_py(pc.max(valid))))
        stats[name] = entry
    return stats


def _py(scalar: pa.Scalar) -> Any:
    return scalar.as_py()
