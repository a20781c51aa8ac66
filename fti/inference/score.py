"""Score feature record batches with a model into a local spool, batch by batch.

The spool (a Parquet file of ``SCORE_SCHEMA``) lets scoring finish before the database write
starts, so the write transaction holds its lock only as long as the bulk load takes, and memory
stays at one batch whatever the slice size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fti.inference.skew import ServingProfile
from fti.inference.write import SCORE_SCHEMA

THRESHOLD = 0.5  # prediction = probability >= THRESHOLD
SPOOL_BATCH_ROWS = 256 * 1024


def score_to_spool(
    estimator: Any,
    batches: Iterable[pa.RecordBatch],
    entity: str,
    features: list[str],
    spool: Path,
    profile: ServingProfile,
) -> int:
    """Score each batch's ``features`` into ``spool``; returns the number of rows scored."""
    rows = 0
    with pq.ParquetWriter(spool, SCORE_SCHEMA) as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            profile.add(batch)
            probability = estimator.predict_proba(batch.select(features).to_pandas())[:, 1]
            scored = pa.array(probability, pa.float64())
            writer.write_batch(
                pa.RecordBatch.from_arrays(
                    [
                        pc.cast(batch.column(entity), pa.string()),
                        pc.cast(pc.greater_equal(scored, THRESHOLD), pa.int32()),
                        scored,
                    ],
                    schema=SCORE_SCHEMA,
                )
            )
            rows += batch.num_rows
    return rows


def read_spool(spool: Path) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(spool).iter_batches(batch_size=SPOOL_BATCH_ROWS)
