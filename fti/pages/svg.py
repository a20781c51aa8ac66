"""Matplotlib figures as inline SVG that follow the page's theme.

A figure is drawn with placeholder colours (``FG``, ``GRID``, ``SERIES``...), saved as SVG with
real text (``svg.fonttype: none``) and a transparent background; each placeholder is then
replaced by a CSS variable (``var(--chart-fg)``...), which the page's stylesheet sets for the
light and the dark theme. So one SVG is readable in both, its text is the page's font, and it
stays sharp at any zoom. Ids are prefixed per chart, so two charts on a page never share one.
"""

from __future__ import annotations

import io
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cycler import cycler
from markupsafe import Markup, escape

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# Placeholders: unlikely colours, each replaced by a CSS variable of the stylesheet.
FG, GRID, BG = "#0f0f01", "#0f0f02", "#0f0f03"
GOOD, BAD, REFERENCE = "#0f0f20", "#0f0f21", "#0f0f22"
SERIES = [f"#0f0f1{n}" for n in range(8)]
VARIABLES = {
    FG: "var(--chart-fg)",
    GRID: "var(--chart-grid)",
    BG: "var(--chart-bg)",
    GOOD: "var(--chart-good)",
    BAD: "var(--chart-bad)",
    REFERENCE: "var(--chart-reference)",
    **{colour: f"var(--chart-{n + 1})" for n, colour in enumerate(SERIES)},
}
STYLE: dict[str, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "fti",
    "font.size": 9,
    "text.color": FG,
    "axes.labelcolor": FG,
    "axes.edgecolor": GRID,
    "axes.facecolor": "none",
    "axes.grid": True,
    "axes.axisbelow": True,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "axes.prop_cycle": cycler(color=SERIES),
    "grid.color": GRID,
    "grid.linewidth": 0.6,
    "grid.alpha": 0.6,
    "xtick.color": FG,
    "ytick.color": FG,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.facecolor": BG,
    "legend.edgecolor": GRID,
    "legend.framealpha": 0.9,
    "hatch.color": GRID,
    "figure.facecolor": "none",
    "savefig.facecolor": "none",
}
_ids = itertools.count(1)


@dataclass(frozen=True)
class Chart:
    """An inline SVG chart and what it shows in words (its accessible name and caption)."""

    svg: Markup
    title: str

    def __html__(self) -> str:
        return str(self.svg)


@contextmanager
def themed() -> Iterator[None]:
    """The placeholder style, for figures drawn and saved inside the block."""
    import matplotlib

    with matplotlib.rc_context(STYLE):  # type: ignore[arg-type]
        yield


def to_chart(fig: Figure, title: str) -> Chart:
    """``fig`` (drawn inside :func:`themed`) as a themed inline SVG named ``title``."""
    buffer = io.StringIO()
    with themed():
        fig.savefig(buffer, format="svg", transparent=True, metadata={"Date": None})
    return Chart(inline(buffer.getvalue(), title), title)


def inline(svg: str, title: str, prefix: str | None = None) -> Markup:
    """An SVG document as an element for an HTML page: no XML prolog or metadata, a pixel
    width (its natural size, shrunk by CSS to fit), ids unique to it, placeholders replaced."""
    prefix = prefix or f"c{next(_ids)}-"
    svg = svg[svg.index("<svg") :]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    match = re.search(r'<svg [^>]*?width="([\d.]+)pt" height="([\d.]+)pt"', svg)
    if match:
        width, height = (float(match.group(n)) * 4 / 3 for n in (1, 2))
        svg = svg.replace(
            match.group(0),
            match.group(0)
            .replace(f'width="{match.group(1)}pt"', f'width="{width:.0f}"')
            .replace(f'height="{match.group(2)}pt"', f'height="{height:.0f}"'),
            1,
        )
    label = escape(title)
    svg = svg.replace(
        "<svg ", f'<svg class="chart-svg" role="img" aria-label="{label}" focusable="false" ', 1
    )
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}\1)", svg)
    svg = re.sub(r'xlink:href="#([^"]+)"', rf'xlink:href="#{prefix}\1"', svg)
    for colour, variable in VARIABLES.items():
        svg = svg.replace(colour, variable)
    return Markup(svg)  # noqa: S704 - matplotlib's own output, its text escaped by it
