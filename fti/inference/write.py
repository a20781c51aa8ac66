"""Replace one (model, as-of date) slice of predictions atomically, with the database's bulk path.

Scores arrive as Arrow record batches of ``SCORE_SCHEMA``; the lineage that is the same on every
row of a slice (``Slice``) is added while loading, so a slice of 1e7 rows never sits in memory
at once. Which score columns a row fills depends on the model's task (see
``fti.db.tables.Prediction``): binary ``prediction`` and ``probability``; multiclass
``predicted_class``, ``probability`` (of that class) and ``class_probabilities`` (JSON text,
e.g. ``{"rain": 0.7, "dry": 0.3}``, made by ``class_probabilities_json``); regression
``value``. A batch may leave out any score column but ``entity_id``: it is written as nulls.

- PostgreSQL (``predictions`` has one partition per slice, migration 0006): one ADBC
  connection, one transaction: an advisory lock that queues slice writers (two copies of the
  same task, or writers of two slices, wait for each other instead of interleaving or
  deadlocking on the swap), a bare table for the new slice, binary ``COPY`` of the batches
  into it (``adbc_ingest``), its key and indexes built in bulk (``fti_slice_index``), the old
  partition detached and dropped and the new one attached (``fti_slice_swap``, which waits for
  long readers in short tries so that other readers are not stalled behind it), the run row
  marked succeeded, COMMIT.
  No row goes through an index that holds other slices, and no dead rows are left behind.
  ``class_probabilities`` goes in as text to a ``json`` column, which the server checks.
- SQLite: one ``BEGIN IMMEDIATE`` transaction: DELETE, one DBAPI ``executemany`` per batch,
  the run row, COMMIT. ``class_probabilities`` goes through SQLite's ``json()``, which refuses
  malformed text, as PostgreSQL does.

Readers see the old slice until the commit and the new one after it, never a mix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, delete, insert, make_url, update

from fti.db.engine import get_engine
from fti.db.tables import Prediction, PredictionRun
from fti.errors import PredictionWriteError

SQLITE_WRITE_CACHE_KIB = 1024 * 1024
WRITER_LOCK = "fti-predictions-writer"  # PostgreSQL advisory lock: one slice writer at a time
SCORE_SCHEMA = pa.schema(
    [
        ("entity_id", pa.string()),
        ("prediction", pa.int32()),  # binary: 0/1
        ("probability", pa.float64()),  # binary: of class 1; multiclass: of the predicted class
        ("value", pa.float64()),  # regression
        ("predicted_class", pa.string()),  # multiclass
        ("class_probabilities", pa.string()),  # multiclass: JSON text {"class": probability}
    ]
)
JSON_COLUMNS = {"class_probabilities"}

# The predictions table's columns as Arrow types: binary COPY needs the exact server types.
LINEAGE_TYPES = {
    "model_name": pa.string(),
    "model_version": pa.int32(),
    "feature_group": pa.string(),
    "feature_version": pa.int32(),
    "as_of_date": pa.date32(),
    "run_id": pa.string(),
    "airflow_run_id": pa.string(),
    "logical_date": pa.date32(),
    "scored_at": pa.timestamp("us", tz="UTC"),
}
COLUMNS = [*LINEAGE_TYPES, *SCORE_SCHEMA.names]


@dataclass(frozen=True)
class Slice:
    """What every row of one (model, as-of date) slice shares: its lineage."""

    model_name: str
    model_version: int
    feature_group: str
    feature_version: int
    as_of_date: date
    run_id: str
    scored_at: datetime
    airflow_run_id: str | None = None
    logical_date: date | None = None

    def lineage(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in LINEAGE_TYPES}


def write_slice(db_url: str, piece: Slice, scores: Iterable[pa.RecordBatch]) -> int:
    """Replace ``piece``'s rows with ``scores`` and mark its run succeeded, in one transaction.

    Returns the number of rows written. On any error nothing of the new slice is visible and
    the previous slice stays as it was.
    """
    batches = (_conform(batch) for batch in scores)
    try:
        if make_url(db_url).get_backend_name() == "postgresql":
            return _write_postgresql(db_url, piece, batches)
        return _write_with_sqlalchemy(db_url, piece, batches)
    except Exception as exc:
        raise PredictionWriteError(
            f"writing predictions of {piece.model_name} v{piece.model_version} for "
            f"{piece.as_of_date} failed and was rolled back; the previous slice is unchanged. "
            f"Fix the cause and rerun the task. Cause: {type(exc).__name__}: {exc}"
        ) from exc


def class_probabilities_json(classes: Sequence[object], probabilities: Any) -> pa.Array:
    """The ``class_probabilities`` column: one JSON object per row, {class: probability}.

    ``classes`` name the columns of ``probabilities`` (rows x classes, e.g. an estimator's
    ``classes_`` and ``predict_proba``); class names are written as JSON strings, a NaN or
    infinite probability as null. Built by Arrow kernels, not a Python loop over rows.
    """
    matrix = np.asarray(probabilities, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[1] != len(classes):
        raise ValueError(
            f"probabilities of shape {matrix.shape} do not match {len(classes)} classes"
        )
    parts: list[Any] = []
    for number, name in enumerate(classes):
        column = pa.array(matrix[:, number])
        text = pc.if_else(pc.is_finite(column), pc.cast(column, pa.string()), "null")
        key = json.dumps(str(name), ensure_ascii=False) + ": "
        parts.append(pc.binary_join_element_wise(key, text, ""))
    if not parts:
        return pa.array(["{}"] * len(matrix), pa.string())
    body = pc.binary_join_element_wise(*parts, ", ")
    return pc.binary_join_element_wise("{", body, "}", "")


def _conform(batch: pa.RecordBatch) -> pa.RecordBatch:
    """The batch as ``SCORE_SCHEMA``: columns cast, in order; a missing score column is nulls."""
    if "entity_id" not in batch.schema.names:
        raise ValueError(f"a batch of scores has no entity_id column: {batch.schema.names}")
    return pa.RecordBatch.from_arrays(
        [
            batch.column(field.name).cast(field.type)
            if field.name in batch.schema.names
            else pa.nulls(batch.num_rows, field.type)
            for field in SCORE_SCHEMA
        ],
        schema=SCORE_SCHEMA,
    )


def _finish_run(piece: Slice, rows: int) -> Any:
    return (
        update(PredictionRun)
        .where(PredictionRun.run_id == piece.run_id)
        .values(status="succeeded", row_count=rows, finished_at=datetime.now(UTC), error=None)
    )


# ---- PostgreSQL: ADBC binary COPY ------------------------------------------------------------
def _write_postgresql(db_url: str, piece: Slice, batches: Iterator[pa.RecordBatch]) -> int:
    import adbc_driver_postgresql.dbapi as adbc  # imported here: SQLite users never load it

    counted = _Counter(_with_lineage(batch, piece) for batch in batches)
    schema = pa.schema([*((n, t) for n, t in LINEAGE_TYPES.items()), *SCORE_SCHEMA])
    with adbc.connect(_libpq_uri(db_url)) as connection, connection.cursor() as cursor:
        try:
            # One slice writer at a time in the database: staging a slice (CREATE TABLE ... LIKE
            # predictions) holds a share lock on predictions until COMMIT, and the swap then
            # needs it exclusively, so two writers of different slices would each wait for the
            # other (a deadlock, seen under two Celery workers). Scoring, the long part, still
            # runs side by side; only the bulk load and the swap queue here.
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext($1))", parameters=(WRITER_LOCK,))
            slice_key = (piece.model_name, piece.as_of_date)
            cursor.execute("SELECT fti_slice_stage($1, $2)", parameters=slice_key)
            (stage,) = cursor.fetchone()  # named by the server from the slice, not by us
            reader = pa.RecordBatchReader.from_batches(schema, counted)
            cursor.adbc_ingest(stage, reader, mode="append")
            cursor.execute("SELECT fti_slice_index($1, $2)", parameters=slice_key)
            cursor.execute("SELECT fti_slice_swap($1, $2)", parameters=slice_key)
            cursor.execute(
                "UPDATE prediction_runs SET status = 'succeeded', row_count = $1,"
                " finished_at = $2, error = NULL WHERE run_id = $3",
                parameters=(counted.rows, datetime.now(UTC), piece.run_id),
            )
            connection.commit()
        except BaseException:
            connection.rollback()
            raise
    return counted.rows


def _libpq_uri(db_url: str) -> str:
    """The SQLAlchemy URL as a libpq URI (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return make_url(db_url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_lineage(batch: pa.RecordBatch, piece: Slice) -> pa.RecordBatch:
    """The batch with the slice's lineage as constant columns (no Python loop over rows)."""
    zeros = pa.array(np.zeros(batch.num_rows, np.int32))
    columns = [
        pc.take(pa.array([value], kind), zeros)
        for value, kind in zip(piece.lineage().values(), LINEAGE_TYPES.values(), strict=True)
    ]
    return pa.RecordBatch.from_arrays(
        [*columns, *batch.columns], names=[*LINEAGE_TYPES, *SCORE_SCHEMA.names]
    )


class _Counter:
    """Passes batches through and counts their rows."""

    def __init__(self, batches: Iterator[pa.RecordBatch]) -> None:
        self._batches = batches
        self.rows = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self._batches:
            self.rows += batch.num_rows
            yield batch


# ---- SQLite (and any other SQLAlchemy database) ----------------------------------------------
def _write_with_sqlalchemy(db_url: str, piece: Slice, batches: Iterator[pa.RecordBatch]) -> int:
    engine = get_engine(db_url)
    rows = 0
    with engine.connect().execution_options(sqlite_begin="IMMEDIATE") as connection:
        if connection.dialect.name == "sqlite":
            # SQLite's default 2 MiB page cache makes deleting and re-indexing a large slice
            # thrash; 1 GiB (allocated only as used) made a 1e6-row rewrite 3x faster.
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute(f"PRAGMA cache_size=-{SQLITE_WRITE_CACHE_KIB}")  # outside a transaction
        with connection.begin():
            connection.execute(
                delete(Prediction).where(
                    Prediction.model_name == piece.model_name,
                    Prediction.as_of_date == piece.as_of_date,
                )
            )
            for batch in batches:
                rows += _insert(connection, piece, batch)
            connection.execute(_finish_run(piece, rows))
    return rows


def _insert(connection: Connection, piece: Slice, batch: pa.RecordBatch) -> int:
    if connection.dialect.name != "sqlite":
        rows = [piece.lineage() | row for row in batch.to_pylist()]
        for row in rows:
            for name in JSON_COLUMNS:
                row[name] = None if row[name] is None else json.loads(row[name])
        connection.execute(insert(Prediction), rows)
        return batch.num_rows
    # One DBAPI executemany of plain tuples, lineage in the text forms SQLAlchemy reads back.
    constants = _sqlite_values(piece)
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO predictions ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join('json(?)' if c in JSON_COLUMNS else '?' for c in COLUMNS)})",
            (
                (*constants, *row)
                for row in zip(
                    *(batch.column(name).to_pylist() for name in SCORE_SCHEMA.names), strict=True
                )
            ),
        )
    finally:
        cursor.close()
    return batch.num_rows


def _sqlite_values(piece: Slice) -> tuple[Any, ...]:
    def day(value: date | None) -> str | None:
        return value.isoformat() if value else None

    return (
        piece.model_name,
        piece.model_version,
        piece.feature_group,
        piece.feature_version,
        day(piece.as_of_date),
        piece.run_id,
        piece.airflow_run_id,
        day(piece.logical_date),
        piece.scored_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f"),
    )
