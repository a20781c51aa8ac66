"""The pipelines' DAG runs per night (fti.monitoring.runs), read back through the REST API v2 of
the real Airflow api-server app (``create_app``), from runs that ``dag.test()`` made.

The runs are fti's own feature pipeline (a night that fails on a missing raw file, then a
rerun of it that succeeds) and, for retries, a one-task DAG whose task fails its first try.
Airflow's metadata database is shared by the whole test session (other tests' runs may sit in
the same nights), so the checks look at the runs made here.
"""

from __future__ import annotations

import json
import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pendulum
import pytest
from typer.testing import CliRunner

from fti.errors import ConfigError
from fti.monitoring.runs import (
    AirflowApiError,
    PasswordAuth,
    Runs,
    api_client,
    read_runs,
)
from tests.conftest import DEMO_START, MANIFEST, PARAMS, REPO, demo_settings, make_settings
from tests.served_app import free_port, served

NIGHT = DEMO_START + timedelta(days=11)  # a night no other test runs the feature pipeline for
AFTER = datetime.combine(NIGHT + timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=6)
RETRY_DAG = "fti_test_retry_once"
RETRY_NIGHT = DEMO_START + timedelta(days=12)


def admin_token(role: str = "admin") -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=role, role=role))


def admin_token_expired() -> str:
    """An admin's token that expired an hour ago."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username="admin", role="admin")
    return get_auth_manager().generate_jwt(user, expiration_time_in_seconds=-3600)


def admin_password() -> str:
    """The simple auth manager's generated password of ``admin`` (its file in AIRFLOW_HOME)."""
    from airflow.api_fastapi.auth.managers.simple.simple_auth_manager import SimpleAuthManager

    path = Path(SimpleAuthManager.get_generated_password_file())
    return str(json.loads(path.read_text())["admin"])


@dataclass
class Airflow:
    app: Any
    dags: dict[str, Any]
    url: str  # the same app under a real uvicorn, for the command line

    def client(self, token: str | None = None) -> httpx.Client:
        """The app's TestClient (an httpx.Client) with ``token`` (default: an admin's)."""
        from fastapi.testclient import TestClient

        return TestClient(self.app, headers={"Authorization": f"Bearer {token or admin_token()}"})


@pytest.fixture(scope="module")
def airflow() -> Iterator[Airflow]:
    """Airflow's metadata database, fti's DAGs (no retries: a failure fails now), and the
    api-server's app, started once, also served by uvicorn on a free port."""
    from airflow.api_fastapi.app import create_app
    from airflow.dag_processing.dagbag import BundleDagBag
    from airflow.utils import db
    from fastapi.testclient import TestClient

    db.initdb()
    bag = BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        for task in dag.tasks:
            task.retries = 0
    app = create_app()
    with TestClient(app):  # the api-server's startup (lifespan), once
        with served(app, lifespan="off") as url:
            yield Airflow(app, bag.dags, url)


def run_dag(dag: Any, logical: datetime, expect: str) -> Any:
    """``dag`` run by dag.test() at ``logical``, with its params' defaults."""
    from fti_common import without_deadline_alerts  # apache/airflow#73428

    dag_run = without_deadline_alerts(dag).test(
        logical_date=pendulum.instance(logical), run_conf=dag.params.dump()
    )
    states = {ti.task_id: ti.state for ti in dag_run.get_task_instances()}
    assert dag_run.state == expect, states
    return dag_run


def events_file(raw: Path, day: date) -> Path:
    return raw / "events" / f"{day.isoformat()}.csv"


@pytest.fixture
def home(tmp_path: Path, demo_raw: Path, monkeypatch):  # type: ignore[no-untyped-def]
    """An FTI home over a private copy of the demo's raw files up to NIGHT, the DAG tasks
    reading it from the environment."""
    raw = tmp_path / "raw"
    for source in ("events", "crm"):
        (raw / source).mkdir(parents=True)
        for i in range((NIGHT - DEMO_START).days + 1):
            name = f"{(DEMO_START + timedelta(days=i)).isoformat()}.csv"
            shutil.copy(demo_raw / source / name, raw / source / name)
    settings = demo_settings(tmp_path / "home", raw)
    for key, value in {"HOME": settings.home, "RAW_PATH": raw, "PARAMS_FILE": PARAMS}.items():
        monkeypatch.setenv(f"FTI_{key}", str(value))
    return settings


def mine(runs: Runs, *dag_runs: Any) -> list[Any]:
    """The runs of ``runs`` that are ``dag_runs`` (made by this test), in ``runs``' order."""
    ids = {(r.dag_id, r.run_id) for r in dag_runs}
    return [r for r in runs.runs if (r.dag_id, r.run_id) in ids]


def test_a_failed_night_is_resolved_by_a_later_successful_run(airflow: Airflow, home) -> None:  # type: ignore[no-untyped-def]
    feature = airflow.dags["churn_feature_pipeline"]
    missing = events_file(Path(home.raw_path), NIGHT)
    kept = missing.with_suffix(".kept")
    missing.rename(kept)
    midnight = datetime.combine(NIGHT, datetime.min.time(), UTC)
    failed = run_dag(feature, midnight, "failed")

    runs = read_runs(airflow.client(), ["churn_feature_pipeline"], AFTER, nights=1)
    (run,) = mine(runs, failed)
    assert (run.night, run.state, run.run_type) == (NIGHT, "failed", "manual")
    assert run.failed_tasks == ["validate_raw_events"]  # the rest: upstream failed
    tries = {t.task: (t.state, t.tries) for t in run.tasks}
    assert tries["validate_raw_events"] == ("failed", 1)
    assert {state for task, (state, _) in tries.items() if task != "validate_raw_events"} == {
        "upstream_failed"
    }
    assert run.retries == 0 and not run.resolved
    assert run.link == (
        f"http://testserver/dags/churn_feature_pipeline/runs/{quote(failed.run_id, safe='')}"
    )
    assert run.problem() in runs.problems()
    assert "validate_raw_events" in run.problem() and run.link in run.problem()

    # The raw file arrives; the night is run again (a later manual run of the same date).
    kept.rename(missing)
    rerun = run_dag(feature, midnight + timedelta(hours=6), "success")
    client = airflow.client()
    runs = read_runs(client, ["churn_feature_pipeline"], AFTER, nights=1)
    one_a_page = read_runs(client, ["churn_feature_pipeline"], AFTER, nights=1, page=1)
    first, second = mine(runs, failed, rerun)  # oldest first
    assert (first.run_id, second.run_id) == (failed.run_id, rerun.run_id)
    assert first.failed and first.resolved
    assert second.state == "success" and second.failed_tasks == [] and second.night == NIGHT
    assert second.start is not None and second.end is not None and second.end > second.start
    # dag.test() records the logical date as the start: the run began when it was queued.
    assert second.start == second.run_after
    assert second.duration == pytest.approx((second.end - second.start).total_seconds(), abs=1e-3)
    # The same tasks (a mapped build that ran is listed per shard: build__g[0]).
    assert {t.task.split("[")[0] for t in second.tasks} == {t.task for t in first.tasks}
    # One try each; the label groups' publish is skipped (no labels matured 30 days in).
    assert {t.state for t in second.tasks} == {"success", "skipped"}
    # (a mapped build with no shard, and the publish after it, are skipped without a try)
    assert all(t.tries == 1 for t in second.tasks if t.state == "success")
    assert all(t.tries <= 1 for t in second.tasks) and second.retries == 0
    assert first.problem() not in runs.problems()
    night = next(
        n for n in runs.per_night() if (n.dag_id, n.night) == ("churn_feature_pipeline", NIGHT)
    )
    assert night.state == "success" and night.runs[-1].run_id == rerun.run_id
    # Every page is read: one item a request gives the same runs, tasks and tries.
    assert one_a_page.as_dict() == runs.as_dict()
    assert len(second.tasks) > 1


RETRY_DAG_FILE = f'''
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

TRIED = Path(__file__).with_name("tried")


@dag(
    dag_id="{RETRY_DAG}",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    default_args={{"retries": 1, "retry_delay": timedelta(0)}},
)
def retry_once():
    @task
    def flaky() -> None:
        if not TRIED.exists():
            TRIED.touch()
            raise RuntimeError("the first try fails")

    @task
    def steady() -> None:
        pass

    flaky() >> steady()


retry_once()
'''


def test_retries_are_the_tries_after_the_first(
    airflow: Airflow, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A task that failed its first try and passed its second counts one retry."""
    from airflow.dag_processing.dagbag import BundleDagBag

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "retry_once.py").write_text(RETRY_DAG_FILE)
    bundles = [
        {
            "name": "dags-folder",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {},
        },
        {
            "name": "fti-test-retry",
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(bundle), "refresh_interval": 0},
        },
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(bundles))
    bag = BundleDagBag(str(bundle), bundle_path=bundle, bundle_name="fti-test-retry")
    assert bag.import_errors == {}
    midnight = datetime.combine(RETRY_NIGHT, datetime.min.time(), UTC)
    dag_run = run_dag(bag.dags[RETRY_DAG], midnight, "success")

    now = midnight + timedelta(days=1, hours=6)
    (run,) = mine(read_runs(airflow.client(), [RETRY_DAG], now, nights=1), dag_run)
    assert {t.task: (t.state, t.tries) for t in run.tasks} == {
        "flaky": ("success", 2),
        "steady": ("success", 1),
    }
    assert run.retries == 1 and run.state == "success" and not run.failed
    assert run.as_dict()["tries"] == {"flaky": 2, "steady": 1}
    assert run.as_dict()["retries"] == 1


def test_a_viewer_reads_the_runs_and_a_bad_token_is_refused(airflow: Airflow) -> None:
    assert isinstance(
        read_runs(airflow.client(admin_token("viewer")), ["churn_feature_pipeline"]), Runs
    )
    with pytest.raises(AirflowApiError) as refused:
        read_runs(airflow.client("not-a-jwt"), ["churn_feature_pipeline"])
    assert refused.value.status == 403  # Airflow's answer to a token it cannot read


def test_a_password_is_exchanged_for_a_token_and_again_when_it_expires(airflow: Airflow) -> None:
    from fastapi.testclient import TestClient

    auth = PasswordAuth("http://testserver/auth/token", "admin", admin_password(), 30)
    client = TestClient(airflow.app)
    client.auth = auth
    read_runs(client, ["churn_feature_pipeline"])
    assert auth.token
    auth.token = admin_token_expired()  # the API answers 401: a new token is fetched
    read_runs(client, ["churn_feature_pipeline"])
    assert auth.token and auth.token != admin_token_expired()
    client.auth = PasswordAuth("http://testserver/auth/token", "admin", "not-the-password", 30)
    with pytest.raises(AirflowApiError) as refused:
        read_runs(client, ["churn_feature_pipeline"])
    message = str(refused.value)
    assert "refused the login of user 'admin'" in message and "FTI_AIRFLOW_API_PASSWORD" in message
    assert "not-the-password" not in message


def test_an_unreachable_api_says_which_url_and_what_to_set() -> None:
    port = free_port()  # nothing listens there
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
        with pytest.raises(AirflowApiError) as refused:
            read_runs(client, ["churn_feature_pipeline"])
    message = str(refused.value)
    assert f"cannot reach Airflow's REST API at http://127.0.0.1:{port}/api/v2/" in message
    assert "set FTI_AIRFLOW_API_URL to its URL" in message
    assert refused.value.status is None

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with httpx.Client(base_url=url, timeout=0.5) as client:
            with pytest.raises(AirflowApiError) as slow:
                read_runs(client, ["churn_feature_pipeline"])
    assert f"did not answer POST {url}/api/v2/dags/~/dagRuns/list in time" in str(slow.value)
    assert "FTI_AIRFLOW_API_URL" in str(slow.value)


def test_the_settings_name_the_api_and_hide_its_secrets(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fti.settings import get_settings

    settings = make_settings(tmp_path / "home")
    with pytest.raises(ConfigError, match="FTI_AIRFLOW_API_URL is not set"):
        api_client(settings)
    monkeypatch.setenv("FTI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FTI_AIRFLOW_API_URL", "http://airflow.example:8080")
    monkeypatch.setenv("FTI_AIRFLOW_API_USERNAME", "fti")
    with pytest.raises(ConfigError, match="FTI_AIRFLOW_API_USERNAME is set without .*PASSWORD"):
        api_client(get_settings())
    monkeypatch.setenv("FTI_AIRFLOW_API_PASSWORD", "s3cret-password")
    monkeypatch.setenv("FTI_AIRFLOW_API_TOKEN", "")  # as compose's ${VAR:-} leaves it: no token
    settings = get_settings()
    assert settings.airflow_api_token is None
    assert "s3cret-password" not in repr(settings) and "s3cret-password" not in str(settings)
    with api_client(settings) as client:
        assert str(client.base_url) == "http://airflow.example:8080"
        assert isinstance(client.auth, PasswordAuth)
        assert client.auth.token_url == "http://airflow.example:8080/auth/token"
    monkeypatch.setenv("FTI_AIRFLOW_API_TOKEN", "a-jwt")
    with api_client(get_settings()) as client:
        assert client.headers["Authorization"] == "Bearer a-jwt"
    monkeypatch.setenv("FTI_AIRFLOW_API_URL", "airflow:8080")
    with pytest.raises(Exception) as bad:
        get_settings()
    assert "FTI_AIRFLOW_API_URL='airflow:8080': not an http(s) URL" in str(bad.value)


def cli(*args: str) -> tuple[int, str, str]:
    from fti.cli import app

    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_command_line_lists_the_runs_and_health_counts_a_failed_one(
    airflow: Airflow, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """`fti monitor runs` and `fti monitor health` read the API the settings name, with a
    username and password; health lists the runs only when FTI_AIRFLOW_API_URL is set."""
    from fti.setup import initialise

    settings = make_settings(tmp_path / "home")
    initialise(settings)
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    monkeypatch.setenv("FTI_MANIFEST_PATH", str(MANIFEST))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(PARAMS))
    night = DEMO_START - timedelta(days=1)  # before the project's start: the run fails
    failed = run_dag(
        airflow.dags["churn_feature_pipeline"],
        datetime.combine(night, datetime.min.time(), UTC),
        "failed",
    )
    now = (datetime.combine(night, datetime.min.time(), UTC) + timedelta(days=1)).isoformat()

    code, out, _ = cli("monitor", "health", "--now", now, "--nights", "1", "--json")
    without_api = json.loads(out)
    assert "runs" not in without_api  # unchanged without FTI_AIRFLOW_API_URL

    code, out, err = cli("monitor", "runs", "--now", now)
    assert code == 1 and "FTI_AIRFLOW_API_URL is not set" in err

    monkeypatch.setenv("FTI_AIRFLOW_API_URL", airflow.url)
    monkeypatch.setenv("FTI_AIRFLOW_API_USERNAME", "admin")
    monkeypatch.setenv("FTI_AIRFLOW_API_PASSWORD", admin_password())
    code, out, err = cli("monitor", "runs", "--now", now, "--nights", "1", "--json")
    assert code == 0, err
    listed = json.loads(out)
    assert listed["dags"] == [
        "churn_feature_pipeline",
        "churn_training",
        "spend_training",
        "churn_inference",
        "spend_inference",
    ]
    (run,) = [r for r in listed["runs"] if r["run_id"] == failed.run_id]
    assert run["night"] == night.isoformat() and run["state"] == "failed"
    assert run["failed_tasks"] == ["validate_raw_events"] and run["resolved"] is False
    assert run["link"].startswith(f"{airflow.url}/dags/churn_feature_pipeline/runs/")
    assert run["duration_seconds"] > 0

    code, out, err = cli("monitor", "runs", "--now", now, "--nights", "1")
    assert code == 0 and "churn_feature_pipeline" in out and "failed (unresolved)" in out

    code, out, err = cli("monitor", "health", "--now", now, "--nights", "1", "--json")
    report = json.loads(out)
    assert code == 1 and report["healthy"] is False and report["runs_error"] is None
    assert failed.run_id in {r["run_id"] for r in report["runs"]["runs"]}
    assert f"failed: DAG run churn_feature_pipeline {failed.run_id} of {night}" in err
    # An API that cannot be reached is a problem of its own, said in one line.
    monkeypatch.setenv("FTI_AIRFLOW_API_URL", f"http://127.0.0.1:{free_port()}")
    code, out, err = cli("monitor", "health", "--now", now, "--nights", "1")
    assert code == 1 and "DAG runs not read: cannot reach Airflow's REST API" in err
    assert "FTI_AIRFLOW_API_URL" in err
