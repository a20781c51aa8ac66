"""View models of a prediction run's drift report and of a model's realized performance."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from fti.pages import charts
from fti.pages.format import Direction, direction
from fti.pages.svg import Chart
from fti.pages.views.catalog import RunRow, run_row
from fti.pages.views.common import Urls

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from fti.monitoring.drift import Thresholds


@dataclass(frozen=True)
class DriftFeature:
    feature: str
    kind: str
    psi: float
    p_value: float | None
    breached: bool
    histogram: Chart


@dataclass(frozen=True)
class DriftPage:
    run: RunRow
    model_name: str
    model_version: int | None
    threshold: float
    verdict: str  # breached | unjudged | within | none
    unjudged: str | None
    window: str | None  # what its drift pooled (monitor.window_days); None before migration 0013
    breached: list[str]
    features: list[DriftFeature]
    psi_chart: Chart | None


def drift(session: Session, run_id: str, thresholds: Thresholds, urls: Urls) -> DriftPage:
    """Raises FtiError (404) for a run fti did not record."""
    from fti.db.tables import PredictionRun
    from fti.errors import FtiError
    from fti.monitoring.results import drift_of_run, window_note

    run = session.get(PredictionRun, run_id)
    if run is None:
        raise FtiError(f"no prediction run {run_id!r}; `fti predictions runs` lists them")
    results = drift_of_run(session, run_id)
    breached = [r["feature"] for r in results if r["breached"]]
    unjudged = thresholds.unjudged(sum(results[0]["observed"])) if results else None
    verdict = (
        "none" if not results else "breached" if breached else "unjudged" if unjudged else "within"
    )
    title = f"PSI per feature of {run.model_name} v{run.model_version} on {run.as_of_date}"
    return DriftPage(
        run=run_row(run, urls),
        model_name=run.model_name,
        model_version=run.model_version,
        threshold=thresholds.psi,
        verdict=verdict,
        unjudged=unjudged,
        window=window_note(run.drift_window),
        breached=breached,
        features=[
            DriftFeature(
                r["feature"], r["kind"], r["psi"], r["p_value"], r["breached"], charts.histogram(r)
            )
            for r in results
        ],
        psi_chart=charts.psi_bars(results, thresholds.psi, title) if results else None,
    )


@dataclass(frozen=True)
class RealizedRow:
    as_of_date: date
    version: int
    href: str
    alias: str | None
    inside: bool
    rows: int
    metric: str
    value: float | None
    holdout: float | None
    last: float | None  # Brier score (classifiers) or mean |error| (regressors)
    reason: str | None = None  # why ``value`` is None (the metric is undefined on the rows)


@dataclass(frozen=True)
class ReliabilityBin:
    version: int
    lower: float
    upper: float
    rows: int
    mean_predicted: float
    observed_rate: float


@dataclass(frozen=True)
class Realized:
    """How a model's predictions turned out once their labels landed (empty: nothing yet)."""

    model: str
    version: int | None
    metric: str
    direction: Direction | None
    classifier: bool
    dates: int
    charts: list[Chart] = field(default_factory=list)
    rows: list[RealizedRow] = field(default_factory=list)
    bins: list[ReliabilityBin] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.rows


def realized(session: Session, model: str, urls: Urls, version: int | None = None) -> Realized:
    """``model``'s realized metric per as-of date and version, with the version's holdout
    figure and training window; pooled reliability (classifiers) or error quantiles
    (regressors). ``version``: the dates it has figures for, with every other version recorded
    on them (a shadow-scored challenger); default: every version's dates."""
    from sqlalchemy import select

    from fti.db.tables import ModelVersion
    from fti.monitoring.realized import realized_rows
    from fti.monitoring.report import _pooled_reliability

    recorded = realized_rows(session, model)
    if version is not None:
        days = {r["as_of_date"] for r in recorded if r["model_version"] == version}
        recorded = [r for r in recorded if r["as_of_date"] in days]
    if not recorded:
        return Realized(model, version, "", None, False, 0)
    numbers = sorted({r["model_version"] for r in recorded})
    registered = {
        v.version: v
        for v in session.scalars(
            select(ModelVersion).where(
                ModelVersion.name == model, ModelVersion.version.in_(numbers)
            )
        )
    }
    windows = {n: (v.train_start, v.train_end) for n, v in registered.items()}
    rows = []
    for r in recorded:
        day = date.fromisoformat(r["as_of_date"])
        window = windows.get(r["model_version"])
        errors = r["error_distribution"] or {}
        rows.append(
            r
            | {
                "as_of_date": day,
                "inside": window is not None and window[0] <= day <= window[1],
                "quantiles": {k: float(v) for k, v in (errors.get("quantiles") or {}).items()},
            }
        )
    classifier = any(r["reliability"] is not None for r in rows)
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    metric = ", ".join(metrics)
    found = direction(metrics[0]) if len(metrics) == 1 else None
    ylabel = metric + (f" ({found.words})" if found else "")
    dates = len({r["as_of_date"] for r in rows})
    classifier_width = charts.SIDE if classifier else charts.WIDTH  # beside reliability
    shown = [
        charts.realized_over_dates(
            rows,
            numbers,
            windows,
            ylabel,
            f"Realized {metric} of {model} per as-of date",
            classifier_width,
        )
    ]
    bins: list[ReliabilityBin] = []
    if classifier:
        pooled = {
            n: _pooled_reliability([r for r in rows if r["model_version"] == n]) for n in numbers
        }
        multiclass = any(registered[n].task == "multiclass" for n in numbers if n in registered)
        shown.append(
            charts.reliability(
                pooled, multiclass, f"Reliability of {model}, pooled over {dates} dates"
            )
        )
        bins = [
            ReliabilityBin(
                n, b["lower"], b["upper"], b["rows"], b["mean_predicted"], b["observed_rate"]
            )
            for n, bs in pooled.items()
            for b in bs
        ]
    else:
        shown.append(
            charts.errors_over_dates(rows, numbers, windows, f"Error of {model} per as-of date")
        )
    return Realized(
        model=model,
        version=version,
        metric=metric,
        direction=found,
        classifier=classifier,
        dates=dates,
        charts=shown,
        rows=[
            RealizedRow(
                as_of_date=r["as_of_date"],
                version=r["model_version"],
                href=urls.model_version(model, r["model_version"]),
                alias=r["alias"],
                inside=r["inside"],
                rows=r["rows"],
                metric=r["metric"],
                value=r["value"],
                holdout=r["holdout_value"],
                last=r["brier_score"] if classifier else _mean_absolute(r),
                reason=r["reason"],
            )
            for r in rows
        ],
        bins=bins,
    )


def _mean_absolute(row: dict[str, Any]) -> float | None:
    found = (row["error_distribution"] or {}).get("mean_absolute")
    return None if found is None else float(found)
