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
from fti.monitoring.realized._pool import LabelReader, pool_rows

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
    """A recorded row as a dict of ``COLUMNS``, plus ``reason``: why ``value`` is None (None
    when it is not)."""
    found = {name: getattr(row, name) for name in COLUMNS}
    found["as_of_date"] = row.as_of_date.isoformat()
    found["computed_at"] = row.computed_at.isoformat()
    found["reason"] = reason_of(found)
    return found


def reason_of(row: dict[str, Any]) -> str | None:
    """Why a recorded row's metric is None: the reason recorded with it (rows recorded before
    it was, say what they can)."""
    if row["value"] is not None:
        return None
    recorded = (row["metrics"] or {}).get("reason")
    if recorded:
        return str(recorded)
    if not row["rows"]:
        return "no rows (no scored entity has a label)"
    return f"{row['metric']} is not defined on these {row['rows']} rows"


def compare_realized(
    session: Session, model: str, a: int, b: int, labels: LabelReader
) -> list[dict[str, Any]]:
    """Versions ``a`` and ``b`` of ``model`` on the as-of dates both have realized metrics
    for (the days a champion and a shadow-scored challenger share), oldest first, then one row
    over all of those dates (``as_of_date`` "first..last"): each version's metric of the
    dates' rows pooled (``labels`` reads them), not an average of the dates' values.
    ``dates``: how many dates a row covers; ``reason``: why a value is None."""
    by_day: dict[str, dict[int, dict[str, Any]]] = {}
    for row in realized_rows(session, model, [a, b]):
        by_day.setdefault(row["as_of_date"], {})[row["model_version"]] = row
    shared = {day: pair for day, pair in sorted(by_day.items()) if a in pair and b in pair}
    compared = [
        _compared(
            day,
            1,
            pair[a]["metric"],
            [(v, (pair[v]["value"], pair[v]["rows"], pair[v]["reason"])) for v in (a, b)],
        )
        for day, pair in shared.items()
    ]
    if shared:
        pools = pool_rows(session, model, [r for p in shared.values() for r in p.values()], labels)
        figures = []
        for version in (a, b):
            pool = pools.get(version)
            value, reason = pool.value() if pool else (None, "its artifact could not be loaded")
            figures.append((version, (value, pool.rows if pool else 0, reason)))
        days = list(shared)
        compared.append(
            _compared(f"{days[0]}..{days[-1]}", len(days), compared[0]["metric"], figures)
        )
    return compared


def _compared(
    day: str,
    dates: int,
    metric: str,
    figures: list[tuple[int, tuple[float | None, int, str | None]]],
) -> dict[str, Any]:
    (a, (left, rows_a, why_a)), (b, (right, rows_b, why_b)) = figures
    reasons = [f"v{v}: {why}" for v, why in ((a, why_a), (b, why_b)) if why]
    return {
        "as_of_date": day,
        "dates": dates,
        "metric": metric,
        f"v{a}": left,
        f"v{b}": right,
        "delta": None if left is None or right is None else right - left,
        f"rows_v{a}": rows_a,
        f"rows_v{b}": rows_b,
        "reason": "; ".join(reasons) or None,
    }


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
