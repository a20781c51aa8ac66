"""The write step of ``bench_inference.py``: each competitor (fti's ``write_slice``,
``DataFrame.to_sql`` with two methods, the bare baselines) prepared untimed, then timed
replacing the same slice of the same N scores from the same database state, and checked to
leave exactly N rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from databases import _libpq
from inference_setup import AS_OF, MODEL, _model_row, _slice
from workers import _peak_rss_mib, _settings

TO_SQL_MULTI_CHUNK = 1_000  # rows per multi-row INSERT: 12 columns -> 12,000 bind parameters
# PostgreSQL's bare baselines load into these fresh tables (constant names, no user input).
BARE_TABLES = {
    "bare": ("bench_bare_copy", "INCLUDING DEFAULTS"),
    "bare_indexed": ("bench_bare_indexed", "INCLUDING DEFAULTS INCLUDING INDEXES"),
}


def _settle(url: str) -> None:
    """Untimed: the same starting state before every timed run (no dead rows, clean WAL)."""
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            connection.execute("VACUUM predictions")
            connection.execute("CHECKPOINT")
    else:
        import sqlite3

        connection = sqlite3.connect(_sqlite_path(url))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()


def _slice_rows(url: str) -> int:
    from sqlalchemy import func, select

    from fti.db.engine import get_engine
    from fti.db.tables import Prediction

    query = select(func.count()).where(
        Prediction.model_name == MODEL, Prediction.as_of_date == AS_OF
    )
    with get_engine(url).connect() as connection:
        return int(connection.scalar(query))


def _table_rows(url: str, table: str) -> int:
    from sqlalchemy import text

    from fti.db.engine import get_engine

    with get_engine(url).connect() as connection:
        return int(connection.scalar(text(f"SELECT count(*) FROM {table}")))  # a constant name


def _delete_slice(url: str) -> None:
    from sqlalchemy import delete

    from fti.db.engine import get_engine
    from fti.db.tables import Prediction

    with get_engine(url).begin() as connection:
        connection.execute(
            delete(Prediction).where(Prediction.model_name == MODEL, Prediction.as_of_date == AS_OF)
        )


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _write(
    home: str, db_url: str, spool: str, method: str, run_id: str
) -> tuple[int, float, float]:
    """One timed write of the spool's N scores into the slice with ``method``."""
    url = _settings(home, db_url).db_url
    row = _model_row(url)
    prepare = {"fti": _prepare_fti, "to_sql": _prepare_to_sql, "to_sql_multi": _prepare_to_sql}
    prepare_fn = prepare.get(method, _prepare_bare)
    write = prepare_fn(url, Path(spool), row, run_id, method)  # untimed
    _settle(url)
    clock = time.perf_counter()
    rows = write()
    seconds = time.perf_counter() - clock
    peak = _peak_rss_mib()
    bare_table = method in BARE_TABLES and url.startswith("postgresql")
    written = _table_rows(url, BARE_TABLES[method][0]) if bare_table else _slice_rows(url)
    if written != rows:
        raise RuntimeError(f"{method} left {written} rows in the slice, expected {rows}")
    return rows, seconds, peak


def _prepare_fti(url: str, spool: Path, row: Any, run_id: str, _method: str) -> Callable[[], int]:
    from fti.inference.runs import start_run
    from fti.inference.score import read_spool
    from fti.inference.write import write_slice

    start_run(url, run_id, MODEL, AS_OF, None, None)
    piece = _slice(row, run_id)
    return lambda: write_slice(url, piece, read_spool(spool))


def _lineage_values(row: Any, run_id: str) -> dict[str, Any]:
    return _slice(row, run_id).lineage()


def _prepare_to_sql(url: str, spool: Path, row: Any, run_id: str, method: str) -> Callable[[], int]:
    """The same rows as a DataFrame (lineage columns included), built before the clock starts."""
    import pandas as pd
    import pyarrow.parquet as pq
    from sqlalchemy import delete

    from fti.db.engine import get_engine
    from fti.db.tables import Prediction
    from fti.inference.write import COLUMNS

    scores = pq.read_table(spool).to_pandas()
    lineage = _lineage_values(row, run_id)
    frame = pd.DataFrame(
        {name: [value] * len(scores) for name, value in lineage.items()} | dict(scores.items())
    )[COLUMNS]
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    del scores
    column_types = {c.name: c.type for c in Prediction.__table__.columns if c.name in COLUMNS}
    extra = {"method": "multi", "chunksize": TO_SQL_MULTI_CHUNK} if method == "to_sql_multi" else {}

    def write() -> int:
        with get_engine(url).begin() as connection:
            connection.execute(
                delete(Prediction).where(
                    Prediction.model_name == MODEL, Prediction.as_of_date == AS_OF
                )
            )
            frame.to_sql(
                "predictions",
                connection,
                if_exists="append",
                index=False,
                dtype=column_types,
                **extra,
            )
        return len(frame)

    return write


def _prepare_bare(url: str, spool: Path, row: Any, run_id: str, method: str) -> Callable[[], int]:
    """No model, no lock/delete/run logic (SQLite: the slice is deleted beforehand, untimed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fti.inference.write import LINEAGE_TYPES, SCORE_SCHEMA

    scores = pq.read_table(spool, schema=SCORE_SCHEMA)
    lineage = _lineage_values(row, run_id)
    if url.startswith("postgresql"):
        import psycopg

        target, like = BARE_TABLES[method]
        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {target}")
            connection.execute(f"CREATE TABLE {target} (LIKE predictions {like})")
        n = scores.num_rows
        constants = [
            pa.repeat(pa.scalar(lineage[name], kind), n) for name, kind in LINEAGE_TYPES.items()
        ]
        table = pa.Table.from_arrays(
            [*constants, *scores.columns], names=[*LINEAGE_TYPES, *SCORE_SCHEMA.names]
        )
        del scores

        def copy() -> int:
            import adbc_driver_postgresql.dbapi as adbc

            with adbc.connect(_libpq(url)) as connection, connection.cursor() as cursor:
                cursor.adbc_ingest(target, table, mode="append")
                connection.commit()
            return table.num_rows

        return copy
    import sqlite3
    from itertools import repeat

    _delete_slice(url)
    columns = [*LINEAGE_TYPES, *SCORE_SCHEMA.names]
    constants = [
        lineage["model_name"],
        lineage["model_version"],
        lineage["feature_group"],
        lineage["feature_version"],
        lineage["as_of_date"].isoformat(),
        lineage["run_id"],
        None,
        None,
        lineage["scored_at"].strftime("%Y-%m-%d %H:%M:%S.%f"),
    ]
    values = [scores.column(name).to_pylist() for name in SCORE_SCHEMA.names]
    n = scores.num_rows
    del scores
    sql = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def executemany() -> int:
        connection = sqlite3.connect(_sqlite_path(url), isolation_level=None)
        connection.execute("PRAGMA synchronous=NORMAL")  # as fti's engine sets it
        connection.execute("BEGIN")
        connection.executemany(sql, zip(*(repeat(c, n) for c in constants), *values, strict=True))
        connection.execute("COMMIT")
        connection.close()
        return n

    return executemany
