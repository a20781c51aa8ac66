"""A second team's project on the weather project's groups: it reads ``daily_weather`` and the
``rain_tomorrow`` labels that project ``weather`` publishes, and trains its own model on them.

``project`` builds nothing (``tests/integration/test_read_groups.py`` holds its training set
against the owner's); ``with_own_group`` also builds a group of its own, ``cloud_cover``, from
its own source (a sky camera's CSV files, ``generate``), and its model reads both teams' groups
(``tests/dags/test_two_teams.py``, ``tests/live/test_production.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fti.definitions import FeatureGroup, Model, Project, ReadGroup, ReadLabelGroup, Source
from tests.projects.weather import COMMON, STATION, ZONE, make_logistic, station

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

SKY = pa.DataFrameSchema(
    {
        "station_id": pa.Column(str, nullable=False),
        "taken_at": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        "cloud_okta": pa.Column("int64", pa.Check.in_range(0, 8), coerce=True),
    }
)
sky = Source("sky", schema=SKY, time_column="taken_at", timezone=ZONE)


def build_cloud_cover(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    """Per station and local day: the mean and the largest cloud cover (oktas) of its photos."""
    photos = sources["sky"]
    day = photos["taken_at"].dt.tz_convert(ZONE).dt.date
    daily = (
        photos.assign(feature_date=day)
        .loc[lambda frame: frame["feature_date"].isin(set(dates))]
        .groupby(["station_id", "feature_date"])
        .agg(cloud_mean=("cloud_okta", "mean"), cloud_max=("cloud_okta", "max"))
        .reset_index()
    )
    return daily.astype({"cloud_mean": "float64", "cloud_max": "int64"})


cloud_cover = FeatureGroup(
    "cloud_cover",
    entity=station,
    sources=[sky],
    features=["cloud_mean", "cloud_max"],
    build=build_cloud_cover,
)
with_own_group = dataclasses.replace(
    project,
    sources=[sky],
    feature_groups=[cloud_cover],
    models=[dataclasses.replace(rain_soon, features=["daily_weather.*", "cloud_cover.*"])],
)


def generate(raw: Path, start: date, end: date, seed: int = 5) -> None:
    """Three sky photos a day (local time, no offset), one CSV file per day."""
    rng = np.random.default_rng(seed)
    folder = raw / "sky"
    folder.mkdir(parents=True, exist_ok=True)
    day = start
    while day <= end:
        hours = [8, 12, 16]
        pd.DataFrame(
            {
                "station_id": STATION,
                "taken_at": [f"{day.isoformat()}T{h:02d}:00:00" for h in hours],
                "cloud_okta": rng.integers(0, 9, len(hours)),
            }
        ).to_csv(folder / f"{day.isoformat()}.csv", index=False)
        day += timedelta(days=1)
