"""Write one (model, as-of date) slice of predictions atomically, with the database's bulk path."""

from __future__ import annotations

import io
from datetime import date

import pandas as pd
from sqlalchemy import Connection, delete, insert

from fti.db.tables import Prediction

COLUMNS = [
    "model_name",
    "model_version",
    "feature_group",
    "feature_version",
    "entity_id",
    "as_of_date",
    "prediction",
    "probability",
    "run_id",
    "airflow_run_id",
    "logical_date",
    "scored_at",
]


def replace_slice(connection: Connection, model_name: str, as_of: date, rows: pd.DataFrame) -> int:
    """Delete the slice and insert ``rows`` (COLUMNS) inside the caller's transaction.

    PostgreSQL gets ``COPY``; other databases one ``executemany``. Readers see the old slice
    until the caller commits, then the new one.
    """
    connection.execute(
        delete(Prediction).where(
            Prediction.model_name == model_name, Prediction.as_of_date == as_of
        )
    )
    if rows.empty:
        return 0
    rows = rows[COLUMNS]
    if connection.dialect.name == "postgresql":
        _copy(connection, rows)
    elif connection.dialect.name == "sqlite":
        _executemany(connection, rows)
    else:
        connection.execute(insert(Prediction), rows.to_dict("records"))
    return len(rows)


def _dates_as_text(rows: pd.DataFrame, time_format: str) -> pd.DataFrame:
    """Dates and times as text (None stays None), formatted once per distinct value."""

    def formatted(column: str, fmt: str, utc: bool) -> pd.Series:
        values = pd.to_datetime(rows[column], utc=utc)
        text = values.map({v: v.strftime(fmt) for v in values.dropna().unique()})
        return text.astype(object).where(values.notna(), None)

    return rows.assign(
        as_of_date=formatted("as_of_date", "%Y-%m-%d", False),
        logical_date=formatted("logical_date", "%Y-%m-%d", False),
        scored_at=formatted("scored_at", time_format, True),
    )


def _executemany(connection: Connection, rows: pd.DataFrame) -> None:
    """One DBAPI executemany with plain tuples, values in the text forms SQLAlchemy reads back."""
    values = _dates_as_text(rows, "%Y-%m-%d %H:%M:%S.%f")
    placeholders = ", ".join("?" for _ in COLUMNS)
    driver = connection.connection.driver_connection
    assert driver is not None
    cursor = driver.cursor()
    try:
        cursor.executemany(
            f"INSERT INTO predictions ({', '.join(COLUMNS)}) VALUES ({placeholders})",
            values.astype(object).itertuples(index=False, name=None),
        )
    finally:
        cursor.close()


def _copy(connection: Connection, rows: pd.DataFrame) -> None:
    buffer = io.StringIO()
    _dates_as_text(rows, "%Y-%m-%dT%H:%M:%S.%f+00:00").to_csv(buffer, index=False, header=False)
    buffer.seek(0)
    driver = connection.connection.driver_connection  # psycopg 3, in the caller's transaction
    assert driver is not None
    cursor = driver.cursor()
    with cursor.copy(
        f"COPY predictions ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT csv)"
    ) as copy:
        while chunk := buffer.read(1 << 20):
            copy.write(chunk)
