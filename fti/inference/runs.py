"""Listing prediction runs."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import PredictionRun


def list_runs(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    query = select(PredictionRun).order_by(PredictionRun.started_at.desc()).limit(limit)
    return [
        {
            "run_id": r.run_id,
            "model_name": r.model_name,
            "model_version": r.model_version,
            "feature_group": r.feature_group,
            "feature_version": r.feature_version,
            "as_of_date": r.as_of_date.isoformat(),
            "status": r.status,
            "row_count": r.row_count,
            "started_at": r.started_at.isoformat(),
            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
            "error": r.error,
            "airflow_run_id": r.airflow_run_id,
            "logical_date": r.logical_date.isoformat() if r.logical_date else None,
        }
        for r in session.scalars(query)
    ]
