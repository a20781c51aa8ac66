"""Two teams on one platform, through Airflow: team ``weather`` builds and publishes a feature
group and a label group; team ``forecasts`` declares those groups as read from ``weather``
(``ReadGroup``, ``ReadLabelGroup``: tests/projects/weather_reader.py), builds a group of its own
from its own source (``cloud_cover``) and trains, promotes and scores its own model on both
teams' groups. Each project sits in a folder of its own outside the
repository with its own params.yaml; both share one FTI home (database, store) and one DAG
folder over one manifests folder, and every run is ``dag.test()`` in one interpreter.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.dags.conftest import run
from tests.dags.test_projects import deployment_dags, team_settings

DAGS = REPO / "dags"
WEATHER = "weather_team:project"
FORECASTS = "forecasts_team:with_own_group"
START, END = date(2025, 1, 1), date(2025, 3, 1)  # two months of one station: enough to train


@pytest.fixture
def teams(tmp_path_factory: pytest.TempPathFactory, db_url: str) -> dict[str, Any]:
    """Both teams' folders, raw files and manifests (as `fti check` writes them) in one home,
    on one database (each backend in turn)."""
    from fti.definitions import load_project
    from fti.deployment import publish_manifest
    from tests.projects import weather, weather_reader

    folder = tmp_path_factory.mktemp("two-teams")
    home = folder / "home"
    owner, reader = folder / "weather", folder / "forecasts"
    owner.mkdir()
    reader.mkdir()
    shutil.copy(REPO / "tests" / "projects" / "weather.py", owner / "weather_team.py")
    shutil.copy(REPO / "tests" / "projects" / "weather_reader.py", reader / "forecasts_team.py")
    weather.generate(owner / "raw", START, END)
    weather_reader.generate(reader / "raw", START, END)
    params = {
        WEATHER: (owner, {"train": {"rain": {"C": 0.5}, "rain_class": {"C": 0.5}}}),
        FORECASTS: (reader, {"train": {"rain_soon": {"C": 0.5}}}),
    }
    found = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FTI_MANIFEST_PATH")  # the session's one-file manifest: not here
        for reference, (place, values) in params.items():
            patch.syspath_prepend(str(place))
            found[reference] = team_settings(reference, home, place, place / "raw", values)
            found[reference] = found[reference].model_copy(update={"db_url": db_url})
            publish_manifest(load_project(reference), found[reference])
    return {"home": home, "settings": found}


def test_a_team_trains_promotes_and_scores_on_another_teams_groups(
    teams: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import func, select

    from fti.db.engine import session_scope
    from fti.db.tables import ModelAlias, ModelVersion, Prediction
    from fti.ownership import owners
    from fti.setup import initialise

    home, settings = teams["home"], teams["settings"]
    initialise(settings[WEATHER])
    monkeypatch.setenv("FTI_DB_URL", settings[WEATHER].db_url)  # the deployment's, shared
    bag = deployment_dags(home, monkeypatch, tmp_path)
    assert {
        "rain_soon_training",
        "rain_soon_inference",
        "weather_feature_pipeline",
        "forecasts_feature_pipeline",
    } <= set(bag.dags)
    # The reader's training waits on the owner's assets (the very ones weather's runs emit) and
    # on its own group's.
    training = bag.dags["rain_soon_training"]
    waits_on = {asset.uri for asset in training.timetable.asset_condition.objects}
    assert waits_on == {
        "fti://feature-store/daily_weather",
        "fti://feature-store/rain_tomorrow",
        "fti://feature-store/cloud_cover",
    }
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0

    conf = {"start_date": START.isoformat(), "end_date": END.isoformat()}
    run(bag.dags["weather_feature_pipeline"], END, **conf)
    run(bag.dags["forecasts_feature_pipeline"], END, **conf)
    run(training, END)
    run(bag.dags["rain_soon_inference"], END)

    with session_scope(settings[WEATHER].db_url) as session:
        claimed = owners(session)
        version = session.scalars(
            select(ModelVersion).where(ModelVersion.name == "rain_soon")
        ).one()
        champion = session.scalars(
            select(ModelAlias.version).where(ModelAlias.name == "rain_soon")
        ).all()
        scored = session.scalar(
            select(func.count()).select_from(Prediction).where(Prediction.model_name == "rain_soon")
        )
    assert claimed[("features", "daily_weather")] == "weather"
    assert claimed[("labels", "rain_tomorrow")] == "weather"
    assert claimed[("features", "cloud_cover")] == "forecasts"
    assert claimed[("model", "rain_soon")] == "forecasts"
    assert version.feature_versions == {"daily_weather": 1, "cloud_cover": 1}
    assert (version.label_group, version.label_version) == ("rain_tomorrow", 1)
    assert champion == [1]
    assert scored == 1  # one station, scored on END


def test_the_reading_teams_params_are_its_own(teams: dict[str, Any]) -> None:
    """Each team's manifest names its own params.yaml, definition and groups."""
    import json

    manifests = teams["home"] / "manifests"
    forecasts = json.loads((manifests / "forecasts.json").read_text())
    assert forecasts["reference"] == FORECASTS
    assert yaml.safe_load(Path(forecasts["params_file"]).read_text())["train"] == {
        "rain_soon": {"C": 0.5}
    }
    assert [group["name"] for group in forecasts["feature_groups"]] == ["cloud_cover"]
    assert forecasts["labels"] == []
