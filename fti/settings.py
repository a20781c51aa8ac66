"""The one settings object: environment variables with the ``FTI_`` prefix, and the ``FTI_``
lines of a ``.env`` file in the current folder (what `fti new` writes into a project; other
lines, such as docker compose's, are left to their owners). The environment wins over ``.env``.
Relative paths are read from the current folder and kept absolute, so the Airflow processes
`fti run` starts find the same places.

Read it when a task runs (``get_settings()``), never at import or DAG-parse time.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from fti.errors import ConfigError

ENV_PREFIX = "FTI_"

# Folders inside FTI_HOME that hold each kind of state, unless set on their own.
_HOME_LAYOUT = {
    "store_path": "store",
    "dvc_remote": "remote",
    "artifacts_path": "artifacts",
    "raw_path": "raw",
    "staging_path": "staging",
    "manifests": "manifests",
}
_FOLDERS = ("home", "store_path", "artifacts_path", "raw_path", "staging_path", "manifests")
_FILES = ("manifest_path", "params_file")
# 'package.module' or 'package.module:attribute' (the attribute defaults to 'project').
_PROJECT_REFERENCE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?")
# What each setting must look like, for the message that names a bad one.
_EXPECTED = {
    "home": "a folder (created by `fti init` if missing)",
    "db_url": "a SQLAlchemy URL such as sqlite:////abs/path/fti.db or "
    "postgresql+psycopg://user:password@host:5432/fti",
    "store_path": "a folder (created by `fti init` if missing)",
    "dvc_remote": "a DVC remote URL or folder",
    "artifacts_path": "a folder (created when needed)",
    "raw_path": "a folder with one subfolder of raw files per source",
    "staging_path": "a folder (created when needed)",
    "manifests": "a folder of manifests, one per project (written by `fti check`)",
    "manifest_path": "a file path (written by `fti check`), or unset for the manifests folder",
    "params_file": "the path of the project's params.yaml",
    "project": "'package.module:attribute' of an importable module",
    "max_quarantine_share": "a share of rows from 0 to 1, e.g. 0.2",
    "quarantine_min_rows": "a whole number of rows, 0 or more, e.g. 10",
    "alert_webhook_url": "an http(s) URL that accepts a JSON POST (e.g. a Slack or Teams "
    "incoming webhook), or empty for no alerts",
    "airflow_api_url": "the http(s) URL of Airflow's api-server (e.g. http://localhost:8080), "
    "or empty not to read Airflow's runs",
    "airflow_api_token": "a token of Airflow's REST API (from its /auth/token), as one word",
}
# Settings whose values are secrets: never printed, not even in a message about a bad value.
SECRETS = ("airflow_api_token", "airflow_api_password")


class _FtiLinesOfDotEnv(DotEnvSettingsSource):
    """``.env`` as a settings source, its ``FTI_`` lines only (the file may be shared)."""

    def __call__(self) -> dict[str, Any]:
        return {k: v for k, v in super().__call__().items() if k in self.settings_cls.model_fields}


class Settings(BaseSettings):
    """Where fti keeps its state. Every location defaults to a folder inside ``home``."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="forbid", env_file=".env")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, _FtiLinesOfDotEnv(settings_cls), file_secret_settings

    home: Path = Field(default=Path(".fti"), description="FTI_HOME: root of the embedded setup")
    db_url: str = Field(description="SQLAlchemy URL; an SQLite file in home by default")
    store_path: Path = Field(description="the feature store: a DVC data registry (git repo)")
    dvc_remote: str = Field(description="DVC remote URL or folder; home/remote by default")
    artifacts_path: Path = Field(description="content-addressed model artifacts")
    raw_path: Path = Field(description="raw input files, one folder per source")
    staging_path: Path = Field(description="validated events and intermediate task outputs")
    manifests: Path = Field(
        description="the deployment's manifests, one per project, which the DAG files read "
        "(see fti.manifest); home/manifests by default"
    )
    manifest_path: Path | None = Field(
        default=None,
        description="this one manifest file instead of the folder (one project per deployment)",
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
        description="fail a file when more of its rows than this are bad (and more than "
        "quarantine_min_rows)",
    )
    quarantine_min_rows: int = Field(
        default=10,
        ge=0,
        description="fail a file for its share of bad rows only when more than this many are bad",
    )
    """A file is rejected only when its bad rows are more than ``max_quarantine_share`` of the
    rows read *and* more than this many; 0 lets the share alone decide.

    Why 10: the share gate is there to stop a broken export (a changed schema, a wrong
    delimiter, a cut file), which breaks rows by the hundred. On a small file the share says
    little: one bad row of a one-row day is 100%, and the share alone fails the day for it.
    Ten or fewer bad rows are few enough to read in `fti quarantine list` and fix by hand, so
    they are quarantined and the rest of the file accepted. At the default share (0.2) the count
    only matters for files of fewer than 10 / 0.2 = 50 rows; larger files are judged by their
    share alone. The price: a broken export of a file of ten rows or fewer is accepted with
    every row quarantined (its counts and `fti quarantine list` show it); set 0 to refuse it.
    """
    alert_webhook_url: str | None = Field(
        default=None,
        description="where alerts (missed deadlines, failed tasks) are POSTed as JSON; unset: none",
    )
    airflow_api_url: str | None = Field(
        default=None,
        description="Airflow's api-server (its REST API v2), read by `fti monitor runs` and, "
        "when set, by `fti monitor health`; unset: neither reads Airflow",
    )
    airflow_api_token: SecretStr | None = Field(
        default=None, description="a token (JWT) of Airflow's REST API, sent as is"
    )
    airflow_api_username: str | None = Field(
        default=None,
        description="an Airflow user, exchanged with its password at /auth/token for a token "
        "(when no token is set)",
    )
    airflow_api_password: SecretStr | None = Field(
        default=None, description="the password of airflow_api_username"
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
        values["params_file"] = values.get("params_file") or "params.yaml"
        for key in (*_FOLDERS, *_FILES):
            if values.get(key):
                values[key] = Path(values[key]).expanduser().resolve()
        remote = str(values["dvc_remote"])
        if "://" not in remote:
            values["dvc_remote"] = str(Path(remote).expanduser().resolve())
        if not values.get("db_url"):
            values["db_url"] = f"sqlite:///{home / 'fti.db'}"
        return values

    @field_validator("db_url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        """A URL SQLAlchemy can parse, of a dialect and driver that are installed."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            make_url(value).get_dialect().import_dbapi()
        except ArgumentError as exc:  # includes NoSuchModuleError: an unknown dialect or driver
            raise ValueError(f"not a usable SQLAlchemy URL ({exc})") from None
        except ValueError as exc:  # e.g. a port that is not a number
            raise ValueError(f"not a SQLAlchemy URL ({exc})") from None
        except ImportError as exc:
            raise ValueError(f"its database driver is not installed ({exc})") from None
        return value

    @field_validator("alert_webhook_url", "airflow_api_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("not an http(s) URL")
        return value.strip()

    @field_validator(*SECRETS, "airflow_api_username", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """``FTI_AIRFLOW_API_TOKEN=`` (as a compose file's ``${VAR:-}`` gives) is no token."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("airflow_api_token")
    @classmethod
    def _one_word(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value().split()) != 1:
            raise ValueError("a token is one word, without spaces or line breaks")
        return value

    @field_validator(*_FOLDERS)
    @classmethod
    def _not_a_file(cls, value: Path) -> Path:
        if value.is_file():
            raise ValueError("is a file, not a folder")
        return value

    @field_validator(*_FILES)
    @classmethod
    def _not_a_folder(cls, value: Path | None) -> Path | None:
        if value is not None and value.is_dir():
            raise ValueError("is a folder, not a file")
        return value

    @field_validator("dvc_remote")
    @classmethod
    def _remote_not_a_file(cls, value: str) -> str:
        if "://" not in value and Path(value).expanduser().is_file():
            raise ValueError("is a file, not a folder or remote URL")
        return value

    @field_validator("project")
    @classmethod
    def _project_reference(cls, value: str) -> str:
        if not _PROJECT_REFERENCE.fullmatch(value):
            raise ValueError("is not a 'module' or 'module:attribute' reference")
        return value

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"


def get_settings() -> Settings:
    """Read the settings from the environment now.

    Raises:
        ConfigError: a setting has a bad value; one line per bad setting, naming its
            environment variable, the value (a database password hidden) and what it must be.
    """
    try:
        return Settings()  # type: ignore[call-arg]  # required fields are filled by the validator
    except ValidationError as exc:
        # Not chained: pydantic's own message repeats FTI_DB_URL with its password.
        raise ConfigError("\n".join(setting_problems(exc))) from None


def setting_problems(error: ValidationError) -> list[str]:
    """One line per bad setting in ``error``: its variable, its value, what is wrong and wanted."""
    lines = []
    for problem in error.errors(include_url=False):
        field = str(problem["loc"][0]) if problem["loc"] else ""
        name = f"{ENV_PREFIX}{field.upper()}" if field else "settings"
        value = problem.get("input")
        shown = hide_password(str(value)) if field == "db_url" else str(value)
        if field in SECRETS:
            shown = "***"
        reason = str(problem["msg"]).removeprefix("Value error, ")
        reason = reason[:1].lower() + reason[1:]
        wanted = _EXPECTED.get(field)
        lines.append(f"{name}={shown!r}: {reason}" + (f"; set it to {wanted}" if wanted else ""))
    return lines


def hide_password(url: str) -> str:
    """``url`` as it may be printed: its password replaced by ``***``, even when unparsable."""
    from sqlalchemy.engine import make_url

    masked = re.sub(r"^([^:/]+://[^:/@]*):.*@", r"\1:***@", url)  # up to the last '@'
    if url.count("@") > 1:  # an unescaped '@' in the password: SQLAlchemy would split it
        return masked
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - unparsable: mask whatever sits between 'user:' and '@'
        return masked


def file_safe(name: str) -> str:
    """A file name from a run id or model name: nothing that could leave its folder."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"
