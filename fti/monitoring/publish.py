"""Write the monitoring pages to files (``fti monitor report``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import PredictionRun
from fti.errors import FtiError
from fti.monitoring.drift import Thresholds
from fti.monitoring.report import drift_page, metrics_page, realized_page
from fti.params import load_params
from fti.settings import Settings, file_safe


def write_reports(settings: Settings, folder: Path, run_id: str | None = None) -> dict[str, Any]:
    """The drift page of ``run_id`` (default: the newest run), its model's metrics page and its
    model's realized performance page; returns the files' paths."""
    thresholds = Thresholds.from_params(load_params(settings.params_file, "monitor"))
    with session_scope(settings.db_url) as session:
        if run_id is None:
            run_id = session.scalar(
                select(PredictionRun.run_id).order_by(PredictionRun.started_at.desc()).limit(1)
            )
            if run_id is None:
                raise FtiError("there are no prediction runs yet; run `fti infer` first")
        run = session.get(PredictionRun, run_id)
        if run is None:
            raise FtiError(f"no prediction run {run_id!r}; `fti predictions runs` lists them")
        model = run.model_name
        drift = drift_page(session, run_id, thresholds)
        metrics = metrics_page(session, model)
        realized = realized_page(session, model)
    folder.mkdir(parents=True, exist_ok=True)
    drift_file = folder / f"drift-{file_safe(run_id)}.html"
    metrics_file = folder / f"metrics-{file_safe(model)}.html"
    realized_file = folder / f"realized-{file_safe(model)}.html"
    drift_file.write_text(drift)
    metrics_file.write_text(metrics)
    realized_file.write_text(realized)
    return {
        "run_id": run_id,
        "drift_report": str(drift_file),
        "metrics_report": str(metrics_file),
        "realized_report": str(realized_file),
    }
