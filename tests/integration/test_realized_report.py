"""Pictures of realized performance (fti.monitoring.report.realized_section), on SQLite and
PostgreSQL: realized metrics recorded for real (scores written, labels published), then read
back from the HTML: the charts are there, the tables hold the recorded figures.

The figures below are computed by hand from the small tables each test writes.
"""

from __future__ import annotations

from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa

from fti.db.engine import session_scope
from fti.inference.runs import start_run
from fti.monitoring.publish import write_reports
from fti.monitoring.realized import write_shadow_slice
from fti.monitoring.report import realized_page, realized_section
from fti.registry import aliases
from fti.settings import Settings
from tests.integration.test_realized import (
    CHURN_LABELS,
    D1,
    D2,
    SPEND_LABELS,
    a_slice,
    binary,
    publish_labels,
    register,
    score,
)

INSIDE = date(2026, 1, 15)  # in register()'s training window, 2026-01-01 .. 2026-01-20
CHART = "data:image/png;base64,"


class Tables(HTMLParser):
    """The cell texts of each ``<table class=...>``, row by row (header rows left out)."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = self.tables.setdefault(dict(attrs).get("class") or "", [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag == "td" and self._table is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._table is not None and self._cell is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            if self._table is not None:
                self._table[:] = [row for row in self._table if row]
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def shadow(
    settings: Settings, model: str, version: int, day: date, probabilities: list[float]
) -> None:
    """Shadow scores of ``version`` for ``day``, as fti.pipelines.inference.score_shadow
    writes them."""
    piece = a_slice(model, version, day, f"shadow-{model}-{version}-{day}")
    rows = binary(probabilities)
    batch = pa.RecordBatch.from_pydict(
        rows,
        schema=pa.schema(
            [("entity_id", pa.string()), ("prediction", pa.int64()), ("probability", pa.float64())]
        ),
    )
    write_shadow_slice(settings.db_url, piece, "challenger", [batch])


def test_realized_section_charts_and_tables_a_champion_and_its_shadow_challenger(
    settings: Settings, tmp_path: Path
) -> None:
    v1 = register(settings, "churn", "binary", "roc_auc", holdout=0.8)
    v2 = register(settings, "churn", "binary", "roc_auc", holdout=0.7)
    with session_scope(settings.db_url, write=True) as session:
        aliases.set_alias(session, "churn", aliases.CHAMPION, v1, "test", "first")
    # v1 serves three dates, the first inside its training window; v2 is shadow-scored on D2.
    score(settings, "churn", v1, INSIDE, binary([0.82, 0.15, 0.25]))
    score(settings, "churn", v1, D1, binary([0.88, 0.84, 0.15, 0.36]))
    score(settings, "churn", v1, D2, binary([0.35, 0.65, 0.75, 0.25]))
    shadow(settings, "churn", v2, D2, [0.1, 0.9, 0.8, 0.2])
    publish_labels(
        settings,
        tmp_path,
        CHURN_LABELS,
        {INSIDE: [0, 1, 0], D1: [1, 1, 0, 0], D2: [1, 0, 1, 0]},
    )

    with session_scope(settings.db_url) as session:
        section = realized_section(session, "churn")
        of_v2 = realized_section(session, "churn", v2)
        page = realized_page(session, "churn")
    assert "<html" not in section and section.count(CHART) == 2  # the metric, the reliability
    assert page.startswith("<!doctype html>") and section in page
    # Per date and version: as of, version, alias, in the training window, rows, metric,
    # realized (AUC), holdout, Brier.
    # INSIDE: the positive 0.15 is below both negatives 0.82, 0.25: AUC 0; Brier
    #   (0.82^2 + 0.85^2 + 0.25^2) / 3 = 0.4858.
    # D1: both positives above both negatives: AUC 1; Brier (0.12^2 + 0.16^2 + 0.15^2 + 0.36^2) / 4.
    # D2, v1: pairs (0.35 > 0.25), (0.75 > 0.65), (0.75 > 0.25) right, (0.35 < 0.65) not: 0.75;
    #   Brier (2 * 0.65^2 + 2 * 0.25^2) / 4 = 0.2425.
    # D2, v2: only (0.8 > 0.2) of the four pairs right: 0.25; Brier (2 * 0.9^2 + 2 * 0.2^2) / 4.
    table = Tables(section).tables["realized"]
    assert table == [
        [str(INSIDE), f"v{v1}", "champion", "yes", "3", "roc_auc", "0.0000", "0.8000", "0.4858"],
        [str(D1), f"v{v1}", "champion", "no", "4", "roc_auc", "1.0000", "0.8000", "0.0480"],
        [str(D2), f"v{v1}", "champion", "no", "4", "roc_auc", "0.7500", "0.8000", "0.2425"],
        [str(D2), f"v{v2}", "challenger", "no", "4", "roc_auc", "0.2500", "0.7000", "0.4250"],
    ]
    # The curve pools v1's three dates, each bin weighted by its rows: 0.8-0.9 holds 0.82
    # (label 0) of INSIDE and 0.88, 0.84 (labels 1, 1) of D1: 3 rows, mean predicted 2.54 / 3,
    # observed 2 / 3 (an unweighted mean of the two dates' bins would say 0.84 and 0.5).
    curve = {(row[0], row[1]): row[2:] for row in Tables(section).tables["reliability"]}
    assert curve[(f"v{v1}", "0.8–0.9")] == ["3", "0.847", "0.667"]
    assert curve[(f"v{v1}", "0.1–0.2")] == ["2", "0.150", "0.500"]  # 0.15: labels 1 and 0
    # v2's 0.9 (label 0) falls in (0.8, 0.9], its 0.8 (label 1) in (0.7, 0.8].
    assert curve[(f"v{v2}", "0.8–0.9")] == ["1", "0.900", "0.000"]
    assert curve[(f"v{v2}", "0.7–0.8")] == ["1", "0.800", "1.000"]
    assert sum(int(rows) for (version, _), (rows, *_) in curve.items() if version == f"v{v1}") == 11
    assert "pooled over the 3 dates shown" in section

    # One version: its dates, with the versions scored beside it on them.
    assert of_v2.count(CHART) == 2 and "pooled over the 1 dates shown" in of_v2
    assert [row[:3] for row in Tables(of_v2).tables["realized"]] == [
        [str(D2), f"v{v1}", "champion"],
        [str(D2), f"v{v2}", "challenger"],
    ]


def test_a_regressor_shows_its_error_distribution(settings: Settings, tmp_path: Path) -> None:
    version = register(settings, "spend", "regression", "neg_root_mean_squared_error", -2.0)
    rows: dict[str, list[Any]] = {"entity_id": ["1", "2", "3"], "value": [10.0, 20.0, 30.0]}
    score(settings, "spend", version, D1, rows)
    publish_labels(settings, tmp_path, SPEND_LABELS, {D1: [12.0, 18.0, 33.0]})
    with session_scope(settings.db_url) as session:
        section = realized_section(session, "spend")
    assert section.count(CHART) == 2 and "Error (prediction &minus; label)" in section
    assert "Reliability" not in section and "mean |error|" in section
    # errors -2, 2, -3: RMSE sqrt(17 / 3) = 2.3805 (negated), mean |error| 7 / 3.
    assert Tables(section).tables["realized"] == [
        [
            str(D1),
            f"v{version}",
            "",
            "no",
            "3",
            "neg_root_mean_squared_error",
            "-2.3805",
            "-2.0000",
            "2.3333",
        ]
    ]


def test_nothing_recorded_says_how_to_record_them(settings: Settings) -> None:
    register(settings, "churn", "binary", "roc_auc", holdout=0.8)
    with session_scope(settings.db_url) as session:
        churn = realized_section(session, "churn")
        of_v1 = realized_section(session, "churn", 1)
        odd = realized_section(session, "<b>x</b>")
    assert churn.startswith("<p>") and churn.count("<p>") == 1 and CHART not in churn
    assert "No realized metrics recorded for churn yet" in churn
    assert "<code>fti monitor realized --model churn --refresh</code>" in churn
    assert "No realized metrics recorded for churn v1 yet" in of_v1
    assert "&lt;b&gt;x&lt;/b&gt;" in odd and "<b>" not in odd


def test_monitor_report_writes_the_realized_page(settings: Settings, tmp_path: Path) -> None:
    version = register(settings, "churn", "binary", "roc_auc", holdout=0.8)
    run_id = f"run-churn-{version}-{D1}"  # the id score() writes its slice under
    start_run(settings.db_url, run_id, "churn", D1, None, None)
    score(settings, "churn", version, D1, binary([0.88, 0.84, 0.15, 0.35]))
    out = tmp_path / "out"
    before = write_reports(settings, out)
    assert (
        "No realized metrics recorded for churn yet" in Path(before["realized_report"]).read_text()
    )

    publish_labels(settings, tmp_path, CHURN_LABELS, {D1: [1, 1, 0, 0]})
    written = write_reports(settings, out)
    assert set(written) == {"run_id", "drift_report", "metrics_report", "realized_report"}
    assert written["run_id"] == run_id and written["realized_report"] == str(
        out / "realized-churn.html"
    )
    page = Path(written["realized_report"]).read_text()
    assert page.startswith("<!doctype html>") and page.count(CHART) == 2
    assert Tables(page).tables["realized"][0][:8] == [
        str(D1),
        f"v{version}",
        "",
        "no",
        "4",
        "roc_auc",
        "1.0000",
        "0.8000",
    ]
