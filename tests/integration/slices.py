"""Prediction slices for tests: a slice's lineage and deterministic score batches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime

import pyarrow as pa

from fti.inference.write import SCORE_SCHEMA, Slice, write_slice


def a_slice(as_of: date, version: int = 1, run_id: str | None = None, **extra: object) -> Slice:
    fields: dict[str, object] = {
        "model_name": "m",
        "model_version": version,
        "feature_group": "g",
        "feature_version": 1,
        "as_of_date": as_of,
        "run_id": run_id or f"run-{version}",
        "scored_at": datetime(2026, 3, 1, tzinfo=UTC),
    }
    return Slice(**(fields | extra))  # type: ignore[arg-type]


def scores(n: int, batch_size: int = 10_000, salt: int = 0) -> Iterator[pa.RecordBatch]:
    """Entities "0".."n-1"; probability i/n (+ salt, to tell versions apart), in batches."""
    for start in range(0, n, batch_size):
        ids = range(start, min(n, start + batch_size))
        yield pa.RecordBatch.from_pydict(
            {
                "entity_id": [str(i) for i in ids],
                "prediction": [i % 2 for i in ids],
                "probability": [(i / n + salt) % 1 for i in ids],
            },
            # A binary model's columns only: write_slice fills the others with nulls.
            schema=pa.schema(
                [SCORE_SCHEMA.field(n) for n in ("entity_id", "prediction", "probability")]
            ),
        )


def write(db_url: str, as_of: date, version: int, n: int, **extra: object) -> int:
    return write_slice(db_url, a_slice(as_of, version, **extra), scores(n))
