"""Issue 26's project: one weather station, one row a day, three models (binary, regression,
multi-class) over one feature group, as a team bringing its own data wrote it.

The weather project's source, features and labels (``tests.projects.weather``), plus a
regression label (tomorrow's rain in mm) and its model; every model a gradient-boosted tree
ensemble (scikit-learn's ``HistGradientBoosting*``), whose artifacts are what a nightly
retrain piles up. ``benchmarks/bench_retention.py`` runs it for 14 nights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import pandas as pd

from fti.definitions import LABEL, LABEL_DATE, LabelGroup, Model, Project
from tests.projects.weather import (
    COMMON,
    _daily,
    daily_weather,
    rain_class_label,
    rain_label,
    readings,
    station,
)


def rain_mm_tomorrow(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    """Tomorrow's rain in mm (null when tomorrow has no readings)."""
    daily = _daily(sources["readings"]).set_index(["station_id", "day"])["rain_mm"]
    rows = []
    for d in dates:
        for name in sorted({s for s, day in daily.index if day == d}):
            rain = daily.get((name, d + timedelta(days=1)))
            rows.append({"station_id": name, LABEL_DATE: d, LABEL: rain})
    return pd.DataFrame(rows, columns=["station_id", LABEL_DATE, LABEL]).astype({LABEL: "float64"})


def make_boosted(params: dict[str, Any], features: list[str]) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**params)


def make_boosted_regressor(params: dict[str, Any], features: list[str]) -> Any:
    from sklearn.ensemble import HistGradientBoostingRegressor

    return HistGradientBoostingRegressor(**params)


rain_mm_label = LabelGroup(
    "rain_mm_tomorrow",
    entity=station,
    sources=[readings],
    horizon_days=1,
    build=rain_mm_tomorrow,
    partition="month",  # one row a day: a file a month (see tests.projects.weather)
)
MODELS = {
    "rain": ("binary", "roc_auc", rain_label, make_boosted),
    "rain_mm": ("regression", "neg_root_mean_squared_error", rain_mm_label, make_boosted_regressor),
    "rain_class": ("multiclass", "log_loss", rain_class_label, make_boosted),
}
project = Project(
    "weather_station",
    start_date="2022-01-01",
    entities=[station],
    sources=[readings],
    feature_groups=[daily_weather],
    labels=[rain_label, rain_mm_label, rain_class_label],
    models=[
        Model(
            name,
            label=label,
            task=task,
            metric=metric,
            features=["daily_weather.*"],
            estimator=estimator,
            **COMMON,
        )
        for name, (task, metric, label, estimator) in MODELS.items()
    ],
)
