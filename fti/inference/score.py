"""Score feature record batches with a model into a local spool, batch by batch.

The spool (a Parquet file of ``SCORE_SCHEMA``) lets scoring finish before the database write
starts, so the write transaction holds its lock only as long as the bulk load takes, and memory
stays at one batch whatever the slice size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fti.inference.write import SCORE_SCHEMA


class Observer(Protocol):
    def add(self, batch: pa.RecordBatch, probabilities: np.ndarray) -> None: ...


THRESHOLD = 0.5  # prediction = probability >= THRESHOLD
SPOOL_BATCH_ROWS = 256 * 1024


def score_to_spool(
    estimator: Any,
    batches: Iterable[pa.RecordBatch],
    entity: str,
    features: list[str],
    spool: Path,
    observers: Sequence[Observer],
) -> int:
    """Score each batch's ``features`` into ``spool``; returns the number of rows scored.

    Each observer (the skew guard's profile, the drift counter) sees every batch and its
    probabilities.
    """
    rows = 0
    with pq.ParquetWriter(spool, SCORE_SCHEMA) as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            probability = estimator.predict_proba(batch.select(features).to_pandas())[:, 1]
            for observer in observers:
                observer.add(batch, probability)
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
