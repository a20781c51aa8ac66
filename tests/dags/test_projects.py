"""Several projects in one Airflow deployment: two teams' projects, each in its own folder
outside the repository with its own params.yaml and raw files, share one FTI home (database,
store) and one DAG folder. Their manifests sit side by side in FTI_HOME/manifests; the DAG files
make both projects' DAGs, prefixed, from them; each task runs in its own project's environment.

The teams: ``shop`` (what `fti new` writes: daily sales of five stores, CSV) and ``weather`` (a
copy of tests/projects/weather.py: one station's readings, Parquet in local time).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.dags.conftest import run

DAGS = REPO / "dags"
SHOP = "shop.project:project"
WEATHER = "weather_team:project"
START, END = date(2025, 1, 1), date(2025, 1, 12)
SHOP_DAGS = {
    "shop_feature_pipeline",
    "shop_retention",
    "sales_forecast_training",
    "sales_forecast_inference",
}
WEATHER_DAGS = {
    "weather_feature_pipeline",
    "weather_retention",
    *(f"{model}_{kind}" for model in ("rain", "rain_class") for kind in ("training", "inference")),
}


@dataclasses.dataclass(frozen=True)
class Deployment:
    home: Path
    teams: dict[str, Any]  # reference -> the team's Settings

    @property
    def manifests(self) -> Path:
        return self.home / "manifests"


def team_settings(reference: str, home: Path, folder: Path, raw: Path, params: dict) -> Any:  # type: ignore[type-arg]
    """A team's settings: the shared home, its own definition, params.yaml and raw files."""
    from fti.settings import Settings

    params_file = folder / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    return Settings(home=home, project=reference, params_file=params_file, raw_path=raw)


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Both teams' folders and manifests (written as `fti check` writes them) in one home."""
    from fti.definitions import load_project
    from fti.deployment import publish_manifest
    from fti.scaffold import create_project
    from tests.projects import weather

    teams = tmp_path_factory.mktemp("teams")
    home = tmp_path_factory.mktemp("deployment") / "home"
    shop = create_project("shop", teams)
    shop_params = yaml.safe_load((shop / "params.yaml").read_text())
    shop_params["schedule"]["features"] = "0 3 * * *"
    shop_params["shards"] = {"groups": {"store_sales": 3}}
    rain = teams / "weather"
    rain.mkdir()
    shutil.copy(REPO / "tests" / "projects" / "weather.py", rain / "weather_team.py")
    weather.generate(rain / "raw", START, END)
    rain_params = {
        "train": {"rain": {"C": 0.5}, "rain_class": {"C": 0.5}},
        "schedule": {"features": "0 5 * * *"},
        "shards": {"groups": {"daily_weather": 2}},
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("FTI_MANIFEST_PATH")  # the session's one-file manifest: not here
        for folder in (shop, rain):
            patch.syspath_prepend(str(folder))
        found = {
            SHOP: team_settings(SHOP, home, shop, shop / "data" / "raw", shop_params),
            WEATHER: team_settings(WEATHER, home, rain, rain / "raw", rain_params),
        }
        for reference, settings in found.items():
            publish_manifest(load_project(reference), settings)
    return Deployment(home, found)


def parse(manifests: Path) -> dict[str, Any]:
    """The DAG folder as a dag-processor parses it (a new interpreter) over the manifests in
    ``manifests``: each DAG serialized as the scheduler stores it, and the import errors."""
    code = (
        "import json\n"
        "from pathlib import Path\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        "from airflow.serialization.serialized_objects import DagSerialization\n"
        f"bag = BundleDagBag({str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}))\n"
        "print(json.dumps({'dags': {i: DagSerialization.to_dict(d) for i, d in bag.dags.items()},\n"
        "                  'errors': bag.import_errors}, default=str))\n"
    )
    env = {**os.environ, "FTI_MANIFESTS": str(manifests), "FTI_MANIFEST_PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def fti_variables() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.startswith("FTI_")}


def dag_of(parsed: dict[str, Any], dag_id: str) -> dict[str, Any]:
    return dict(parsed["dags"][dag_id]["dag"])


@pytest.fixture(scope="module")
def both(deployment: Deployment) -> dict[str, Any]:
    return parse(deployment.manifests)


def test_two_projects_dags_parse_side_by_side_each_from_its_own_params(
    deployment: Deployment, both: dict[str, Any]
) -> None:
    assert sorted(p.name for p in deployment.manifests.iterdir()) == ["shop.json", "weather.json"]
    assert both["errors"] == {}
    assert set(both["dags"]) == SHOP_DAGS | WEATHER_DAGS
    for dag_id in SHOP_DAGS:
        assert "project:shop" in dag_of(both, dag_id)["tags"], dag_id
    for dag_id in WEATHER_DAGS:
        assert "project:weather" in dag_of(both, dag_id)["tags"], dag_id
    # Each project's schedule and form defaults come from its own params.yaml.
    crons = {
        name: dag_of(both, f"{name}_feature_pipeline")["timetable"]["__var"]["expression"]
        for name in ("shop", "weather")
    }
    assert crons == {"shop": "0 3 * * *", "weather": "0 5 * * *"}
    rain_form = json.dumps(dag_of(both, "rain_training")["params"])
    assert '"C"' in rain_form and "alpha" not in rain_form
    assert "alpha" in json.dumps(dag_of(both, "sales_forecast_training")["params"])


def test_removing_a_project_leaves_the_others_dags_as_they_were(
    deployment: Deployment, both: dict[str, Any], tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from fti.cli import app

    manifests = tmp_path / "manifests"
    shutil.copytree(deployment.manifests, manifests)
    env = {"FTI_HOME": str(deployment.home), "FTI_MANIFESTS": str(manifests), "FTI_PROJECT": SHOP}
    done = CliRunner().invoke(app, ["check", "--remove"], env={**env, "FTI_MANIFEST_PATH": None})
    assert done.exit_code == 0, done.output
    assert "the DAGs of project shop disappear at the next parse" in " ".join(done.output.split())
    assert [p.name for p in manifests.iterdir()] == ["weather.json"]

    left = parse(manifests)
    assert left["errors"] == {}
    assert set(left["dags"]) == WEATHER_DAGS
    for dag_id in WEATHER_DAGS:  # serialized as before, to the last field
        assert left["dags"][dag_id] == both["dags"][dag_id], dag_id


def test_two_projects_that_build_one_name_do_not_share_a_deployment(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fti check` refuses to write the second manifest; one written anyway is an import error
    of every DAG file naming both projects."""
    from fti.definitions import load_project
    from fti.deployment import publish_manifest
    from fti.errors import ConfigError
    from fti.manifest import write_data

    manifests = tmp_path / "manifests"
    shutil.copytree(deployment.manifests, manifests)
    shop = deployment.teams[SHOP]
    monkeypatch.syspath_prepend(str(shop.params_file.parent))
    kiosk = dataclasses.replace(load_project(SHOP), name="kiosk")  # shop's groups, another name
    settings = shop.model_copy(update={"project": "kiosk.project:project", "manifests": manifests})
    with pytest.raises(
        ConfigError, match="projects 'kiosk' and 'shop' both build group 'store_sales'"
    ):
        publish_manifest(kiosk, settings)
    assert not (manifests / "kiosk.json").exists()

    data = json.loads((manifests / "shop.json").read_text()) | {"project": "kiosk"}
    write_data(data, manifests / "kiosk.json")
    parsed = parse(manifests)
    assert parsed["dags"] == {}
    assert set(parsed["errors"]) == {
        "feature_pipeline.py",
        "training_pipeline.py",
        "batch_inference_pipeline.py",
        "retention.py",
    }
    for error in parsed["errors"].values():
        assert "projects 'kiosk' and 'shop' both build model 'sales_forecast'" in error
        assert str(manifests / "kiosk.json") in error and str(manifests / "shop.json") in error


def deployment_dags(home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """The DAG folder over ``home``'s manifests, in a process whose own settings name the churn
    demo on raw files that do not exist: a task that ran outside its project's environment
    fails. Airflow's metadata database is made first; no import error."""
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db

    monkeypatch.setenv("FTI_HOME", str(home))
    monkeypatch.setenv("FTI_MANIFESTS", str(home / "manifests"))
    monkeypatch.delenv("FTI_MANIFEST_PATH")
    monkeypatch.setenv("FTI_PROJECT", "churn_demo.project:project")
    monkeypatch.setenv("FTI_RAW_PATH", str(tmp_path / "no-raw-files"))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(REPO / "params.yaml"))
    # fti_common reads the manifests at import: imported afresh here, and afterwards the one
    # before (or none: a later DagBag of the same process must not get these manifests').
    monkeypatch.setitem(sys.modules, "fti_common", sys.modules.get("fti_common"))
    monkeypatch.delitem(sys.modules, "fti_common")
    db.initdb()
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    assert bag.import_errors == {}
    return bag


def test_each_projects_feature_pipeline_runs_in_its_own_environment(
    deployment: Deployment, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """dag.test() runs both projects' feature DAGs in one interpreter: each validates its own
    raw files, shards by its own params.yaml and publishes its own groups into the shared
    store; the process's own environment (another project's) is back after each task."""
    from sqlalchemy import select

    from fti.db.engine import session_scope
    from fti.db.tables import FeatureVersion
    from fti.monitoring.runs import project_dags
    from fti.setup import initialise

    initialise(deployment.teams[SHOP])
    bag = deployment_dags(deployment.home, monkeypatch, tmp_path)
    before = (fti_variables(), list(sys.path))
    conf = {"start_date": START.isoformat(), "end_date": END.isoformat()}
    runs = {}
    for name in ("shop", "weather"):
        dag = bag.dags[f"{name}_feature_pipeline"]
        for task in dag.tasks:
            task.retries = 0
        runs[name] = run(dag, END, **conf)
        assert (fti_variables(), list(sys.path)) == before

    builds = [
        ti.task_id for dag_run in runs.values() for ti in dag_run.get_task_instances()
    ]  # a task instance per shard: each project's own shards.groups
    assert (builds.count("build__store_sales"), builds.count("build__daily_weather")) == (3, 2)
    with session_scope(deployment.teams[SHOP].db_url) as session:
        published = {
            row.group_name: (row.version, row.run_id.partition("/")[0], row.row_count)
            for row in session.scalars(select(FeatureVersion))
        }
    days = (END - START).days + 1
    assert {group: version for group, (version, _, _) in published.items()} == {
        "store_sales": 1,
        "sales_next_7d": 1,
        "daily_weather": 1,
        "rain_tomorrow": 1,
        "rain_class_tomorrow": 1,
    }
    assert published["store_sales"][1:] == ("shop_feature_pipeline", 5 * days)  # five stores
    assert published["daily_weather"][1] == "weather_feature_pipeline"
    assert published["daily_weather"][2] <= days  # one station (days without readings: none)
    # `fti monitor runs` and the health page read each project's DAG ids from its manifest.
    assert project_dags(deployment.teams[WEATHER]) == [
        "weather_feature_pipeline",
        "rain_training",
        "rain_class_training",
        "rain_inference",
        "rain_class_inference",
    ]
