"""Pictures of drift and of model quality, as self-contained HTML pages (charts as PNG inside).

``drift_page`` shows one scoring run: PSI per feature against the threshold, and each
feature's histogram in training next to the scored batch. ``metrics_page`` shows a model's
holdout metrics over its versions. ``realized_section`` (``realized_page`` as a page) shows how
its predictions turned out once their labels landed: the realized metric per as-of date beside
each version's holdout figure and training window, and calibration (classifiers) or errors
(regressors). The CLI (`fti monitor report`) writes them to files; the fti pages in the Airflow
UI serve the same HTML.
"""

from __future__ import annotations

import base64
import io
from datetime import date, timedelta
from html import escape
from typing import Any

import matplotlib
import numpy as np
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import ModelVersion, PredictionRun
from fti.errors import ConfigError, FtiError
from fti.monitoring.drift import Thresholds
from fti.monitoring.realized import realized_rows
from fti.monitoring.results import drift_of_run, window_note
from fti.registry.aliases import history
from fti.training.metrics import higher_is_better

TRAINING, SCORED, BREACHED, CALM = "#7f8c8d", "#2e86de", "#c0392b", "#27ae60"
STYLE = (
    "body{font-family:system-ui,sans-serif;margin:1.5rem;max-width:72rem;color:#222}"
    "table{border-collapse:collapse}td,th{padding:.2rem .6rem;border-bottom:1px solid #ddd;"
    "text-align:left}.breached{color:#c0392b;font-weight:bold}img{max-width:100%}"
    ".grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(22rem,1fr));gap:1rem}"
)


def drift_page(session: Session, run_id: str, thresholds: Thresholds) -> str:
    """The drift report of one run; a run (its window of dates pooled) of fewer rows than
    ``thresholds.min_rows`` says it was not judged (its PSI is shown, for information). It says
    which window its drift pooled (``monitor.window_days``)."""
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
            f"<p>Drift not judged, {escape(unjudged)} (monitor.min_rows; monitor.window_days "
            "pools more dates); PSI for information.</p>"
        )
    else:
        verdict = f"<p>Every feature within the PSI threshold {threshold:g}.</p>"
    note = window_note(run.drift_window)
    if note:
        verdict += f"<p>Drift {escape(note)}.</p>"
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


def realized_section(session: Session, model: str, version: int | None = None) -> str:
    """How ``model``'s predictions turned out, as an HTML fragment (no ``<html>``): its
    realized metric per as-of date, one line per version, with the version's holdout figure
    dashed in the same colour and its training window hatched (hollow points fall inside it: not
    out of sample); the reliability curve pooled over the dates shown (classifiers) or the error
    quantiles per date (regressors); the figures per date and version in a table.

    ``version``: the dates that version has realized metrics for, with every other version
    recorded on them (e.g. a shadow-scored challenger); default: every version's dates. Nothing
    recorded: one paragraph saying how to record them. Its headings are ``<h3>``, to sit in a
    page's ``<h2>`` section.
    """
    recorded = realized_rows(session, model)
    if version is not None:
        days = {r["as_of_date"] for r in recorded if r["model_version"] == version}
        recorded = [r for r in recorded if r["as_of_date"] in days]
    if not recorded:
        which = escape(model) + ("" if version is None else f" v{version}")
        return (
            f"<p>No realized metrics recorded for {which} yet: they are computed when the labels "
            "of a date it scored have matured and been published; to record them after a "
            f"backfill, run <code>fti monitor realized --model {escape(model)} --refresh</code>.</p>"
        )
    rows = [r | {"as_of_date": date.fromisoformat(r["as_of_date"])} for r in recorded]
    numbers = sorted({r["model_version"] for r in rows})
    registered = {
        v.version: v
        for v in session.scalars(
            select(ModelVersion).where(
                ModelVersion.name == model, ModelVersion.version.in_(numbers)
            )
        )
    }
    windows = {n: (v.train_start, v.train_end) for n, v in registered.items()}
    colours = {n: matplotlib.colormaps["tab10"](i % 10) for i, n in enumerate(numbers)}
    classifier = any(r["reliability"] is not None for r in rows)
    metric = ", ".join(dict.fromkeys(r["metric"] for r in rows))
    dates = len({r["as_of_date"] for r in rows})
    if classifier:
        pooled = {
            n: _pooled_reliability([r for r in rows if r["model_version"] == n]) for n in numbers
        }
        multiclass = any(registered[n].task == "multiclass" for n in numbers if n in registered)
        second = (
            f"<h3>Reliability, pooled over the {dates} dates shown (bins weighted by rows)</h3>"
            + _img(_reliability_chart(pooled, colours, multiclass))
            + _pooled_table(pooled)
        )
    else:
        second = (
            "<h3>Error (prediction &minus; label) per as-of date: median, 25&ndash;75% and "
            "5&ndash;95% of rows</h3>" + _img(_error_chart(rows, colours, windows))
        )
    return (
        f"<h3>Realized {escape(metric)} per as-of date</h3>"
        "<p>One line per version; dashed: its holdout figure, in the same colour. Hatched: a "
        "version's training window (the as-of dates its fit and holdout rows came from); hollow "
        "points fall inside it, so only filled points are out of sample.</p>"
        + _img(_realized_chart(rows, colours, windows))
        + second
        + _realized_table(rows, windows, classifier)
    )


def realized_page(session: Session, model: str) -> str:
    """``realized_section`` of every version of ``model`` as a page."""
    return _page(f"Realized performance of {model}", realized_section(session, model))


def _inside(row: dict[str, Any], windows: dict[int, tuple[date, date]]) -> bool:
    """Whether the row's as-of date lies in its version's training window."""
    window = windows.get(row["model_version"])
    return window is not None and window[0] <= row["as_of_date"] <= window[1]


def _figure(value: float | None) -> str:
    return "&ndash;" if value is None else f"{value:.4f}"


def _realized_table(
    rows: list[dict[str, Any]], windows: dict[int, tuple[date, date]], classifier: bool
) -> str:
    last = "Brier score" if classifier else "mean |error|"
    body = "".join(
        f"<tr><td>{r['as_of_date']}</td><td>v{r['model_version']}</td>"
        f"<td>{escape(r['alias'] or '')}</td><td>{'yes' if _inside(r, windows) else 'no'}</td>"
        f"<td>{r['rows']}</td><td>{escape(r['metric'])}</td>"
        f"<td>{_figure(r['value']) if r['value'] is not None else escape(r['reason'] or '')}</td>"
        f"<td>{_figure(r['holdout_value'])}</td>"
        f"<td>{_figure(r['brier_score'] if classifier else _mean_absolute(r))}</td></tr>"
        for r in rows
    )
    return (
        "<h3>Per as-of date</h3><table class='realized'><tr><th>as of</th><th>version</th>"
        "<th>alias</th><th>in training window</th><th>rows</th><th>metric</th><th>realized</th>"
        f"<th>holdout</th><th>{last}</th></tr>{body}</table>"
    )


def _mean_absolute(row: dict[str, Any]) -> float | None:
    found = (row["error_distribution"] or {}).get("mean_absolute")
    return None if found is None else float(found)


def _pooled_reliability(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One version's reliability bins summed over its rows' dates: each non-empty bin's rows,
    mean predicted probability and observed rate, weighted by the rows of each date's bin."""
    pooled: dict[tuple[float, float], list[float]] = {}
    for row in rows:
        for b in row["reliability"] or []:
            if b["rows"] and b["mean_predicted"] is not None and b["observed_rate"] is not None:
                total = pooled.setdefault((b["lower"], b["upper"]), [0.0, 0.0, 0.0])
                total[0] += b["rows"]
                total[1] += b["rows"] * b["mean_predicted"]
                total[2] += b["rows"] * b["observed_rate"]
    return [
        {
            "lower": lower,
            "upper": upper,
            "rows": int(count),
            "mean_predicted": predicted / count,
            "observed_rate": observed / count,
        }
        for (lower, upper), (count, predicted, observed) in sorted(pooled.items())
    ]


def _pooled_table(pooled: dict[int, list[dict[str, Any]]]) -> str:
    body = "".join(
        f"<tr><td>v{n}</td><td>{b['lower']:g}&ndash;{b['upper']:g}</td><td>{b['rows']}</td>"
        f"<td>{b['mean_predicted']:.3f}</td><td>{b['observed_rate']:.3f}</td></tr>"
        for n, bins in pooled.items()
        for b in bins
    )
    return (
        "<details><summary>The curve's figures</summary><table class='reliability'><tr>"
        "<th>version</th><th>bin</th><th>rows</th><th>mean predicted</th><th>observed rate</th>"
        f"</tr>{body}</table></details>"
    )


def _direction(metric: str) -> str:
    try:
        return " (higher is better)" if higher_is_better(metric) else " (lower is better)"
    except ConfigError:  # a metric this fti no longer knows: its figures still stand
        return ""


def _date_axis(ax: Any, rows: list[dict[str, Any]]) -> tuple[date, date]:
    """Dates on the x axis, limited to the rows' dates (a training window shades only its part
    inside them); returns the limits."""
    days = [r["as_of_date"] for r in rows]
    pad = max(timedelta(days=1), (max(days) - min(days)) / 40)
    first, last = min(days) - pad, max(days) + pad
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlim(first, last)
    return first, last


def _shade_windows(
    ax: Any,
    colours: dict[int, Any],
    windows: dict[int, tuple[date, date]],
    limits: tuple[date, date],
) -> None:
    """Each version's training window, in its colour, where it overlaps the axis ``limits``."""
    for number, colour in colours.items():
        if number in windows:
            start, end = max(windows[number][0], limits[0]), min(windows[number][1], limits[1])
            if start <= end:
                ax.axvspan(start, end, facecolor=colour, alpha=0.06, linewidth=0)
                ax.axvspan(start, end, facecolor="none", edgecolor=colour, alpha=0.4, hatch="//")


def _realized_chart(
    rows: list[dict[str, Any]], colours: dict[int, Any], windows: dict[int, tuple[date, date]]
) -> Figure:
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    limits = _date_axis(ax, rows)
    for number, colour in colours.items():
        mine = [r for r in rows if r["model_version"] == number]
        days = [r["as_of_date"] for r in mine]
        values = [np.nan if r["value"] is None else r["value"] for r in mine]
        holdout = next(
            (r["holdout_value"] for r in reversed(mine) if r["holdout_value"] is not None), None
        )
        alias = next((r["alias"] for r in reversed(mine) if r["alias"]), None)
        label = f"v{number}" + (f" ({alias})" if alias else "")
        if holdout is not None:
            label += f", holdout {holdout:.4g}"
            ax.axhline(holdout, color=colour, linestyle="--", linewidth=1)
        ax.plot(days, values, color=colour, linewidth=1.2, label=label)
        inside = [_inside(r, windows) for r in mine]
        for hollow in (False, True):
            picked = [(d, v) for d, v, i in zip(days, values, inside, strict=True) if i == hollow]
            if picked:
                ax.scatter(
                    [d for d, _ in picked],
                    [v for _, v in picked],
                    s=22,
                    zorder=3,
                    facecolors="white" if hollow else colour,
                    edgecolors=colour,
                )
    _shade_windows(ax, colours, windows, limits)
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    ax.set_ylabel(", ".join(metrics) + (_direction(metrics[0]) if len(metrics) == 1 else ""))
    ax.set_xlabel("as-of date (hatched: training window; hollow: inside it)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _reliability_chart(
    pooled: dict[int, list[dict[str, Any]]], colours: dict[int, Any], multiclass: bool
) -> Figure:
    fig = Figure(figsize=(4.8, 4.4))
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="calibrated")
    for number, bins in pooled.items():
        ax.plot(
            [b["mean_predicted"] for b in bins],
            [b["observed_rate"] for b in bins],
            marker="o",
            markersize=4,
            color=colours[number],
            label=f"v{number} ({sum(b['rows'] for b in bins)} rows)",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    if multiclass:
        ax.set_xlabel("mean probability of the predicted class")
        ax.set_ylabel("share predicted right")
    else:
        ax.set_xlabel("mean predicted probability")
        ax.set_ylabel("observed rate of the positive class")
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def _error_chart(
    rows: list[dict[str, Any]], colours: dict[int, Any], windows: dict[int, tuple[date, date]]
) -> Figure:
    fig = Figure(figsize=(8, 3.8))
    ax = fig.subplots()
    limits = _date_axis(ax, rows)
    ax.axhline(0, color="#333", linewidth=0.8)
    for number, colour in colours.items():
        mine = [r for r in rows if r["model_version"] == number]
        days = [r["as_of_date"] for r in mine]
        ax.fill_between(
            days, _quantile(mine, "0.05"), _quantile(mine, "0.95"), color=colour, alpha=0.12
        )
        ax.fill_between(
            days, _quantile(mine, "0.25"), _quantile(mine, "0.75"), color=colour, alpha=0.3
        )
        ax.plot(days, _quantile(mine, "0.5"), color=colour, marker="o", markersize=3)
        ax.plot([], [], color=colour, linewidth=6, alpha=0.4, label=f"v{number}")
    _shade_windows(ax, colours, windows, limits)
    ax.set_ylabel("prediction \u2212 label")
    ax.set_xlabel("as-of date (hatched: training window)")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _quantile(rows: list[dict[str, Any]], q: str) -> list[float]:
    """Each row's error quantile ``q`` (a key of ``error_distribution``'s quantiles), NaN when
    its date had no rows."""
    return [
        float((r["error_distribution"] or {}).get("quantiles", {}).get(q, np.nan)) for r in rows
    ]


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
