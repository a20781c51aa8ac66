"""The one settings object: environment variables with the ``FTI_`` prefix.

Read it when a task runs (``get_settings()``), never at import or DAG-parse time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Folders inside FTI_HOME that hold each kind of state, unless set on their own.
_HOME_LAYOUT = {
    "store_path": "store",
    "dvc_remote": "remote",
    "artifacts_path": "artifacts",
    "raw_path": "raw",
    "staging_path": "staging",
    "manifest_path": "manifest.json",
}


class Settings(BaseSettings):
    """Where fti keeps its state. Every location defaults to a folder inside ``home``."""

    model_config = SettingsConfigDict(env_prefix="FTI_", extra="forbid")

    home: Path = Field(default=Path(".fti"), description="FTI_HOME: root of the embedded setup")
    db_url: str = Field(description="SQLAlchemy URL; an SQLite file in home by default")
    store_path: Path = Field(description="the feature store: a DVC data registry (git repo)")
    dvc_remote: str = Field(description="DVC remote URL or folder; home/remote by default")
    artifacts_path: Path = Field(description="content-addressed model artifacts")
    raw_path: Path = Field(description="raw input files, one folder per source")
    staging_path: Path = Field(description="validated events and intermediate task outputs")
    manifest_path: Path = Field(
        description="the project's manifest, which the DAG files read (see fti.manifest)"
    )
    params_file: Path = Field(default=Path("params.yaml"), description="hyper-parameters per stage")
    project: str = Field(
        default="churn_demo.project:project",
        description="'module:attribute' of the project definition to run",
    )
    max_quarantine_share: float = Field(
        default=0.2,
        ge=0.0,
        le=1.0,
        description="fail a file when more of its rows than this are bad",
    )

    @model_validator(mode="before")
    @classmethod
    def _default_locations(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        home = Path(values.get("home") or ".fti").expanduser().resolve()
        values["home"] = home
        for key, folder in _HOME_LAYOUT.items():
            if not values.get(key):
                values[key] = str(home / folder)
        values.setdefault("db_url", f"sqlite:///{home / 'fti.db'}")
        return values

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"


def get_settings() -> Settings:
    """Read the settings from the environment now."""
    return Settings()  # type: ignore[call-arg]  # required fields are filled by the validator


def file_safe(name: str) -> str:
    """A file name from a run id or model name: nothing that could leave its folder."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"
