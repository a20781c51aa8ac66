"""The prediction_runs ledger: a row per run from its first moment, then its outcome."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from fti.db.engine import get_engine, session_scope
from fti.db.tables import PredictionRun

log = logging.getLogger(__name__)


def start_run(
    db_url: str,
    run_id: str,
    model_name: str,
    as_of: date,
    airflow_run_id: str | None,
    logical_date: date | None,
) -> None:
    """Record ``run_id`` as running (a retry with the same id starts its row afresh).

    A write transaction from its first statement (SQLite: ``BEGIN IMMEDIATE``): ``merge`` reads
    before it writes, and a read transaction that then writes fails at once on SQLite when
    another writer holds the lock, instead of waiting for it.
    """
    with session_scope(db_url, write=True) as session:
        session.merge(
            PredictionRun(
                run_id=run_id,
                model_name=model_name,
                model_version=None,
                feature_group=None,
                feature_version=None,
                as_of_date=as_of,
                status="running",
                row_count=0,
                started_at=datetime.now(UTC),
                finished_at=None,
                error=None,
                airflow_run_id=airflow_run_id,
                logical_date=logical_date,
                warnings=None,
            )
        )


def update_run(db_url: str, run_id: str, **values: Any) -> None:
    with (
        get_engine(db_url).connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
        connection.begin(),
    ):
        connection.execute(
            update(PredictionRun).where(PredictionRun.run_id == run_id).values(**values)
        )


def fail_run(db_url: str, run_id: str, error: BaseException) -> None:
    """Mark the run failed with ``error``; if the database itself is down, say so on ``error``."""
    try:
        update_run(
            db_url, run_id, status="failed", error=str(error)[:2000], finished_at=datetime.now(UTC)
        )
    except Exception as unreachable:  # noqa: BLE001 - reported on the original error
        log.error("could not mark prediction run %s failed: %s", run_id, unreachable)
        error.add_note(
            f"prediction run {run_id} could not be marked failed ({unreachable}); it shows as "
            "'running' until it is rerun. Nothing of its slice was committed."
        )


def list_runs(session: Session, limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Prediction runs, newest first, a page at a time."""
    query = (
        select(PredictionRun)
        .order_by(PredictionRun.started_at.desc(), PredictionRun.run_id)
        .limit(limit)
        .offset(offset)
    )
    return [
        {
            "run_id": r.run_id,
            "model_name": r.model_name,
            "model_version": r.model_version,
            "feature_group": r.feature_group,
            "feature_version": r.feature_version,
            "feature_versions": r.feature_versions,
            "as_of_date": r.as_of_date.isoformat(),
            "status": r.status,
            "row_count": r.row_count,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "error": r.error,
            "warnings": r.warnings or [],
            "drift_breached": r.drift_breached,
            "airflow_run_id": r.airflow_run_id,
            "logical_date": r.logical_date.isoformat() if r.logical_date else None,
        }
        for r in session.scalars(query)
    ]
