"""Pictures of drift and of model quality, as self-contained HTML pages (charts as PNG inside).

``drift_page`` shows one scoring run: PSI per feature against the threshold, and each
feature's histogram in training next to the scored batch. ``metrics_page`` shows a model's
holdout metrics over its versions. The CLI (`fti monitor report`) writes them to files; the
fti pages in the Airflow UI serve the same HTML.
"""

from __future__ import annotations

import base64
import io
from html import escape
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import ModelVersion, PredictionRun
from fti.errors import FtiError
from fti.monitoring.drift import Thresholds
from fti.monitoring.results import drift_of_run
from fti.registry.aliases import history

TRAINING, SCORED, BREACHED, CALM = "#7f8c8d", "#2e86de", "#c0392b", "#27ae60"
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:72rem;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;"
    "text-align:left}.breached{color:#c0392b;font-weight:bold}img{max-width:100%}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}"
)


def drift_page(session: Session, run_id: str, thresholds: Thresholds) -> str:
    """The drift report of one run; a run of fewer rows than ``thresholds.min_rows`` says it
    was not judged (its PSI is shown, for information)."""
    threshold = thresholds.psi
    run = session.get(PredictionRun, run_id)
    if run is None:
        raise FtiError(f"no prediction run {run_id!r}; `fti predictions runs` lists them")
    results = drift_of_run(session, run_id)
    title = (
        f"Drift of {run.model_name} v{run.model_version} on {run.as_of_date} "
        f"({run.feature_group} v{run.feature_version}, {run.row_count} rows)"
    )
    if not results:
        body = (
            "<p>No drift results: the run failed before scoring, or its model has no reference.</p>"
        )
        return _page(title, body)
    breached = [r["feature"] for r in results if r["breached"]]
    unjudged = thresholds.unjudged(sum(results[0]["observed"]))
    if breached:
        verdict = f"<p class='breached'>Over the PSI threshold {threshold:g}: {escape(', '.join(breached))}</p>"
    elif unjudged:
        verdict = (
            f"<p>Drift not judged, {escape(unjudged)} (monitor.min_rows); PSI for information.</p>"
        )
    else:
        verdict = f"<p>Every feature within the PSI threshold {threshold:g}.</p>"
    rows = "".join(
        f"<tr><td>{escape(r['feature'])}</td><td>{r['kind']}</td><td>{r['psi']:.3f}</td>"
        f"<td>{_p_value(r['p_value'])}</td>"
        f"<td class='{'breached' if r['breached'] else ''}'>{'yes' if r['breached'] else 'no'}</td></tr>"
        for r in results
    )
    histograms = "".join(_img(_histogram(r)) for r in results)
    body = (
        verdict
        + _img(_psi_bars(results, threshold))
        + "<table><tr><th>feature</th><th>kind</th><th>PSI</th><th>chi-square p</th>"
        + f"<th>breached</th></tr>{rows}</table>"
        + f"<h2>Training vs scored, share per bin</h2><div class='grid'>{histograms}</div>"
    )
    return _page(title, body)


def metrics_page(session: Session, model: str) -> str:
    versions = list(
        session.scalars(
            select(ModelVersion).where(ModelVersion.name == model).order_by(ModelVersion.version)
        )
    )
    if not versions:
        raise FtiError(f"model {model!r} has no versions; `fti models list` lists them")
    champions = {e.to_version for e in history(session, model, "champion")}
    names = sorted(
        {k for v in versions for k, x in v.metrics.items() if isinstance(x, float)}
        - {"rows", "label_mean", "positive_rate"}
    )
    rows = "".join(
        f"<tr><td>v{v.version}{' (champion once)' if v.version in champions else ''}</td>"
        + "".join(f"<td>{v.metrics.get(n, float('nan')):.4f}</td>" for n in names)
        + f"<td>{v.feature_group} v{v.feature_version}</td><td>{v.created_at:%Y-%m-%d %H:%M}</td></tr>"
        for v in versions
    )
    body = (
        _img(_metrics_chart(versions, names, champions))
        + "<table><tr><th>version</th>"
        + "".join(f"<th>{escape(n)}</th>" for n in names)
        + f"<th>features</th><th>created</th></tr>{rows}</table>"
    )
    return _page(
        f"Holdout metrics of {model} over its versions (its metric: {versions[-1].metric})", body
    )


def _p_value(value: float | None) -> str:
    return "" if value is None else f"{value:.2g}"


def _psi_bars(results: list[dict[str, Any]], threshold: float) -> Figure:
    fig = Figure(figsize=(8, 0.35 * len(results) + 1.2))
    ax = fig.subplots()
    names = [r["feature"] for r in results]
    ax.barh(
        names,
        [r["psi"] for r in results],
        color=[BREACHED if r["breached"] else CALM for r in results],
    )
    ax.axvline(
        threshold, color="#333", linestyle="--", linewidth=1, label=f"threshold {threshold:g}"
    )
    ax.invert_yaxis()
    ax.set_xlabel("population stability index (PSI)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def _histogram(result: dict[str, Any]) -> Figure:
    expected = np.asarray(result["expected"], dtype=float)
    observed = np.asarray(result["observed"], dtype=float)
    shares = [expected / max(expected.sum(), 1), observed / max(observed.sum(), 1)]
    fig = Figure(figsize=(5, 3))
    ax = fig.subplots()
    places = np.arange(len(result["bins"]))
    ax.bar(places - 0.2, shares[0], width=0.4, color=TRAINING, label="training")
    ax.bar(places + 0.2, shares[1], width=0.4, color=SCORED, label="scored")
    ax.set_xticks(places, result["bins"], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("share of rows")
    colour = BREACHED if result["breached"] else "#222"
    ax.set_title(f"{result['feature']}: PSI {result['psi']:.3f}", color=colour, fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _metrics_chart(versions: list[ModelVersion], names: list[str], champions: set[int]) -> Figure:
    fig = Figure(figsize=(8, 3.5))
    ax = fig.subplots()
    numbers = [v.version for v in versions]
    for name in names:
        ax.plot(numbers, [v.metrics.get(name, np.nan) for v in versions], marker="o", label=name)
    for v in versions:
        if v.version in champions:
            ax.axvline(v.version, color=CALM, alpha=0.25, linewidth=6)
    ax.set_xlabel("model version (green: was champion)")
    ax.set_xticks(numbers)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _img(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96)
    return f"<img alt='chart' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )
