"""The optional request log (``FTI_SERVE_LOG=true``): served predictions appended to
``served_predictions`` in batches, off the request path.

A request only puts its rows on a bounded queue (``add`` never blocks: when the queue is full
the rows are dropped and counted in ``fti_serve_log_dropped_total``). One writer thread takes
what has queued up, at most ``BATCH_ROWS`` rows or ``FLUSH_SECONDS`` apart, and inserts them in
one transaction (one ``executemany``). Stopping the service writes what is still queued.
"""

from __future__ import annotations

import logging
import queue
import threading
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import insert

from fti.db.engine import session_scope
from fti.db.tables import ServedPrediction
from fti.serve.metrics import Metrics
from fti.serve.models import Served

log = logging.getLogger(__name__)

QUEUE_ROWS = 100_000
BATCH_ROWS = 5_000
FLUSH_SECONDS = 1.0
SCORES = ("prediction", "probability", "value", "predicted_class", "class_probabilities")


class RequestLog:
    def __init__(self, db_url: str, metrics: Metrics) -> None:
        self.db_url = db_url
        self.metrics = metrics
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue(QUEUE_ROWS)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, served: Served, request_id: str, predictions: list[dict[str, Any]]) -> None:
        """Queue the scored predictions of one request (not_found and refused ones are not
        predictions and are not logged)."""
        now = datetime.now(UTC)
        spine = served.groups[0].group
        for answer in predictions:
            if "status" in answer:
                continue
            row = {
                "request_id": request_id,
                "served_at": now,
                "model_name": served.name,
                "model_version": served.version,
                "entity_id": answer["entity"],
                **{name: answer.get(name) for name in SCORES},
                "feature_group": spine,
                "feature_version": answer["feature_versions"][spine],
                "feature_versions": answer["feature_versions"],
                "feature_date": date.fromisoformat(answer["feature_date"]),
                "stale": answer["stale"],
            }
            try:
                self._queue.put_nowait(row)
            except queue.Full:
                self.metrics.log_dropped.inc()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._write, name="fti-serve-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def flush(self) -> int:
        """Write what is queued now; returns the number of rows written."""
        rows: list[dict[str, Any]] = []
        while len(rows) < BATCH_ROWS:
            try:
                rows.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if rows:
            with session_scope(self.db_url, write=True) as session:
                session.execute(insert(ServedPrediction), rows)
        return len(rows)

    def _write(self) -> None:
        while True:
            stopping = self._stop.wait(FLUSH_SECONDS)
            try:
                while self.flush() == BATCH_ROWS:
                    pass
            except Exception:  # noqa: BLE001 - the database went away: keep serving, log it
                log.exception("writing the request log failed; those rows are lost")
            if stopping:
                return
