"""Drift over a window of dates (params.yaml ``monitor.window_days``): a one-row-a-day series
(the weather project's single station) is judged on its newest days' rows pooled, the figures
are those of the pooled counts, and a date another version scored is left out; SQLite and
PostgreSQL."""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import DriftResult, PredictionRun
from fti.monitoring import drift
from fti.monitoring.drift import Thresholds
from fti.monitoring.report import drift_page
from fti.pipelines.features import run_features
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.settings import Settings
from tests.conftest import project_home
from tests.projects import weather

START = date(2025, 1, 1)
NIGHT = date(2025, 3, 10)  # the first date scored; the history before it trains the model
rain = dataclasses.replace(weather.rain, training_days=60, min_train_rows=30, min_holdout_rows=10)
project = dataclasses.replace(
    weather.project,
    feature_groups=[weather.daily_weather],
    labels=[weather.rain_label],
    models=[rain],
)
MONITOR = {"min_rows": 5, "window_days": 7}


@pytest.fixture
def station(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """One station, a row a day, features through NIGHT + 8, rain v1 champion (trained before
    NIGHT) and v2 (weaker, not promoted); params.yaml pools 7 dates and judges from 5 rows."""
    raw = tmp_path / "raw"
    weather.generate(raw, START, NIGHT + timedelta(days=9), missing_share=0.0)
    params = {"train": {"rain": {"C": 0.5}}, "monitor": MONITOR}
    ref = "tests.integration.test_drift_window:project"
    s: Settings = project_home(tmp_path, db_url, monkeypatch, ref, raw, params)
    run_features(START, NIGHT + timedelta(days=8), "history", s)
    path = build_training_set("rain", None, NIGHT - timedelta(days=1), "t-rain", s)
    assert promote_if_better(path, train_model(path, "t-rain", settings=s), "t-rain", s)["promoted"]
    assert train_model(path, "t-weaker", {"C": 0.001}, s) == 2
    return s


def results_of(s: Settings, run_id: str) -> list[DriftResult]:
    with session_scope(s.db_url) as session:
        query = select(DriftResult).where(DriftResult.run_id == run_id).order_by(DriftResult.id)
        return list(session.scalars(query))


def test_a_one_row_a_day_series_is_judged_on_its_newest_days_pooled(station: Settings) -> None:
    s = station
    days = [NIGHT + timedelta(days=n) for n in range(7)]
    summaries = [score_batch("rain", day, f"i-{day}", settings=s) for day in days]
    assert [summary["rows"] for summary in summaries] == [1] * 7

    # The first date alone: one row, not judged; from the fifth date on the window holds 5.
    first, fifth, seventh = summaries[0], summaries[4], summaries[6]
    assert first["drift_not_judged"] == "not enough rows to judge: 1 < 5"
    assert first["drift_window"] == {"days": 7, "dates": [NIGHT.isoformat()], "rows": 1}
    assert fifth["drift_not_judged"] is None
    assert fifth["drift_window"]["dates"] == [d.isoformat() for d in days[:5]]
    assert seventh["drift_window"] == {
        "days": 7,
        "dates": [d.isoformat() for d in days],
        "rows": 7,
    }

    # The seventh run's figures are those of the seven runs' own counts added up.
    own = [{r.feature: r.run_observed for r in results_of(s, f"i-{day}")} for day in days]
    judged = results_of(s, f"i-{days[-1]}")
    assert {r.feature for r in judged} == {*weather.FEATURES, drift.PREDICTION}
    thresholds = Thresholds.from_params(MONITOR)
    for result in judged:
        pooled = np.sum([counts[result.feature] for counts in own], axis=0)
        assert sum(result.run_observed) == 1 and result.observed == pooled.tolist()
        expected = np.asarray(result.expected, dtype=float)
        assert result.psi == pytest.approx(drift.psi(expected, pooled.astype(float)))
        assert result.breached == (result.psi > thresholds.psi)
    with session_scope(s.db_url) as session:
        run = session.get(PredictionRun, f"i-{days[-1]}")
        assert run is not None and run.drift_window == seventh["drift_window"]
        page = drift_page(session, f"i-{days[-1]}", thresholds)
    assert (
        f"judged on 7 rows of 7 as-of date(s) pooled, {days[0]}..{days[-1]} "
        "(monitor.window_days: 7)"
    ) in page

    # A date scored by another version leaves both windows: v2's bins are not v1's.
    by_v2 = score_batch("rain", NIGHT + timedelta(days=7), "i-v2", "2", settings=s)
    assert by_v2["drift_window"]["dates"] == [(NIGHT + timedelta(days=7)).isoformat()]
    assert by_v2["drift_not_judged"] == "not enough rows to judge: 1 < 5"
    after = score_batch("rain", NIGHT + timedelta(days=8), "i-after", settings=s)
    assert after["drift_window"]["dates"] == [
        d.isoformat() for d in [*days[2:], NIGHT + timedelta(days=8)]
    ]
    with session_scope(s.db_url) as session:
        page = drift_page(session, "i-after", thresholds)
    assert "1 date(s) of the window left out, not scored by this version" in page
