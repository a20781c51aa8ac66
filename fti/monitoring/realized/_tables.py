"""The recorded rows: ``realized_metrics`` rows read back as dicts (one version's, or two
versions' side by side), and the shadow slices a shadow-scored version writes beside the
served predictions (``shadow_predictions``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date
from typing import Any

import pyarrow as pa
from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from fti.db.engine import get_engine
from fti.db.tables import RealizedMetric, ShadowPrediction
from fti.errors import PredictionWriteError
from fti.inference.write import JSON_COLUMNS, Slice

COLUMNS = [
    "model_name",
    "model_version",
    "alias",
    "as_of_date",
    "label_group",
    "label_version",
    "prediction_run_id",
    "rows_scored",
    "rows",
    "metric",
    "value",
    "holdout_value",
    "metrics",
    "brier_score",
    "reliability",
    "error_distribution",
    "computed_at",
]


# ---- public API ---------------------------------------------------------------------------------
def realized_rows(
    session: Session,
    model: str,
    versions: Iterable[int] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> list[dict[str, Any]]:
    """The recorded realized metrics of ``model``, by as-of date then version."""
    query = (
        select(RealizedMetric)
        .where(RealizedMetric.model_name == model)
        .order_by(RealizedMetric.as_of_date, RealizedMetric.model_version)
    )
    if versions is not None:
        query = query.where(RealizedMetric.model_version.in_(list(versions)))
    if start is not None:
        query = query.where(RealizedMetric.as_of_date >= start)
    if end is not None:
        query = query.where(RealizedMetric.as_of_date <= end)
    return [as_dict(row) for row in session.scalars(query)]


def as_dict(row: RealizedMetric) -> dict[str, Any]:
    found = {name: getattr(row, name) for name in COLUMNS}
    found["as_of_date"] = row.as_of_date.isoformat()
    found["computed_at"] = row.computed_at.isoformat()
    return found


def compare_realized(session: Session, model: str, a: int, b: int) -> list[dict[str, Any]]:
    """Versions ``a`` and ``b`` of ``model`` on the as-of dates both have realized metrics
    for (the days a champion and a shadow-scored challenger share), oldest first."""
    by_day: dict[str, dict[int, dict[str, Any]]] = {}
    for row in realized_rows(session, model, [a, b]):
        by_day.setdefault(row["as_of_date"], {})[row["model_version"]] = row
    compared = []
    for day, pair in sorted(by_day.items()):
        if a in pair and b in pair:
            left, right = pair[a]["value"], pair[b]["value"]
            compared.append(
                {
                    "as_of_date": day,
                    "metric": pair[a]["metric"],
                    f"v{a}": left,
                    f"v{b}": right,
                    "delta": None if left is None or right is None else right - left,
                    f"rows_v{a}": pair[a]["rows"],
                    f"rows_v{b}": pair[b]["rows"],
                }
            )
    return compared


# ---- shadow scores -----------------------------------------------------------------------------
def write_shadow_slice(
    db_url: str, piece: Slice, alias: str, scores: Iterable[pa.RecordBatch]
) -> int:
    """Replace the shadow slice (model, version, as-of date) of ``piece`` with ``scores``
    (batches of ``fti.inference.write.SCORE_SCHEMA``), in one transaction; returns its rows.

    Raises:
        PredictionWriteError: the write failed and was rolled back; the previous shadow slice
            is unchanged.
    """
    rows = 0
    try:
        with (
            get_engine(db_url).connect().execution_options(sqlite_begin="IMMEDIATE") as connection,
            connection.begin(),
        ):
            connection.execute(
                delete(ShadowPrediction).where(
                    ShadowPrediction.model_name == piece.model_name,
                    ShadowPrediction.model_version == piece.model_version,
                    ShadowPrediction.as_of_date == piece.as_of_date,
                )
            )
            lineage = piece.lineage() | {"alias": alias}
            for batch in scores:
                records = [lineage | row for row in batch.to_pylist()]
                for record in records:
                    for name in JSON_COLUMNS:
                        text = record.get(name)
                        record[name] = None if text is None else json.loads(text)
                if records:
                    connection.execute(insert(ShadowPrediction), records)
                rows += len(records)
    except Exception as exc:
        raise PredictionWriteError(
            f"writing shadow predictions of {piece.model_name} v{piece.model_version} for "
            f"{piece.as_of_date} failed and was rolled back; the previous shadow slice is "
            f"unchanged. Fix the cause and rerun the task. Cause: {type(exc).__name__}: {exc}"
        ) from exc
    return rows
