"""Drift results of scoring runs in fti's database, and the windows of dates they pool."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from fti.db.engine import session_scope
from fti.db.tables import DriftResult, PredictionRun
from fti.monitoring.drift import PREDICTION, DriftCounter

KIND_PREDICTION = "prediction"  # drift_results.kind of the prediction's row (else "feature")
COLUMNS = ["feature", "kind", "psi", "p_value", "breached", "bins", "expected", "observed"]


def record_drift(
    db_url: str, run_id: str, results: list[dict[str, Any]], own: dict[str, Any]
) -> list[dict[str, Any]]:
    """Store a run's drift results (a retry replaces them), with ``own``, the run's own counts
    (``DriftCounter.counts()`` before its window was pooled); returns the breached ones."""
    with session_scope(db_url, write=True) as session:
        session.execute(delete(DriftResult).where(DriftResult.run_id == run_id))
        session.add_all(
            DriftResult(
                run_id=run_id,
                run_observed=own[PREDICTION]
                if r["kind"] == KIND_PREDICTION
                else own["features"][r["feature"]],
                **{k: r[k] for k in COLUMNS},
            )
            for r in results
        )
    return [r for r in results if r["breached"]]


def drift_of_run(session: Session, run_id: str) -> list[dict[str, Any]]:
    query = select(DriftResult).where(DriftResult.run_id == run_id).order_by(DriftResult.id)
    return [{k: getattr(r, k) for k in COLUMNS} for r in session.scalars(query)]


def pool_window(
    db_url: str, counter: DriftCounter, model: str, version: int, as_of: date, days: int
) -> dict[str, Any]:
    """Add to ``counter`` (a run of ``model`` ``version`` scoring ``as_of``) the own counts of
    the ``days`` - 1 as-of dates before it whose served slice ``version`` scored: for each, the
    newest succeeded run of the date, when it is of ``version`` (the same reference bins; a date
    scored by another version, or not at all, is left out). Returns the window, what
    ``prediction_runs.drift_window`` records: ``{"days": days, "dates": [...], "rows": n}``."""
    pooled: list[date] = []
    if days > 1:
        with session_scope(db_url) as session:
            newest: dict[date, PredictionRun] = {}
            for run in session.scalars(
                select(PredictionRun)
                .where(
                    PredictionRun.model_name == model,
                    PredictionRun.status == "succeeded",
                    PredictionRun.as_of_date >= as_of - timedelta(days=days - 1),
                    PredictionRun.as_of_date < as_of,
                )
                .order_by(PredictionRun.as_of_date, PredictionRun.finished_at)
            ):
                newest[run.as_of_date] = run
            for day, run in sorted(newest.items()):
                counts = (
                    _own_counts(session, run.run_id, counter)
                    if run.model_version == version
                    else None
                )
                if counts is not None:
                    counter.merge(counts)
                    pooled.append(day)
    return {"days": days, "dates": [d.isoformat() for d in [*pooled, as_of]], "rows": counter.rows}


def _own_counts(session: Session, run_id: str, counter: DriftCounter) -> dict[str, Any] | None:
    """A recorded run's own counts in ``DriftCounter.counts()``'s form (None: it has no drift
    results for every bin ``counter`` counts)."""
    recorded = session.scalars(select(DriftResult).where(DriftResult.run_id == run_id)).all()
    own = {r.id: r.run_observed if r.run_observed is not None else r.observed for r in recorded}
    features = {r.feature: own[r.id] for r in recorded if r.kind != KIND_PREDICTION}
    prediction = next((own[r.id] for r in recorded if r.kind == KIND_PREDICTION), None)
    if not features.keys() >= counter.features.keys() or (
        counter.prediction is not None and prediction is None
    ):
        return None
    counts = next(iter(own.values()), None)
    if counts is None:
        return None
    return {"rows": sum(counts), "features": features, PREDICTION: prediction}


def window_note(window: dict[str, Any] | None) -> str | None:
    """What a run's drift was judged on, one line (None: recorded before windows, 0013)."""
    if not window:
        return None
    dates, days, rows = window["dates"], window["days"], window["rows"]
    if days == 1:
        return f"judged on the run's own {rows} rows (monitor.window_days: 1)"
    span = dates[0] if len(dates) == 1 else f"{dates[0]}..{dates[-1]}"
    left = days - len(dates)
    unscored = (
        f"; {left} date(s) of the window left out, not scored by this version" if left else ""
    )
    return (
        f"judged on {rows} rows of {len(dates)} as-of date(s) pooled, {span} "
        f"(monitor.window_days: {days}{unscored})"
    )
