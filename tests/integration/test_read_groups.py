"""A project that reads groups another project builds (issue 29): `fti check` holds its
declaration against the catalog's newest published version, training builds the same set
the owner's own model gets, and `fti new --reads` starts a project on them."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import update
from typer.testing import CliRunner

from fti.checks import check_files
from fti.cli import app
from fti.db.engine import session_scope
from fti.db.tables import Owner
from fti.definitions import Project, check_project
from fti.errors import FtiError, OwnershipError
from fti.monitoring.gaps import missing_dates
from fti.pipelines.features import run_features
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set as train_set
from fti.pipelines.training import promote_if_better, train_model
from fti.read_groups import catalog_findings
from fti.settings import Settings
from fti.setup import initialise
from fti.store.versions import FeatureStore
from fti.training.dataset import build_training_set
from tests.conftest import MANIFEST
from tests.projects import weather, weather_reader

START, END = date(2025, 1, 1), date(2025, 3, 1)


@pytest.fixture(scope="module")
def weather_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = tmp_path_factory.mktemp("weather-raw")
    weather.generate(raw, START, END)
    return raw


def reader_settings(tmp_path: Path, db_url: str, raw: Path) -> Settings:
    """The reading project's settings: the owner's database and store, its own params."""
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"train": {"rain_soon": {"C": 0.5}}}))
    return Settings(
        home=tmp_path / "home",
        db_url=db_url,
        raw_path=raw,
        params_file=params,
        project="tests.projects.weather_reader:project",
        manifest_path=MANIFEST,
    )


def reading(**features: str) -> Project:
    """The reader project with ``daily_weather`` declared with other features."""
    group = dataclasses.replace(weather_reader.daily_weather, features=features)
    return dataclasses.replace(weather_reader.project, reads=[group, weather_reader.rain_tomorrow])


def test_a_reader_checks_against_the_catalog_and_trains_on_the_owners_groups(
    tmp_path: Path, db_url: str, weather_raw: Path
) -> None:
    s = reader_settings(tmp_path, db_url, weather_raw)
    initialise(s)
    owner = s.model_copy(update={"project": "tests.projects.weather:project"})
    reader = weather_reader.project
    assert check_project(reader) == []

    # Nothing published yet: awaited from the owner, a note, not a failure.
    found = check_files(reader, s)
    assert found.problems == []
    assert found.notes == [
        "model 'rain_soon': feature group 'daily_weather' has no published version yet: "
        "awaited from its owner, project 'weather'",
        "model 'rain_soon': label group 'rain_tomorrow' has no published version yet: "
        "awaited from its owner, project 'weather'",
    ]

    run_features(START, END, "history", owner, groups=["daily_weather", "rain_tomorrow"])
    assert check_files(reader, s).problems == []

    # A column the owner's version lacks, and one of another type: one line each.
    with session_scope(s.db_url) as session:
        gone = catalog_findings(session, reading(temp_mean="double", wind_mean="double"))
        retyped = catalog_findings(session, reading(rain_days_7d="double"))
        kind = catalog_findings(
            session,
            dataclasses.replace(
                reader,
                reads=[
                    weather_reader.daily_weather,
                    dataclasses.replace(weather_reader.daily_weather, name="rain_tomorrow"),
                ],
                models=[],
            ),
        )
    assert gone.problems == [
        "model 'rain_soon': feature 'daily_weather.wind_mean' read from project 'weather' is "
        "not in its newest version v1 (dropped?); it has: temp_mean (double), pressure_mean "
        "(double), pressure_change_3d (double), humidity_mean (double), rain_mm (double), "
        "rain_days_7d (int64)"
    ]
    assert retyped.problems == [
        "model 'rain_soon': feature 'daily_weather.rain_days_7d' read from project 'weather' "
        "is declared double but its newest version v1 has int64 (retyped?); declare the new "
        "type, or ask the owner"
    ]
    with session_scope(s.db_url) as session:
        elsewhere = catalog_findings(
            session,
            dataclasses.replace(
                reader,
                reads=[
                    dataclasses.replace(weather_reader.daily_weather, owner="radar"),
                    weather_reader.rain_tomorrow,
                ],
            ),
        )
    assert elsewhere.problems == [
        "model 'rain_soon': feature group 'daily_weather' is declared as read from project "
        "'radar', but project 'weather' owns it: set owner='weather'"
    ]
    assert kind.problems == [
        "read feature group 'rain_tomorrow' (no model uses it): 'rain_tomorrow' read from "
        "project 'weather' is a label group in its newest version v1, not a feature group; "
        "declare it as a ReadLabelGroup"
    ]

    # The reader's training set is the owner's, column for column.
    store = FeatureStore(s.store_path)
    versions = {"daily_weather": 1}
    soon = weather_reader.rain_soon
    rain = dataclasses.replace(
        weather.rain, min_train_rows=soon.min_train_rows, min_holdout_rows=soon.min_holdout_rows
    )
    theirs = build_training_set(
        store, weather.project, rain, versions, 1, END, weather.project.model_features(rain)
    )
    ours = build_training_set(store, reader, soon, versions, 1, END, reader.model_features(soon))
    assert len(ours.frame) > 40
    pd.testing.assert_frame_equal(ours.frame, theirs.frame)
    assert ours.feature_dtypes == theirs.feature_dtypes
    assert (ours.train_dates, ours.holdout_dates) == (theirs.train_dates, theirs.holdout_dates)

    # The reader's own runs: train, promote, score; its monitors see its model's gap only.
    path = train_set("rain_soon", None, None, "t-soon", s)
    assert promote_if_better(path, train_model(path, "t-soon", settings=s), "t-soon", s)["promoted"]
    assert score_batch("rain_soon", END, "i-soon", settings=s)["rows"] == 1
    with session_scope(s.db_url) as session:
        gaps = missing_dates(store, session, reader, END)
        assert [(g.kind, g.name) for g in gaps] == []

    # The owner's rows online are the reader's too (`fti features get`, as `fti serve` reads).
    env = {f"FTI_{k.upper()}": str(getattr(s, k)) for k in ("home", "db_url", "params_file")}
    env |= {"FTI_PROJECT": s.project, "FTI_MANIFEST_PATH": str(MANIFEST)}
    got = CliRunner().invoke(app, ["features", "get", "daily_weather", "ZRH", "--json"], env=env)
    assert got.exit_code == 0, got.output
    assert [(r["entity"], r["found"]) for r in json.loads(got.stdout)] == [("ZRH", True)]

    # Training on a version that does not hold the declaration: the same line, no KeyError.
    stale = reading(**weather_reader.TYPES | {"rain_days_7d": "double"})
    retyped_at = r"^model 'rain_soon': feature 'daily_weather.rain_days_7d' .* is declared double"
    with pytest.raises(FtiError, match=retyped_at + " but its version v1 has int64"):
        build_training_set(store, stale, soon, versions, 1, END, stale.model_features(soon))

    # `fti new --reads`: a project whose model reads the group, typed from the catalog.
    result = CliRunner().invoke(
        app,
        ["new", str(tmp_path / "storm_watch"), "--reads", "weather.daily_weather"],
        env={"FTI_DB_URL": s.db_url, "FTI_HOME": str(s.home)},
    )
    assert result.exit_code == 0, result.output
    sys.path.insert(0, str(tmp_path / "storm_watch"))
    try:
        from storm_watch.project import project as started  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(tmp_path / "storm_watch"))
        for module in [m for m in sys.modules if m.split(".")[0] == "storm_watch"]:
            del sys.modules[module]
    (read,) = started.reads
    assert (read.name, read.owner, read.entity.key, read.entity.dtype) == (
        "daily_weather",
        "weather",
        "station_id",
        "string",
    )
    assert read.declared == weather_reader.TYPES
    assert started.model_groups(started.models[0]) == ["daily_weather"]
    # What is left to write: a label about stations (the sample's is about stores).
    assert check_project(started) == [
        "model 'sales_forecast': feature group 'daily_weather' is about entity 'station' but "
        "label group 'sales_next_7d' is about 'store'"
    ]
    with session_scope(s.db_url) as session:
        assert catalog_findings(session, started).problems == []

    unknown = CliRunner().invoke(
        app,
        ["new", str(tmp_path / "other"), "--reads", "weather.wind"],
        env={"FTI_DB_URL": s.db_url, "FTI_HOME": str(s.home)},
    )
    assert unknown.exit_code == 1
    assert "the catalog has no published version of group 'wind'" in unknown.output
    assert not (tmp_path / "other").exists()

    # The model is another project's now: a training is refused before it stores an artifact.
    with session_scope(s.db_url, write=True) as session:
        session.execute(update(Owner).where(Owner.name == "rain_soon").values(project="radar"))
    stored = sorted(s.artifacts_path.rglob("*"))
    with pytest.raises(OwnershipError, match="model 'rain_soon' belongs to project 'radar'"):
        train_model(path, "t-radar", {"C": 0.25}, settings=s)
    assert sorted(s.artifacts_path.rglob("*")) == stored
