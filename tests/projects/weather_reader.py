"""A second team's project on the weather project's groups: it builds nothing, it reads
``daily_weather`` and the ``rain_tomorrow`` labels that project ``weather`` publishes, and trains
its own model on them (``tests/integration/test_read_groups.py``)."""

from __future__ import annotations

from fti.definitions import Model, Project, ReadGroup, ReadLabelGroup
from tests.projects.weather import COMMON, make_logistic, station

TYPES = {  # as the catalog lists daily_weather's columns (`fti features show daily_weather`)
    "temp_mean": "double",
    "pressure_mean": "double",
    "pressure_change_3d": "double",
    "humidity_mean": "double",
    "rain_mm": "double",
    "rain_days_7d": "int64",
}
daily_weather = ReadGroup(
    "daily_weather", entity=station, owner="weather", features=TYPES, lookback_days=7
)
rain_tomorrow = ReadLabelGroup(
    "rain_tomorrow", entity=station, owner="weather", horizon_days=1, label="int64"
)
rain_soon = Model(
    "rain_soon",
    label=rain_tomorrow,
    task="binary",
    metric="roc_auc",
    features=["daily_weather.*"],
    estimator=make_logistic,
    **COMMON | {"min_train_rows": 20, "min_holdout_rows": 10},  # two months of one station
)
project = Project(
    "forecasts",
    start_date="2025-01-01",
    entities=[station],
    sources=[],
    feature_groups=[],
    labels=[],
    models=[rain_soon],
    reads=[daily_weather, rain_tomorrow],
)
