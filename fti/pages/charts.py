"""The charts of the fti pages, drawn from plain data (the view models' figures) as themed SVG.

Each function takes what a view model holds (dates, numbers, names) and returns a
:class:`fti.pages.svg.Chart`; none reads the database. Dates on an x axis are real dates with
matplotlib's concise labels (``Apr``, ``05``, ``2026``), so they are never cut or rotated.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from fti.pages.svg import BAD, BG, FG, GOOD, GRID, REFERENCE, SERIES, Chart, themed, to_chart

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

WIDTH = 12.0  # inches: 1152 px at the SVG's natural size, about the page's content width
SIDE = 8.0  # a chart beside another (two thirds of the width)


def _figure(height: float, width: float = WIDTH, **grid: Any) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    with themed():
        fig = Figure(figsize=(width, height), layout="constrained")
        return fig, fig.subplots(**grid)


def _date_axis(ax: Axes, first: date, last: date) -> None:
    """Concise date labels between ``first`` and ``last`` (a day's margin on each side)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    locator = AutoDateLocator(minticks=3, maxticks=9)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator, show_offset=True))
    pad = max(timedelta(days=1), (last - first) / 40)
    ax.set_xlim(first - pad, last + pad)  # type: ignore[arg-type]


def colour_of(n: int) -> str:
    """The n-th series colour (a placeholder the stylesheet themes)."""
    return SERIES[n % len(SERIES)]


def metrics_over_versions(
    versions: Sequence[int],
    metrics: Mapping[str, Sequence[float | None]],
    directions: Mapping[str, str],
    champions: set[int],
    title: str,
) -> Chart:
    """One small chart per metric (their scales differ): its value per version, the versions
    that were ever champion marked, the metric's direction in its title."""
    names = list(metrics) or ["(none)"]
    columns = min(len(names), 3)
    rows = math.ceil(len(names) / columns)
    fig, axes = _figure(2.3 * rows, squeeze=False, nrows=rows, ncols=columns)
    with themed():
        for n, ax in enumerate(axes.flat):
            if n >= len(names) or not metrics:
                ax.set_visible(False)
                continue
            name = names[n]
            values = [math.nan if v is None else v for v in metrics[name]]
            for version in versions:
                if version in champions:
                    ax.axvspan(version - 0.4, version + 0.4, color=GOOD, alpha=0.15, linewidth=0)
            ax.plot(versions, values, marker="o", color=colour_of(n), linewidth=1.5)
            hint = directions.get(name)
            ax.set_title(name + (f"  ({hint})" if hint else ""), loc="left")
            ax.set_xticks(list(versions), [f"v{v}" for v in versions])
            ax.margins(x=0.08, y=0.15)
        axes.flat[0].set_xlabel("model version (shaded: was champion)")
    return to_chart(fig, title)


def realized_over_dates(
    rows: Sequence[Mapping[str, Any]],
    versions: Sequence[int],
    windows: Mapping[int, tuple[date, date]],
    ylabel: str,
    title: str,
    width: float = SIDE,
) -> Chart:
    """The realized metric per as-of date, one line per version with its holdout figure dashed
    in the same colour; its training window hatched and the points inside it hollow."""
    fig, ax = _figure(3.6, width=width)
    days = [r["as_of_date"] for r in rows]
    with themed():
        _date_axis(ax, min(days), max(days))
        for n, version in enumerate(versions):
            colour = colour_of(n)
            mine = [r for r in rows if r["model_version"] == version]
            values = [math.nan if r["value"] is None else r["value"] for r in mine]
            holdout = next(
                (r["holdout_value"] for r in reversed(mine) if r["holdout_value"] is not None), None
            )
            alias = next((r["alias"] for r in reversed(mine) if r["alias"]), None)
            label = f"v{version}" + (f" ({alias})" if alias else "")
            if holdout is not None:
                ax.axhline(holdout, color=colour, linestyle="--", linewidth=1)
                label += f", holdout {holdout:.4g}"
            ax.plot(
                [r["as_of_date"] for r in mine], values, color=colour, linewidth=1.4, label=label
            )
            for hollow in (False, True):
                picked = [
                    (r["as_of_date"], v)
                    for r, v in zip(mine, values, strict=True)
                    if r["inside"] == hollow
                ]
                if picked:
                    ax.scatter(
                        [d for d, _ in picked],
                        [v for _, v in picked],
                        s=22,
                        zorder=3,
                        facecolors=BG if hollow else colour,
                        edgecolors=colour,
                    )
            _shade(ax, colour, windows.get(version), min(days), max(days))
        ax.set_ylabel(ylabel)
        ax.set_xlabel("as-of date (hatched: training window; hollow points: inside it)")
        ax.legend(loc="best")
    return to_chart(fig, title)


def _shade(
    ax: Axes, colour: str, window: tuple[date, date] | None, first: date, last: date
) -> None:
    if window is None:
        return
    start, end = max(window[0], first), min(window[1], last)
    if start <= end:
        span: Any = (start, end)  # matplotlib takes dates where its stubs say float
        ax.axvspan(*span, facecolor=colour, alpha=0.07, linewidth=0)
        ax.axvspan(*span, facecolor="none", edgecolor=colour, alpha=0.35, hatch="//", linewidth=0)


def reliability(
    pooled: Mapping[int, Sequence[Mapping[str, Any]]], multiclass: bool, title: str
) -> Chart:
    """Observed rate against mean predicted probability per bin, a line per version."""
    fig, ax = _figure(3.6, width=4.4)
    with themed():
        ax.plot([0, 1], [0, 1], color=REFERENCE, linestyle="--", linewidth=1, label="calibrated")
        for n, (version, bins) in enumerate(pooled.items()):
            ax.plot(
                [b["mean_predicted"] for b in bins],
                [b["observed_rate"] for b in bins],
                marker="o",
                markersize=4,
                color=colour_of(n),
                label=f"v{version} ({sum(b['rows'] for b in bins):,} rows)",
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
        ax.legend(loc="upper left")
    return to_chart(fig, title)


def errors_over_dates(
    rows: Sequence[Mapping[str, Any]],
    versions: Sequence[int],
    windows: Mapping[int, tuple[date, date]],
    title: str,
    width: float = WIDTH,
) -> Chart:
    """A regressor's error (prediction - label) per as-of date: median, 25-75% and 5-95%."""
    fig, ax = _figure(3.6, width=width)
    days = [r["as_of_date"] for r in rows]
    with themed():
        _date_axis(ax, min(days), max(days))
        ax.axhline(0, color=REFERENCE, linewidth=0.8)
        for n, version in enumerate(versions):
            colour = colour_of(n)
            mine = [r for r in rows if r["model_version"] == version]
            when = [r["as_of_date"] for r in mine]

            def q(key: str, mine: list[Mapping[str, Any]] = mine) -> list[float]:
                return [r["quantiles"].get(key, math.nan) for r in mine]

            ax.fill_between(when, q("0.05"), q("0.95"), color=colour, alpha=0.12, linewidth=0)
            ax.fill_between(when, q("0.25"), q("0.75"), color=colour, alpha=0.3, linewidth=0)
            ax.plot(when, q("0.5"), color=colour, marker="o", markersize=3, label=f"v{version}")
            _shade(ax, colour, windows.get(version), min(days), max(days))
        ax.set_ylabel("prediction \u2212 label")
        ax.set_xlabel("as-of date (hatched: training window)")
        ax.legend(loc="best")
    return to_chart(fig, title)


def psi_bars(features: Sequence[Mapping[str, Any]], threshold: float, title: str) -> Chart:
    """PSI per feature, over the threshold in the bad colour."""
    fig, ax = _figure(0.25 * len(features) + 1.0)
    with themed():
        names = [f["feature"] for f in features]
        ax.barh(
            names,
            [f["psi"] for f in features],
            color=[BAD if f["breached"] else GOOD for f in features],
        )
        ax.axvline(
            threshold,
            color=REFERENCE,
            linestyle="--",
            linewidth=1,
            label=f"threshold {threshold:g}",
        )
        ax.invert_yaxis()
        ax.grid(axis="y", visible=False)
        ax.set_xlabel("population stability index (PSI)")
        ax.legend(loc="lower right")
    return to_chart(fig, title)


def histogram(feature: Mapping[str, Any]) -> Chart:
    """One feature's share of rows per bin, in training beside the scored rows."""
    expected = [float(x) for x in feature["expected"]]
    observed = [float(x) for x in feature["observed"]]
    shares = [
        [x / max(sum(expected), 1) for x in expected],
        [x / max(sum(observed), 1) for x in observed],
    ]
    fig, ax = _figure(2.6, width=4.3)
    with themed():
        places = list(range(len(feature["bins"])))
        ax.bar([p - 0.2 for p in places], shares[0], width=0.4, color=REFERENCE, label="training")
        ax.bar([p + 0.2 for p in places], shares[1], width=0.4, color=SERIES[0], label="scored")
        labels = [str(b) for b in feature["bins"]]
        long = max((len(b) for b in labels), default=0) > 6 or len(labels) > 6
        ax.set_xticks(places, labels, rotation=30 if long else 0, ha="right" if long else "center")
        ax.grid(axis="x", visible=False)
        ax.set_ylabel("share of rows")
        ax.set_title(
            f"{feature['feature']}: PSI {feature['psi']:.3f}",
            loc="left",
            color=BAD if feature["breached"] else FG,
        )
        ax.legend()
    return to_chart(fig, f"{feature['feature']}: share of rows per bin, training and scored")


def bars_per_date(
    dates: Sequence[date],
    series: Mapping[str, Mapping[date, float]],
    unit: str,
    title: str,
    colours: Mapping[str, str] | None = None,
) -> Chart:
    """Per date, one bar per series side by side (rows read and quarantined, rows scored per
    model, minutes per pipeline); an empty chart still has its dates."""
    fig, ax = _figure(2.8)
    with themed():
        first, last = (min(dates), max(dates)) if dates else (date.today(), date.today())
        _date_axis(ax, first, last)
        from matplotlib.dates import date2num

        width = 0.8 / max(len(series), 1)
        places = [float(date2num(d)) for d in dates]
        for n, (name, values) in enumerate(series.items()):
            ax.bar(
                [p - 0.4 + width * (n + 0.5) for p in places],
                [values.get(d, 0) for d in dates],
                width=width,
                color=(colours or {}).get(name, colour_of(n)),
                label=name,
            )
        ax.grid(axis="x", visible=False)
        ax.set_ylabel(unit)
        if series:
            ax.legend(loc="upper left", ncols=min(len(series), 4))
        else:
            ax.text(
                0.5, 0.5, "nothing in these nights", transform=ax.transAxes, ha="center", color=GRID
            )
    return to_chart(fig, title)
