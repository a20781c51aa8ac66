"""A project that is not churn: one weather station's daily series, "will it rain tomorrow?".

One entity value (a single series), a Parquet source written in local Zurich time without an
id column, days without readings (missing_day="empty"), labels one day ahead that are null when
the next day has no readings, a binary and a multiclass model. `generate` writes the raw files.
Its groups hold a row a day, so the store files them a month a file (``partition="month"``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fti.definitions import (
    LABEL,
    LABEL_DATE,
    Entity,
    FeatureGroup,
    LabelGroup,
    Model,
    Project,
    Source,
)

ZONE = "Europe/Zurich"
STATION = "ZRH"
CLASSES = ["dry", "light", "heavy"]

READINGS = pa.DataFrameSchema(
    {
        "station_id": pa.Column(str, nullable=False),
        "observed_at": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        "temp_c": pa.Column("float64", pa.Check.in_range(-60, 60), coerce=True),
        "pressure_hpa": pa.Column("float64", pa.Check.in_range(850, 1100), coerce=True),
        "humidity": pa.Column("float64", pa.Check.in_range(0, 100), coerce=True),
        "rain_mm": pa.Column("float64", pa.Check.ge(0), nullable=False, coerce=True),
    }
)
FEATURES = [
    "temp_mean",
    "pressure_mean",
    "pressure_change_3d",
    "humidity_mean",
    "rain_mm",
    "rain_days_7d",
]


def _daily(readings: pd.DataFrame) -> pd.DataFrame:
    """Per station and local day: means of the readings and the day's rain."""
    day = readings["observed_at"].dt.tz_convert(ZONE).dt.date
    return (
        readings.assign(day=day)
        .groupby(["station_id", "day"])
        .agg(
            temp_mean=("temp_c", "mean"),
            pressure_mean=("pressure_hpa", "mean"),
            humidity_mean=("humidity", "mean"),
            rain_mm=("rain_mm", "sum"),
        )
        .reset_index()
    )


def build_daily_weather(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    daily = _daily(sources["readings"])
    frames = []
    for d in dates:
        window = daily[(daily["day"] <= d) & (daily["day"] > d - timedelta(days=7))]
        today = window[window["day"] == d]
        for row in today.itertuples():
            mine = window[window["station_id"] == row.station_id]
            earlier = mine[mine["day"] <= d - timedelta(days=3)]
            frames.append(
                {
                    "station_id": row.station_id,
                    "feature_date": d,
                    "temp_mean": row.temp_mean,
                    "pressure_mean": row.pressure_mean,
                    "pressure_change_3d": row.pressure_mean
                    - (earlier["pressure_mean"].iloc[-1] if len(earlier) else row.pressure_mean),
                    "humidity_mean": row.humidity_mean,
                    "rain_mm": row.rain_mm,
                    "rain_days_7d": int((mine["rain_mm"] > 0.5).sum()),
                }
            )
    columns = ["station_id", "feature_date", *FEATURES]
    return pd.DataFrame(frames, columns=columns)


def _tomorrow(
    sources: Mapping[str, pd.DataFrame], dates: Sequence[date], classes: bool
) -> pd.DataFrame:
    daily = _daily(sources["readings"]).set_index(["station_id", "day"])["rain_mm"]
    rows = []
    for d in dates:
        for station in sorted({s for s, day in daily.index if day == d}):
            rain = daily.get((station, d + timedelta(days=1)))
            if rain is None:  # no readings tomorrow: not knowable, so null (never "dry")
                value: object = None
            elif classes:
                value = "dry" if rain <= 0.5 else "light" if rain <= 5 else "heavy"
            else:
                value = int(rain > 0.5)
            rows.append({"station_id": station, LABEL_DATE: d, LABEL: value})
    frame = pd.DataFrame(rows, columns=["station_id", LABEL_DATE, LABEL])
    return (
        frame.astype({LABEL: "str" if classes else "Int64"})
        if classes
        else frame.astype({LABEL: "Int64"})
    )


def rain_tomorrow(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    return _tomorrow(sources, dates, classes=False)


def rain_class_tomorrow(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    return _tomorrow(sources, dates, classes=True)


def make_logistic(params: dict[str, Any], features: list[str]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(
        StandardScaler(), LogisticRegression(C=float(params.get("C", 1.0)), max_iter=500)
    )


station = Entity("station", key="station_id", dtype="string")
readings = Source(
    "readings",
    schema=READINGS,
    time_column="observed_at",
    format="parquet",
    timezone=ZONE,
    missing_day="empty",
)
daily_weather = FeatureGroup(
    "daily_weather",
    entity=station,
    sources=[readings],
    features=FEATURES,
    build=build_daily_weather,
    lookback_days=7,
    partition="month",
)
rain_label = LabelGroup(
    "rain_tomorrow",
    entity=station,
    sources=[readings],
    horizon_days=1,
    build=rain_tomorrow,
    partition="month",
)
rain_class_label = LabelGroup(
    "rain_class_tomorrow",
    entity=station,
    sources=[readings],
    horizon_days=1,
    build=rain_class_tomorrow,
    partition="month",
)
COMMON = {
    "training_days": 240,
    "label_every_days": 1,
    "min_train_rows": 100,
    "min_holdout_rows": 30,
}
rain = Model(
    "rain",
    label=rain_label,
    task="binary",
    metric="roc_auc",
    features=["daily_weather.*"],
    estimator=make_logistic,
    **COMMON,
)
rain_class = Model(
    "rain_class",
    label=rain_class_label,
    task="multiclass",
    metric="log_loss",
    features=["daily_weather.*"],
    estimator=make_logistic,
    **COMMON,
)
project = Project(
    "weather",
    start_date="2025-01-01",
    entities=[station],
    sources=[readings],
    feature_groups=[daily_weather],
    labels=[rain_label, rain_class_label],
    models=[rain, rain_class],
)


def generate(
    raw: Path, start: date, end: date, seed: int = 11, missing_share: float = 0.03
) -> list[date]:
    """Four readings a day in local Zurich time (no offset), as Parquet; some days have no file.

    Rain follows falling pressure and high humidity, so tomorrow's rain is learnable. Returns
    the days left without a file.
    """
    rng = np.random.default_rng(seed)
    folder = raw / "readings"
    folder.mkdir(parents=True, exist_ok=True)
    pressure, missing = 1013.0, []
    day = start
    while day <= end:
        pressure = float(np.clip(pressure + rng.normal(0, 4) + (1013 - pressure) * 0.2, 960, 1050))
        humidity = float(np.clip(60 + (1013 - pressure) * 1.5 + rng.normal(0, 8), 5, 100))
        season = 10 + 10 * np.sin(2 * np.pi * (day.timetuple().tm_yday - 110) / 365)
        wet = rng.random() < 1 / (1 + np.exp(-(humidity - 75) / 6))
        if rng.random() < missing_share:
            missing.append(day)
        else:
            hours = [3, 9, 15, 21]
            frame = pd.DataFrame(
                {
                    "station_id": STATION,
                    "observed_at": [f"{day.isoformat()}T{h:02d}:00:00" for h in hours],
                    "temp_c": np.round(season + rng.normal(0, 3, 4), 1),
                    "pressure_hpa": np.round(pressure + rng.normal(0, 1, 4), 1),
                    "humidity": np.round(np.clip(humidity + rng.normal(0, 3, 4), 0, 100), 1),
                    "rain_mm": np.round(rng.exponential(2.5, 4) * wet, 1),
                }
            )
            frame.to_parquet(folder / f"{day.isoformat()}.parquet", index=False)
        day += timedelta(days=1)
    return missing
