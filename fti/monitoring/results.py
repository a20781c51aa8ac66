"""Drift results of scoring runs in fti's database."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fti.db.engine import session_scope
from fti.db.tables import DriftResult

COLUMNS = ["feature", "kind", "psi", "p_value", "breached", "bins", "expected", "observed"]


def record_drift(db_url: str, run_id: str, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Store a run's drift results (a retry replaces them); returns the breached ones."""
    with session_scope(db_url, write=True) as session:
        session.execute(delete(DriftResult).where(DriftResult.run_id == run_id))
        session.add_all(DriftResult(run_id=run_id, **{k: r[k] for k in COLUMNS}) for r in results)
    return [r for r in results if r["breached"]]


def drift_of_run(session: Session, run_id: str) -> list[dict[str, Any]]:
    query = select(DriftResult).where(DriftResult.run_id == run_id).order_by(DriftResult.id)
    return [{k: getattr(r, k) for k in COLUMNS} for r in session.scalars(query)]
