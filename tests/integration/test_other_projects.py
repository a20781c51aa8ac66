"""Projects that are not churn run the whole loop: a single-entity daily series with a binary
and a multiclass model, from Parquet files in local time with missing days."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction
from fti.pipelines.features import run_features
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.settings import Settings
from fti.setup import initialise
from fti.store.versions import FeatureStore
from tests.conftest import MANIFEST
from tests.projects import weather

START, END = date(2025, 1, 1), date(2026, 1, 31)


@pytest.fixture(scope="module")
def weather_raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[date]]:
    raw = tmp_path_factory.mktemp("weather-raw")
    return raw, weather.generate(raw, START, END)


@pytest.fixture
def weather_settings(tmp_path: Path, db_url: str, weather_raw) -> Settings:  # type: ignore[no-untyped-def]
    params = tmp_path / "params.yaml"
    params.write_text(
        yaml.safe_dump(
            {"train": {"rain": {"C": 0.5}, "rain_class": {"C": 0.5}}, "promote": {"margin": 0.0}}
        )
    )
    settings = Settings(
        home=tmp_path / "home",
        db_url=db_url,
        raw_path=weather_raw[0],
        params_file=params,
        project="tests.projects.weather:project",
        manifest_path=MANIFEST,
    )
    initialise(settings)
    return settings


def test_a_single_series_with_a_binary_and_a_multiclass_model(
    weather_settings, weather_raw
) -> None:  # type: ignore[no-untyped-def]
    s = weather_settings
    missing = weather_raw[1]
    night = END
    ran = run_features(START, night - timedelta(days=1), "history", s)
    assert {g: p["version"] for g, p in ran["published"].items()} == {
        "daily_weather": 1,
        "rain_tomorrow": 1,
        "rain_class_tomorrow": 1,
    }
    # Days without a file are normal days (missing_day="empty"): 0 rows read.
    assert ran["sources"]["readings"]["files"] == (night - START).days
    store = FeatureStore(s.store_path)
    labels = store.read("rain_tomorrow", 1).to_pandas()
    # A label whose next day has no readings is null, never "dry".
    unknown = labels[labels["label"].isna()]["feature_date"].tolist()
    assert unknown and all(d + timedelta(days=1) in missing for d in unknown)
    assert max(labels["feature_date"]) == night - timedelta(days=2)  # known one day later

    decisions = {}
    for model in ("rain", "rain_class"):
        path = build_training_set(model, None, None, f"t-{model}", s)
        version = train_model(path, f"t-{model}", settings=s)
        decisions[model] = promote_if_better(path, version, f"t-{model}", s)
    assert decisions["rain"]["promoted"] and decisions["rain"]["candidate"] > 0.6
    assert decisions["rain_class"]["metric"] == "log_loss"

    run_features(night, night, "night", s)
    rain = score_batch("rain", night, "i-rain", settings=s)
    classes = score_batch("rain_class", night, "i-class", settings=s)
    assert rain["rows"] == classes["rows"] == 1  # one station
    with session_scope(s.db_url) as session:
        rows = {p.model_name: p for p in session.scalars(select(Prediction))}
        versions = {m.name: m for m in session.scalars(select(ModelVersion))}
    assert rows["rain"].entity_id == "ZRH" and rows["rain"].prediction in (0, 1)
    scored = rows["rain_class"]
    assert scored.prediction is None and scored.predicted_class in weather.CLASSES
    assert set(scored.class_probabilities) <= set(weather.CLASSES)
    assert sum(scored.class_probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    assert scored.probability == pytest.approx(max(scored.class_probabilities.values()), abs=1e-6)
    lineage = versions["rain_class"]
    assert (lineage.task, lineage.metric) == ("multiclass", "log_loss")
    assert (lineage.label_group, lineage.label_version) == ("rain_class_tomorrow", 1)
    assert lineage.feature_versions == {"daily_weather": 1}
    assert lineage.metrics["log_loss"] > 0 and "accuracy" in lineage.metrics
