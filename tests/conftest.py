"""Shared fixtures: tmp FTI homes, real SQLite and PostgreSQL databases, a small demo history.

Airflow reads its configuration once per process, so its environment (a tmp AIRFLOW_HOME with
SQLite metadata, this repo's dags/ and plugins/) is set here, before any test imports Airflow.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="fti-tests-airflow-"))
os.environ.update(
    AIRFLOW_HOME=str(_AIRFLOW_HOME),
    AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
    AIRFLOW__CORE__PLUGINS_FOLDER=str(REPO / "plugins"),
    AIRFLOW__CORE__LOAD_EXAMPLES="False",
    AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    AIRFLOW__API_AUTH__JWT_SECRET=uuid.uuid4().hex * 2,
)
for _key in [k for k in os.environ if k.startswith("FTI_")]:
    if _key != "FTI_TEST_PG_ADMIN_URL":
        del os.environ[_key]
# The DAG files are generated from a project's manifest: the churn demo's, written once here.
MANIFEST = _AIRFLOW_HOME / "manifest.json"
os.environ["FTI_MANIFEST_PATH"] = str(MANIFEST)


def _write_demo_manifest() -> None:
    from fti.definitions import load_project
    from fti.manifest import write_manifest

    reference = "churn_demo.project:project"
    write_manifest(load_project(reference), reference, MANIFEST)


_write_demo_manifest()

# The longest tests start first: with pytest-xdist (make test runs `-n auto`) the live test and
# the browser test each take one worker for minutes while the other workers drain the rest.
# Tests under tests/browser get the `browser` marker, so a quick loop can leave them out:
# `pytest -m 'not live and not browser'`.
_LONGEST_FIRST = ("tests/live/", "tests/browser/")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.path.relative_to(REPO).as_posix()
        return next((i for i, p in enumerate(_LONGEST_FIRST) if path.startswith(p)), 99)

    for item in items:
        if item.path.relative_to(REPO).as_posix().startswith("tests/browser/"):
            item.add_marker(pytest.mark.browser)
    items.sort(key=rank)  # stable: within a rank, collection order


PG_ADMIN_URL = os.environ.get(
    "FTI_TEST_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PARAMS = REPO / "params.yaml"

# A small but real churn history from the project's start date: enough days for matured
# labels and a time-based holdout.
DEMO_START = date(2026, 1, 1)
DEMO_DAYS = 100
DEMO_END = DEMO_START + timedelta(days=DEMO_DAYS - 1)
DEMO_CUSTOMERS = 300


def _admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[None]:
    """The PostgreSQL server the tests run against; fails (not skips) when it is down."""
    from sqlalchemy import text

    try:
        with _admin_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - the reason goes into the failure message
        pytest.fail(
            f"PostgreSQL at {PG_ADMIN_URL} is not reachable ({exc}). Start it with "
            "`pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`."
        )
    yield


@pytest.fixture
def postgres_url(postgres_server: None) -> Iterator[str]:
    """A throwaway PostgreSQL database for one test, dropped afterwards."""
    from sqlalchemy import text

    name = f"fti_test_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    from fti.db.engine import get_engine

    get_engine(url).dispose()
    get_engine.cache_clear()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each database test runs on SQLite and on PostgreSQL, migrated to head."""
    from fti.db.migrate import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fti.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url)
    return url


def make_settings(home: Path, db_url: str | None = None):  # type: ignore[no-untyped-def]
    from fti.settings import Settings

    values = {"home": home, "params_file": PARAMS, "manifest_path": MANIFEST}
    if db_url:
        values["db_url"] = db_url
    return Settings(**values)


@pytest.fixture
def settings(tmp_path: Path, db_url: str):  # type: ignore[no-untyped-def]
    """An initialised FTI home in tmp (real DVC store) on each database backend."""
    from fti.setup import initialise

    s = make_settings(tmp_path / "home", db_url)
    initialise(s)
    return s


def project_home(  # type: ignore[no-untyped-def]
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    project: str,
    raw: Path,
    params: dict,  # type: ignore[type-arg]
):
    """Settings of ``project`` (``module:attribute``) on ``raw`` with ``params`` (written to a
    params.yaml), a home in ``tmp_path``, initialised; the same as ``FTI_`` variables, for
    the commands a test runs."""
    import yaml

    from fti.settings import Settings
    from fti.setup import initialise

    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))
    values = {
        "home": tmp_path / "home",
        "db_url": db_url,
        "raw_path": raw,
        "params_file": params_file,
        "project": project,
        "manifest_path": MANIFEST,
    }
    settings = Settings(**values)
    initialise(settings)
    for key, value in values.items():
        monkeypatch.setenv(f"FTI_{key.upper()}", str(value))
    return settings


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Raw churn events for DEMO_DAYS days, generated once per session (read-only for tests)."""
    from churn_demo.generate import generate

    raw = tmp_path_factory.mktemp("raw")
    generate(
        raw, DEMO_END - timedelta(days=DEMO_DAYS - 1), DEMO_END, customers=DEMO_CUSTOMERS, seed=3
    )
    return raw


def demo_settings(home: Path, raw: Path, db_url: str | None = None):  # type: ignore[no-untyped-def]
    """Settings for a home whose raw files are the session's generated demo events."""
    from fti.settings import Settings
    from fti.setup import initialise

    values = {"home": home, "params_file": PARAMS, "raw_path": raw, "manifest_path": MANIFEST}
    if db_url:
        values["db_url"] = db_url
    s = Settings(**values)
    initialise(s)
    return s


@pytest.fixture
def history_start() -> date:
    return DEMO_END - timedelta(days=DEMO_DAYS - 1)
