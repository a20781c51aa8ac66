"""Settings from a project folder's `.env` (what `fti new` writes): its FTI_ lines count, other
lines (docker compose's) are left alone, the environment wins, relative paths are the folder's."""

from __future__ import annotations

from pathlib import Path

import pytest

from fti.settings import get_settings


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("FTI_RAW_PATH", "FTI_HOME", "FTI_PARAMS_FILE", "FTI_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(
        "# a project's settings\n"
        "FTI_HOME=.fti\n"
        "FTI_RAW_PATH=data/raw\n"
        "FTI_PARAMS_FILE=params.yaml\n"
        "FTI_PROJECT=corner_shop.project:project\n"
        "POSTGRES_FTI_PASSWORD=change-me\n"  # compose's line: not fti's to judge
    )
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_fti_lines_of_dotenv_count_and_paths_are_the_folders(project: Path) -> None:
    settings = get_settings()
    assert settings.project == "corner_shop.project:project"
    assert settings.home == project / ".fti"
    assert settings.raw_path == project / "data" / "raw"
    assert settings.params_file == project / "params.yaml"
    assert settings.store_path == project / ".fti" / "store"
    assert settings.dvc_remote == str(project / ".fti" / "remote")


def test_the_environment_wins_over_dotenv(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTI_RAW_PATH", "/srv/raw")
    assert get_settings().raw_path == Path("/srv/raw")


def test_without_dotenv_relative_paths_are_still_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FTI_RAW_PATH", "incoming")
    settings = get_settings()
    assert settings.raw_path == tmp_path / "incoming"
    assert settings.params_file == tmp_path / "params.yaml"


def test_the_airflow_api_credentials_stay_out_of_airflows_environment(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fti.runner import fti_variables

    monkeypatch.setenv("FTI_AIRFLOW_API_URL", "http://localhost:8080")
    monkeypatch.setenv("FTI_AIRFLOW_API_USERNAME", "admin")
    monkeypatch.setenv("FTI_AIRFLOW_API_PASSWORD", "s3cret-password")
    monkeypatch.setenv("FTI_AIRFLOW_API_TOKEN", "a.jwt.token")
    settings = get_settings()
    assert settings.airflow_api_password is not None
    assert settings.airflow_api_password.get_secret_value() == "s3cret-password"
    variables = fti_variables(settings)
    # No task reads Airflow's own API: its secrets are not handed to Airflow's processes.
    assert "FTI_AIRFLOW_API_PASSWORD" not in variables and "FTI_AIRFLOW_API_TOKEN" not in variables
    assert not any("s3cret-password" in v or "a.jwt.token" in v for v in variables.values())
    assert variables["FTI_AIRFLOW_API_URL"] == "http://localhost:8080"
