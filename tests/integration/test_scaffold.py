"""`fti new`: the project it writes works as it is. Its own tests pass, its definition checks,
and the pipeline functions the CLI runs publish its sample, train a champion and score the
sample's last date; names that cannot be a project package are refused with their reason."""

from __future__ import annotations

import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from importlib.resources import files
from pathlib import Path

import pytest
import yaml
from sqlalchemy import select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction
from fti.definitions import check_project, data_problems, load_project
from fti.errors import ConfigError
from fti.pipelines.features import run_features
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.registry import aliases
from fti.scaffold import SAMPLE, TEMPLATE, create_project
from fti.settings import Settings
from fti.setup import initialise
from tests.conftest import REPO
from tests.user_shell import user_env

NAME = "corner_shop"
REFERENCE = f"{NAME}.project:project"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A new project in tmp, its folder on sys.path (as PYTHONPATH or `pip install -e .`)."""
    folder = create_project(NAME, tmp_path)
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for module in [m for m in sys.modules if m == NAME or m.startswith(f"{NAME}.")]:
        del sys.modules[module]  # the next test's project is another folder


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


def test_new_writes_the_package_settings_sample_and_readme(tmp_path: Path) -> None:
    folder = create_project(NAME, tmp_path)
    assert folder == (tmp_path / NAME).resolve()
    assert list(tmp_path.iterdir()) == [tmp_path / NAME]  # no scratch folder left behind
    days = [SAMPLE.start + timedelta(days=i) for i in range(SAMPLE.days)]
    samples = {f"data/raw/sales/{day.isoformat()}.csv" for day in days}
    assert files_under(folder) == {
        ".dockerignore",
        ".dvcignore",
        ".env",
        ".gitignore",
        "README.md",
        "dvc.yaml",
        "params.yaml",
        "pyproject.toml",
        "reports/.gitkeep",
        f"{NAME}/__init__.py",
        f"{NAME}/project.py",
        "tests/test_features.py",
        *samples,
    }
    assert (folder / ".env").read_text().splitlines()[-4:] == [
        f"FTI_PROJECT={REFERENCE}",
        "FTI_HOME=.fti",
        "FTI_RAW_PATH=data/raw",
        "FTI_PARAMS_FILE=params.yaml",
    ]
    for path in folder.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text() and "{%" not in path.read_text(), path
    params = yaml.safe_load((folder / "params.yaml").read_text())
    assert set(params) == {
        "train",
        "promote",
        "monitor",
        "schedule",
        "retention",
        "data",
        "project",
    }
    assert list(params["train"]) == ["sales_forecast"]
    # What dvc.yaml reads: the raw folder of .env's FTI_RAW_PATH, the sample's dates, the package.
    assert params["data"] == {
        "raw": "data/raw",
        "start": SAMPLE.start.isoformat(),
        "end": SAMPLE.end.isoformat(),
    }
    assert params["project"] == {"package": NAME}
    config = tomllib.loads((folder / "pyproject.toml").read_text())
    assert config["project"]["name"] == NAME
    assert config["tool"]["setuptools"]["packages"] == [NAME]
    assert config["tool"]["pytest"]["ini_options"]["pythonpath"] == ["."]
    readme = (folder / "README.md").read_text()
    for command in ("fti check", f"fti run --start {SAMPLE.start} --end {SAMPLE.end}", "fti sql"):
        assert command in readme
    sample = folder / "data" / "raw" / "sales"
    assert sum(p.stat().st_size for p in sample.iterdir()) < 64_000  # tens of KB
    first = (sample / f"{SAMPLE.start}.csv").read_text().splitlines()
    assert first[0] == "sale_id,store_id,closed_at,customers,sales"
    assert len(first) == 1 + SAMPLE.stores


def test_the_project_gets_the_repositorys_dvc_yaml(tmp_path: Path) -> None:
    """One pipeline file: the template is dvc.yaml as it stands (no Jinja in it), the same
    text as the repository's, which runs the churn demo by the same stages."""
    template = files("fti").joinpath(*TEMPLATE, "dvc.yaml.jinja").read_text()
    repository = (REPO / "dvc.yaml").read_text()
    assert template == repository, "dvc.yaml and fti/templates/project/dvc.yaml.jinja differ"
    assert (create_project(NAME, tmp_path) / "dvc.yaml").read_text() == repository
    stages = yaml.safe_load(repository)["stages"]
    assert list(stages) == ["features", "train", "infer"]
    assert "churn" not in repository and "fti/" not in repository  # fti is an installed package


def test_the_sample_is_the_same_every_time(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    one, two = create_project(NAME, tmp_path / "a"), create_project(NAME, tmp_path / "b")
    for name in files_under(one):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name


def test_its_own_tests_pass(project: Path) -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=1800,  # a guard against a hang, not a speed limit
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert "3 passed" in ran.stdout


def test_its_definition_checks_and_matches_its_sample(project: Path) -> None:
    loaded = load_project(REFERENCE)
    assert check_project(loaded) == []
    assert data_problems(loaded, project / "data" / "raw") == []
    assert (loaded.name, loaded.first_date) == (NAME, SAMPLE.start)
    assert [e.name for e in loaded.entities] == ["store"]
    assert [(m.name, m.task, m.label.name) for m in loaded.models] == [
        ("sales_forecast", "regression", "sales_next_7d")
    ]


def initialised(project: Path, tmp_path: Path) -> Settings:
    """Settings of the new project's sample data with a home in ``tmp_path``, initialised."""
    settings = Settings(  # type: ignore[call-arg]  # the validator fills the other paths
        home=tmp_path / "home",
        raw_path=project / "data" / "raw",
        params_file=project / "params.yaml",
        project=REFERENCE,
        manifest_path=tmp_path / "manifest.json",
    )
    initialise(settings)
    return settings


def test_the_pipelines_train_a_champion_and_score_the_last_date(
    project: Path, tmp_path: Path
) -> None:
    settings = initialised(project, tmp_path)
    night = SAMPLE.end
    history = run_features(SAMPLE.start, night - timedelta(days=1), "history", settings)
    assert history["rows_read"] == history["rows_accepted"] == SAMPLE.stores * (SAMPLE.days - 1)
    assert {g: p["version"] for g, p in history["published"].items()} == {
        "store_sales": 1,
        "sales_next_7d": 1,
    }
    # What `fti train --model sales_forecast` runs.
    path = build_training_set("sales_forecast", None, None, "train-1", settings)
    version = train_model(path, "train-1", settings=settings)
    decision = promote_if_better(path, version, "train-1", settings)
    assert decision["promoted"] and decision["metric"] == "neg_mean_absolute_error"

    run_features(night, night, "night", settings)
    # What `fti infer --model sales_forecast --date <night>` runs.
    scored = score_batch("sales_forecast", night, "infer-1", settings=settings)
    assert scored["rows"] == SAMPLE.stores
    with session_scope(settings.db_url) as session:
        assert aliases.current(session, "sales_forecast", aliases.CHAMPION) == version
        row = session.scalars(select(ModelVersion)).one()
        predictions = session.scalars(
            select(Prediction).where(Prediction.as_of_date == night)
        ).all()
    assert row.n_train >= 100 and row.n_holdout >= 25
    assert row.feature_versions == {"store_sales": 1}
    assert sorted(p.entity_id for p in predictions) == [str(i) for i in range(1, SAMPLE.stores + 1)]
    # A week's sales of a store: thousands, never a null or a negative forecast.
    assert all(p.value is not None and p.value > 1000 for p in predictions)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("1abc", "is not a Python identifier"),
        ("my-shop", "is not a Python identifier"),
        ("class", "is a Python keyword"),
        ("CornerShop", "must be lower case"),
        ("_shop", "must be lower case, start with a letter"),
        ("pandas", "already an importable module"),
        ("random", "already an importable module"),
    ],
)
def test_names_that_cannot_be_a_project_are_refused(tmp_path: Path, name: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as raised:
        create_project(name, tmp_path)
    assert repr(name) in str(raised.value) and "\n" not in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_left_alone(tmp_path: Path) -> None:
    existing = tmp_path / NAME
    existing.mkdir()
    (existing / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="already exists and is not an empty folder"):
        create_project(NAME, tmp_path)
    assert files_under(existing) == {"notes.txt"}
    with pytest.raises(ConfigError, match="not an existing folder"):
        create_project(NAME, tmp_path / "nowhere")


# ---- from `fti new` to `fti run`, as a user types them -----------------------------------------
FTI = Path(sys.executable).with_name("fti")  # the console script of this environment


def user_shell() -> dict[str, str]:
    """A user's environment: none of the test session's FTI_ or Airflow settings, no
    PYTHONPATH (fti reads the project's .env)."""
    env = user_env()
    env.pop("PYTHONPATH", None)
    return env


def fti(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(FTI), *args], cwd=cwd, env=user_shell(), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def test_new_dot_writes_into_the_current_empty_folder_and_fti_finds_it_there(
    tmp_path: Path,
) -> None:
    """`mkdir corner_shop && cd corner_shop && fti new .`, then `fti check` and the environment
    `fti run` hands Airflow: the project is found from its folder, without `pip install -e .`
    or PYTHONPATH."""
    folder = tmp_path / NAME
    folder.mkdir()
    (folder / ".git").mkdir()  # `git init` first is fine
    said = fti(folder, "new", ".").stdout
    assert said.splitlines() == [
        f"created {folder}",
        "next, in that folder:",
        "  python -m pytest tests",
        "  fti check",
        f"  fti run --start {SAMPLE.start} --end {SAMPLE.end}",
        "  fti airflow",
    ]
    assert {".env", f"{NAME}/project.py", "params.yaml"} <= files_under(folder)
    assert [p.name for p in folder.iterdir() if p.name.startswith(f".{NAME}-")] == []
    checked = fti(folder, "check")
    assert f"project {NAME} ({REFERENCE})" in checked.stdout and checked.stderr == ""
    printed = dict(
        shlex.split(line)[0].split("=", 1)
        for line in fti(folder, "airflow-env").stdout.splitlines()
    )
    assert printed["PYTHONPATH"] == str(folder) and printed["FTI_PROJECT"] == REFERENCE


def test_new_writes_into_an_existing_empty_folder_and_says_where_to_go(tmp_path: Path) -> None:
    (tmp_path / NAME).mkdir()
    said = fti(tmp_path, "new", NAME).stdout.splitlines()
    assert said[:3] == [f"created {tmp_path / NAME}", "next, in that folder:", f"  cd {NAME}"]
    assert "pip install" not in " ".join(said)
    assert (tmp_path / NAME / NAME / "project.py").is_file()
    assert list(tmp_path.iterdir()) == [tmp_path / NAME]


def test_the_run_summary_advises_fti_airflow(project: Path, tmp_path: Path) -> None:
    """A project's user has `fti airflow`; `make airflow` is the fti repository's own."""
    from fti.runner import summary

    settings = initialised(project, tmp_path)
    said = summary(settings, SAMPLE.end, 1.0)
    assert "`fti airflow` (in this folder), then Browse -> fti health" in said
    assert "make " not in said


def test_a_failure_half_way_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fti import scaffold

    def broken(*args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(scaffold, "write_sample", broken)
    with pytest.raises(OSError, match="disk full"):
        create_project(NAME, tmp_path)
    assert list(tmp_path.iterdir()) == []
