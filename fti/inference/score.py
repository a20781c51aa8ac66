"""Score feature record batches with a model into a local spool, batch by batch.

The spool (a Parquet file of ``SCORE_SCHEMA``) lets scoring finish before the database write
starts, so the write transaction holds its lock only as long as the bulk load takes, and memory
stays at one batch whatever the slice size. ``predict`` is the one place a model's outputs are
turned into prediction columns, for every task; ``score_rows`` the one place feature rows reach
it, for batch (``score_to_spool``) and for the scoring service (fti.serve) alike.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fti.inference.write import SCORE_SCHEMA, class_probabilities_json


class Observer(Protocol):
    def add(self, batch: pa.RecordBatch, observed: np.ndarray) -> None: ...


THRESHOLD = 0.5  # binary: prediction = probability of class 1 >= THRESHOLD
SPOOL_BATCH_ROWS = 256 * 1024


@dataclass(frozen=True)
class Outputs:
    """A model's outputs for some rows: prediction columns (by SCORE_SCHEMA name) and the
    numbers drift watches (class-1 probability, top-class probability, or the value)."""

    columns: dict[str, pa.Array]
    observed: np.ndarray


def predict(task: str, estimator: Any, frame: pd.DataFrame) -> Outputs:
    """Binary: prediction 0/1 and probability of class 1. Multiclass: predicted_class, its
    probability, and class_probabilities as JSON text. Regression: value."""
    if task == "regression":
        value = np.asarray(estimator.predict(frame), dtype="float64")
        return Outputs({"value": pa.array(value, pa.float64())}, value)
    probabilities = np.asarray(estimator.predict_proba(frame), dtype="float64")
    if task == "binary":
        positive = probabilities[:, 1]
        return Outputs(
            {
                "prediction": pa.array((positive >= THRESHOLD).astype("int32"), pa.int32()),
                "probability": pa.array(positive, pa.float64()),
            },
            positive,
        )
    classes = [str(c) for c in estimator.classes_]
    best = probabilities.argmax(axis=1)
    top = probabilities[np.arange(len(best)), best]
    return Outputs(
        {
            "predicted_class": pa.array(np.asarray(classes, dtype=object)[best], pa.string()),
            "probability": pa.array(top, pa.float64()),
            "class_probabilities": class_probabilities_json(classes, probabilities),
        },
        top,
    )


def score_rows(task: str, estimator: Any, rows: pa.RecordBatch, features: Sequence[str]) -> Outputs:
    """Score ``rows`` (from ``fti.inference.features.model_rows``) on ``features``, in the
    trained order: what batch inference and the scoring service both call."""
    return predict(task, estimator, rows.select(list(features)).to_pandas())


def as_records(outputs: Outputs) -> list[dict[str, Any]]:
    """The outputs as one JSON-ready dict per row, named as the predictions table's columns
    (``class_probabilities`` as an object); a NaN becomes None."""
    columns = {name: array.to_pylist() for name, array in outputs.columns.items()}
    if "class_probabilities" in columns:
        columns["class_probabilities"] = [
            None if text is None else json.loads(text) for text in columns["class_probabilities"]
        ]
    return [
        {name: _json_ready(values[i]) for name, values in columns.items()}
        for i in range(len(outputs.observed))
    ]


def _json_ready(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def score_to_spool(
    estimator: Any,
    task: str,
    batches: Iterable[pa.RecordBatch],
    entity: str,
    features: list[str],
    spool: Path,
    observers: Sequence[Observer],
) -> int:
    """Score each batch's ``features`` into ``spool``; returns the number of rows scored.

    Each observer (the skew guard's profile, the drift counter) sees every batch and the
    numbers drift watches.
    """
    rows = 0
    with pq.ParquetWriter(spool, SCORE_SCHEMA) as writer:
        for batch in batches:
            if batch.num_rows == 0:
                continue
            outputs = score_rows(task, estimator, batch, features)
            for observer in observers:
                observer.add(batch, outputs.observed)
            columns = {"entity_id": pc.cast(batch.column(entity), pa.string()), **outputs.columns}
            writer.write_batch(
                pa.RecordBatch.from_arrays(
                    [
                        columns.get(field.name, pa.nulls(batch.num_rows, field.type))
                        for field in SCORE_SCHEMA
                    ],
                    schema=SCORE_SCHEMA,
                )
            )
            rows += batch.num_rows
    return rows


def read_spool(spool: Path) -> Iterator[pa.RecordBatch]:
    yield from pq.ParquetFile(spool).iter_batches(batch_size=SPOOL_BATCH_ROWS)
