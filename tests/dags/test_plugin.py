"""The fti page inside the real Airflow api-server app, served from fti's database.

The app is the api-server's own (``create_app``: plugins mounted, the auth manager initialised),
with the simple auth manager and the JWT secret tests/conftest.py configures. Every fti page
asks for the same login as Airflow's UI and API: the content tests read as a logged-in admin.
"""

from __future__ import annotations

import html
import os
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pytest
from sqlalchemy import text

from fti.db.engine import session_scope
from fti.db.tables import DriftResult, PredictionRun, ValidationRun
from fti.registry import aliases
from fti.registry.versions import register_version
from fti.store.tagged import publish_cataloged
from fti.store.versions import FeatureStore
from tests import html_text
from tests.conftest import make_settings

NOW = datetime(2026, 4, 30, 3, 0, tzinfo=UTC)
RUN = "churn_feature_pipeline/scheduled__2026-04-30T00:00:00+00:00"
SCORED = "churn_inference/manual__2026-04-30"


def lineage(**extra: Any) -> dict[str, Any]:
    """A model version's registry row, as fti.pipelines.training.train_model registers one."""
    return {
        "artifact_uri": "/tmp/a.skops",
        "artifact_sha256": "0" * 64,
        "estimator": "sklearn.pipeline.Pipeline(HistGradientBoostingClassifier)",
        "params": {"max_iter": 150},
        "task": "binary",
        "metric": "roc_auc",
        "metrics": {"roc_auc": 0.8123, "log_loss": 0.41},
        "feature_group": "customer_activity",
        "feature_version": 1,
        "feature_versions": {"customer_activity": 1, "customer_profile": 3},
        "features": [
            {"name": "logins_7d", "dtype": "int64", "group": "customer_activity", "ttl_days": 0},
            {"name": "plan", "dtype": "string", "group": "customer_profile", "ttl_days": 7},
        ],
        "label": "churned_30d v2 (horizon 30 days)",
        "label_group": "churned_30d",
        "label_version": 2,
        "train_start": date(2026, 1, 1),
        "train_end": date(2026, 3, 31),
        "n_train": 1000,
        "n_holdout": 300,
        "library_versions": {},
        "code_version": "test",
        "run_id": "churn_training/manual__2026-04-30",
        "promotion": None,
        **extra,
    }


TABLES = {  # the heading of each table on the pages -> its id
    "Feature and label group versions": "groups-table",
    "Model versions": "models-table",
    "Prediction runs": "runs-table",
    "Alias history": "history-table",
    "Freshness": "freshness-table",
    "Realized performance of the champions": "realized-table",
    "Failures": "failures-table",
    "Rows read and quarantined per night": "read-table",
    "Rows scored per model per night": "scored-table",
    "Pipeline runs per night": "dag-runs-table",
    "Failed DAG runs": "failed-dag-runs-table",
}


def table_rows(page: str, heading: str) -> list[list[str]]:
    """The text of each cell of the table under ``heading``, row by row, as a person reads it."""
    return html_text.table(page, TABLES[heading])


def table_headers(page: str, heading: str) -> list[str]:
    return html_text.headers(page, TABLES[heading])


def charts(page: str) -> int:
    """How many charts (themed inline SVGs) a page shows."""
    return page.count('<svg class="chart-svg"')


def token(role: str | None = "admin", username: str = "admin", seconds: int | None = None) -> str:
    """A JWT as Airflow issues at login, from the auth manager the api-server initialised."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    user = SimpleAuthManagerUser(username=username, role=role)
    if seconds is None:
        return get_auth_manager().generate_jwt(user)
    return get_auth_manager().generate_jwt(user, expiration_time_in_seconds=seconds)


def forged(claims: dict[str, Any] | None = None) -> str:
    """An admin's token (claims optionally changed) signed with a key that is not Airflow's."""
    import jwt

    valid = token()
    payload = {**jwt.decode(valid, options={"verify_signature": False}), **(claims or {})}
    header = jwt.get_unverified_header(valid)
    return jwt.encode(payload, "not-the-secret" * 8, algorithm=header["alg"], headers=header)


@pytest.fixture(scope="module")
def airflow_db() -> None:
    """Airflow's metadata database, as the api-server needs one (it looks up revoked tokens)."""
    from airflow.utils import db

    db.initdb()


@pytest.fixture
def airflow_app(tmp_path: Path, monkeypatch, airflow_db: None):  # type: ignore[no-untyped-def]
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from fti.setup import initialise

    settings = make_settings(tmp_path / "home")
    initialise(settings)
    monkeypatch.setenv("FTI_HOME", str(settings.home))
    store = FeatureStore(settings.store_path)
    day = date(2026, 4, 30)
    rows = pa.table(
        {
            "customer_id": pa.array(range(1234), pa.int64()),
            "feature_date": pa.array([day] * 1234, pa.date32()),
            "logins_7d": pa.array([3] * 1234, pa.int64()),
        }
    )
    labels = pa.table(
        {
            "customer_id": pa.array(range(567), pa.int64()),
            "feature_date": pa.array([day - timedelta(days=30)] * 567, pa.date32()),
            "label": pa.array([0, 1] * 283 + [0], pa.int64()),
        }
    )

    db = settings.db_url
    publish_cataloged(store, db, "customer_activity", {day: rows}, "one day", RUN)
    label_day = day - timedelta(days=30)
    publish_cataloged(store, db, "churned_30d", {label_day: labels}, "labels", RUN, "labels")
    with session_scope(settings.db_url) as session:
        register_version(session, "churn", **lineage())
        aliases.set_alias(session, "churn", "champion", 1, "test", "first")
        register_version(
            session,
            "spend",
            **lineage(
                task="regression",
                metric="neg_root_mean_squared_error",
                metrics={"neg_root_mean_squared_error": -41.5, "r2": 0.3},
                feature_versions={"customer_activity": 1},
                features=[{"name": "logins_7d", "dtype": "int64", "group": "customer_activity"}],
                label="spend_next_30d v1 (horizon 30 days)",
                label_group="spend_next_30d",
                label_version=1,
                run_id="spend_training/manual__2026-04-30",
            ),
        )
        session.add(
            PredictionRun(
                run_id=SCORED,
                model_name="churn",
                model_version=1,
                feature_group="customer_activity",
                feature_version=1,
                feature_versions={"customer_activity": 1, "customer_profile": 3},
                as_of_date=date(2026, 4, 30),
                status="succeeded",
                row_count=2168,
                started_at=NOW,
                finished_at=NOW,
                error=None,
                drift_breached=True,
            )
        )
        session.flush()
        session.add(
            DriftResult(
                run_id=SCORED,
                feature="logins_7d",
                kind="feature",
                psi=0.61,
                p_value=1e-9,
                breached=True,
                bins=["< 3", ">= 3", "null"],
                expected=[500, 500, 0],
                observed=[1900, 268, 0],
            )
        )
    app = create_app()
    with TestClient(app):  # the api-server's startup (lifespan) once
        yield app


@pytest.fixture
def client(airflow_app):  # type: ignore[no-untyped-def]
    """Requests as the admin Airflow's login would give a token to."""
    from fastapi.testclient import TestClient

    return TestClient(airflow_app, headers={"Authorization": f"Bearer {token()}"})


@pytest.fixture
def anonymous(airflow_app):  # type: ignore[no-untyped-def]
    """Requests with no token and no session cookie, following no redirect."""
    from fastapi.testclient import TestClient

    return TestClient(airflow_app, follow_redirects=False)


PAGES = [
    "/fti/",
    "/fti/?page=1&per_page=10",
    "/fti/features/customer_activity/1",
    "/fti/models/churn/1",
    "/fti/models/churn/metrics",
    "/fti/models/churn/realized",
    "/fti/static/fti.css",
    "/fti/static/fti.js",
    f"/fti/drift?run_id={quote(SCORED, safe='')}",
    "/fti/docs",
    "/fti/redoc",
    "/fti/openapi.json",
    "/fti/health",
    "/fti/health?now=2026-05-03T00:00&nights=3",
]
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
# The forms that change the champion (posted from the model version page).
POSTS = ["/fti/models/churn/1/promote", "/fti/models/churn/1/rollback"]


def test_every_fti_route_is_listed_here(airflow_app) -> None:  # type: ignore[no-untyped-def]
    """PAGES covers each route of the plugin app, so each is checked for the login below."""
    from fastapi import FastAPI
    from starlette.routing import Mount

    (fti,) = (r.app for r in airflow_app.routes if isinstance(r, Mount) and r.path == "/fti")
    assert isinstance(fti, FastAPI)
    routes = {str(getattr(route, "path", "")) for route in fti.routes}
    listed = {page.split("?")[0].removeprefix("/fti") for page in PAGES + POSTS}
    listed -= {"/static/fti.js"}
    generic = {
        "/static/{name}": "/static/fti.css",
        "/models/{name}/realized": "/models/churn/realized",
        "/features/{group}/{version}": "/features/customer_activity/1",
        "/models/{name}/{version}": "/models/churn/1",
        "/models/{name}/metrics": "/models/churn/metrics",
        "/models/{name}/{version}/promote": "/models/churn/1/promote",
        "/models/{name}/{version}/rollback": "/models/churn/1/rollback",
    }
    assert {generic.get(route, route) for route in routes} == listed


def test_a_page_without_a_login_is_refused(anonymous) -> None:  # type: ignore[no-untyped-def]
    assert anonymous.get("/api/v2/dags").status_code == 401
    for page in PAGES:
        # A script: 401, as Airflow's own API answers, and nothing of fti's data.
        response = anonymous.get(page)
        assert response.status_code == 401, (page, response.text)
        assert response.json() == {"detail": "Not authenticated"}
        # A browser: to Airflow's login (what its UI uses), coming back to this page afterwards.
        response = anonymous.get(page, headers=HTML)
        assert response.status_code == 303, (page, response.text)
        back = quote(page, safe="")
        assert response.headers["location"] == f"/api/v2/auth/login?next={back}"
        assert "customer_activity" not in response.text
        # Airflow accepts the way back and forwards to its auth manager's login page.
        login = anonymous.get(response.headers["location"])
        assert login.status_code == 307, (page, login.text)
        assert login.headers["location"] == f"/auth/login?next={back}"
    for form in POSTS:
        response = anonymous.post(form, data={"reason": "r", "token": "t"})
        assert response.status_code == 401, (form, response.text)


def test_a_page_is_served_with_a_token_or_the_session_cookie(airflow_app) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    viewer = token(role="viewer", username="someone")
    for client in (
        TestClient(airflow_app, headers={"Authorization": f"Bearer {viewer}"}),
        TestClient(airflow_app, cookies={"_token": viewer}),  # what the UI's login sets
    ):
        for page in PAGES:
            response = client.get(page, headers=HTML)
            assert response.status_code == 200, (page, response.text)
            if page.startswith("/fti/openapi"):
                assert "/models/{name}/{version}" in response.json()["paths"]
            elif page.startswith("/fti/static/"):
                assert response.headers["content-type"].startswith(("text/css", "text/javascript"))
            else:
                assert response.headers["content-type"].startswith("text/html"), page


def test_the_way_to_the_login_is_under_the_base_url(anonymous, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Behind ``[api] base_url = https://host/airflow/``, whether or not a proxy strips the
    prefix, the browser goes to that Airflow's login and back to the page's public path."""
    import airflow.api_fastapi.app

    monkeypatch.setattr(airflow.api_fastapi.app, "API_ROOT_PATH", "/airflow/")
    response = anonymous.get("/fti/models/churn/1?x=1", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/airflow/api/v2/auth/login?next=%2Fairflow%2Ffti%2Fmodels%2Fchurn%2F1%3Fx%3D1"
    )


@pytest.mark.parametrize(
    ("credential", "status"),
    [
        (lambda: token(seconds=-3600), 401),  # expired an hour ago
        (lambda: forged(), 403),  # an admin's claims, another key
        (lambda: forged({"role": "admin", "sub": "intruder"}), 403),
        (lambda: "not-a-jwt", 403),
    ],
    ids=["expired", "forged", "forged-user", "garbage"],
)
def test_a_forged_or_expired_token_is_refused(airflow_app, credential, status: int) -> None:  # type: ignore[no-untyped-def]
    """Refused with the status Airflow's API gives the same token, as a header or a cookie."""
    from fastapi.testclient import TestClient

    value = credential()
    for client in (
        TestClient(airflow_app, headers={"Authorization": f"Bearer {value}"}),
        TestClient(airflow_app, cookies={"_token": value}, follow_redirects=False),
    ):
        assert client.get("/api/v2/dags").status_code == status
        for page in PAGES:
            response = client.get(page)
            assert response.status_code == status, (page, response.text)
            assert "customer_activity" not in response.text
    # A browser with a stale or forged session logs in again.
    browser = TestClient(airflow_app, cookies={"_token": value}, follow_redirects=False)
    response = browser.get("/fti/models/churn/1", headers=HTML)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/api/v2/auth/login?next=")


def test_an_explicit_token_wins_over_the_session_cookie(airflow_app) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    client = TestClient(
        airflow_app, cookies={"_token": token()}, headers={"Authorization": f"Bearer {forged()}"}
    )
    assert client.get("/fti/").status_code == client.get("/api/v2/dags").status_code == 403


def test_a_user_without_access_to_the_ui_gets_403(airflow_app) -> None:  # type: ignore[no-untyped-def]
    """Authenticated, but the auth manager allows no view (a simple auth manager user without
    a role): 403, and no redirect to the login page for a browser (that would loop)."""
    from fastapi.testclient import TestClient

    client = TestClient(
        airflow_app, headers={"Authorization": f"Bearer {token(role=None)}"}, follow_redirects=False
    )
    for page in PAGES:
        response = client.get(page)
        assert response.status_code == 403, (page, response.text)
        assert response.json() == {"detail": "Forbidden"}
        assert client.get(page, headers=HTML).status_code == 403
    for form in POSTS:
        assert client.post(form, data={"reason": "r", "token": "t"}).status_code == 403


def test_fti_page_lists_feature_versions_models_and_prediction_runs(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    # Feature and label groups, each with its kind; counts for people, hashes shortened.
    groups = {row[0]: row for row in table_rows(text, "Feature and label group versions")}
    assert groups["customer_activity"][1:5] == ["features", "v1", "1,234", "1"]
    assert groups["churned_30d"][1:4] == ["labels", "v1", "567"]
    assert groups["churned_30d"][5] == "2026-03-31 \u2192 2026-03-31"
    assert len(groups["churned_30d"][6]) == 10  # the DVC md5, its first 10 characters
    # Each model with its own task and metric: no column assumes roc_auc.
    assert table_headers(text, "Model versions") == [
        "model",
        "version",
        "aliases",
        "task",
        "metric",
        "holdout value",
        "feature versions",
        "label version",
        "#",
        "training window",
        "created",
        "run",
        "owner",
    ]
    models = {row[0]: row for row in table_rows(text, "Model versions")}
    assert models["churn"][:9] == [
        "churn",
        "v1",
        "champion",
        "binary",
        "roc_auc",
        "0.8123",
        "customer_activity v1 customer_profile v3",
        "churned_30d v2",
        "2",
    ]
    assert models["spend"][:9] == [
        "spend",
        "v1",
        "",
        "regression",
        "neg_root_mean_squared_error",
        "\u221241.5",  # 4 significant digits, a real minus
        "customer_activity v1",
        "spend_next_30d v1",
        "1",
    ]
    assert models["churn"][9] == "2026-01-01 \u2192 2026-03-31"
    assert models["spend"][11] == "spend_training/manual__2026-04-30"
    # Each metric says which way is better (to a screen reader too).
    assert '<span class="dir" title="higher is better">' in text
    # The prediction run, with every group version it read.
    (scored,) = table_rows(text, "Prediction runs")
    assert scored[:6] == [
        SCORED,
        "churn v1",
        "customer_activity v1 customer_profile v3",
        "2026-04-30",
        "succeeded",
        "2,168",
    ]
    # Lineage links to the Airflow run page (the whole window), run id URL-encoded; versions
    # link to their pages.
    tree = html_text.parse(text)
    hrefs = {a.attrs["href"]: a for a in tree.find_all(tag="a") if "href" in a.attrs}
    airflow_run = "/dags/churn_feature_pipeline/runs/scheduled__2026-04-30T00%3A00%3A00%2B00%3A00"
    assert hrefs[airflow_run].attrs["target"] == "_top"
    assert "/dags/spend_training/runs/manual__2026-04-30" in hrefs
    assert {"features/customer_profile/3", "features/churned_30d/2", "models/churn/1"} <= set(hrefs)
    # Every model at a glance: its champion and that version's figure.
    cards = {card.find(cls="label").text(): card.text() for card in tree.find_all(cls="stat")}
    assert cards["churn 1 version"].startswith("churn 1 version 0.8123 roc_auc champion v1"), cards


def test_plugin_adds_a_navigation_entry(client) -> None:  # type: ignore[no-untyped-def]
    from airflow import plugins_manager

    info = {p["name"]: p for p in plugins_manager.get_plugin_info()}
    view = info["fti"]["external_views"][0]
    assert (view["href"], view["destination"], view["url_route"]) == ("/fti/", "nav", "fti")


def test_model_page_shows_lineage_and_alias_history(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/models/churn/1")
    assert page.status_code == 200
    metrics = html_text.definitions(html_text.section(page.text, "metrics"))
    assert metrics == {"roc_auc": "0.8123 gate", "log_loss": "0.41"}  # the gate's metric first
    lineage = html_text.definitions(html_text.section(page.text, "lineage"))
    assert lineage["feature groups"] == "customer_activity v1 customer_profile v3"
    assert lineage["label"] == "churned_30d v2"
    assert lineage["training window"] == "2026-01-01 \u2192 2026-03-31"
    assert lineage["rows"] == "1,000 training, 300 holdout"
    assert lineage["parameters"] == "max iter 150"  # a dict as a key/value list
    assert lineage["sha256"] == "0" * 10  # shortened; the copy button holds the whole
    assert f'data-copy="{"0" * 64}"' in page.text
    assert lineage["training run"] == "churn_training/manual__2026-04-30"
    # The features as chips, grouped by their group (with its version and TTL).
    features = html_text.section(page.text, "features").text()
    assert features == (
        "Features customer_activity v1 1 feature logins_7d "
        "customer_profile v3 1 feature, rows up to 7 days old plan"
    )
    title = html_text.parse(page.text).find(cls="title-row").text()
    assert title == "churn v1 champion binary v1"  # its aliases and task; the versions
    history = table_rows(page.text, "Alias history")
    assert [row[:5] for row in history] == [["champion", "\u2013", "v1", "test", "first"]]
    # Its prediction runs, each with its drift report.
    (run,) = html_text.table(page.text, "version-runs-table")
    assert run[:5] == [
        SCORED,
        "churn v1",
        "customer_activity v1 customer_profile v3",
        "2026-04-30",
        "succeeded",
    ]
    spend = client.get("/fti/models/spend/1").text
    assert html_text.definitions(html_text.section(spend, "metrics")) == {
        "neg_root_mean_squared_error": "\u221241.5 gate",
        "r2": "0.3",
    }
    assert 'href="models/churn/1"' in client.get("/fti/").text
    missing = client.get("/fti/models/churn/9")
    assert missing.status_code == 404
    assert "model 'churn' has no version 9" in html_text.text(missing.text)


def test_feature_version_page_shows_schema_and_statistics(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/features/customer_activity/1")
    assert page.status_code == 200
    # logins_7d is 3 on all 1,234 rows: its statistics say so.
    columns = {row[0]: row for row in html_text.table(page.text, "columns-table")}
    assert columns["logins_7d"][:7] == ["logins_7d", "int64", "0", "3", "3", "3", "3"]
    lineage = html_text.definitions(html_text.section(page.text, "lineage"))
    assert (lineage["rows"], lineage["git tag"]) == ("1,234", "customer_activity/v1")
    assert lineage["run"] == RUN
    # Who used it: the model versions trained on it, linked.
    used = html_text.definitions(html_text.section(page.text, "used"))
    assert used["model versions"] == "churn v1 spend v1"
    assert 'href="models/spend/1"' in page.text
    assert 'href="features/customer_activity/1"' in client.get("/fti/").text
    labels = html_text.definitions(
        html_text.section(client.get("/fti/features/churned_30d/1").text, "used")
    )
    assert labels["model versions"] == "no model version was trained on it"  # churn reads v2
    assert client.get("/fti/features/customer_activity/9").status_code == 404


def test_drift_and_metrics_pages_show_charts(client) -> None:  # type: ignore[no-untyped-def]
    index = client.get("/fti/").text
    assert 'href="drift?run_id=churn_inference%2Fmanual__2026-04-30"' in index
    assert "breached" in index and "models/churn/metrics" in index
    drift = client.get("/fti/drift", params={"run_id": SCORED})
    assert drift.status_code == 200
    assert "Over the PSI threshold 0.2: logins_7d" in drift.text
    assert charts(drift.text) == 2  # PSI bars + one histogram
    assert html_text.table(drift.text, "drift-table") == [
        ["logins_7d", "feature", "0.61", "1\u00d710\u207b\u2079", "yes"]
    ]
    # Back to the model version and on to the Airflow run.
    assert 'href="models/churn/1"' in drift.text
    metrics = client.get("/fti/models/churn/metrics")
    assert metrics.status_code == 200 and charts(metrics.text) == 1
    assert html_text.table(metrics.text, "metrics-table")[0][:5] == [
        "v1",
        "champion",
        "yes",
        "0.8123",
        "0.41",
    ]
    assert client.get("/fti/drift", params={"run_id": "nope"}).status_code == 404
    assert client.get("/fti/models/nope/metrics").status_code == 404


def test_the_fti_page_pages_through_thousands_of_runs(client) -> None:  # type: ignore[no-untyped-def]
    from fti.settings import get_settings

    with session_scope(get_settings().db_url) as session:
        session.add_all(
            PredictionRun(
                run_id=f"cli__infer__{i:05d}",
                model_name="churn",
                model_version=1,
                feature_group="customer_activity",
                feature_version=1,
                as_of_date=date(2026, 4, 30),
                status="succeeded",
                row_count=i,
                started_at=datetime(2026, 5, 1, tzinfo=UTC) + timedelta(minutes=i),
                finished_at=None,
                error=None,
            )
            for i in range(3_000)
        )
    first = client.get("/fti/", params={"per_page": 100})
    assert first.status_code == 200
    shown = html_text.text(first.text)
    assert "cli__infer__02999" in shown and "cli__infer__02899" not in shown
    # A run recorded without its groups' versions shows its spine's.
    assert table_rows(first.text, "Prediction runs")[0][:3] == [
        "cli__infer__02999",
        "churn v1",
        "customer_activity v1",
    ]
    assert "page 1 of 31" in first.text and "?page=2&amp;per_page=100" in first.text
    last = client.get("/fti/", params={"page": 31, "per_page": 100}).text
    assert SCORED in html_text.text(last)  # the oldest run
    assert "older" not in last


# ---- changing the champion from the model version page ----------------------------------------
ORIGIN = "http://testserver"  # the TestClient's own origin


def browser_session(app, role: str, username: str):  # type: ignore[no-untyped-def]
    """A browser logged in to the UI: the session cookie only, redirects not followed."""
    from fastapi.testclient import TestClient

    return TestClient(app, cookies={"_token": token(role, username)}, follow_redirects=False)


def form_token(page: str, action: str) -> str:
    """The hidden CSRF token of the form posting to ``action`` on ``page``."""
    form = re.search(
        rf'<form method="post" action="models/churn/{re.escape(action)}".*?</form>', page, re.S
    )
    assert form, page
    found = re.search(r'name="token" value="([0-9a-f]+)"', form.group(0))
    assert found, form.group(0)
    return found.group(1)


def champion_of(name: str) -> int | None:
    from fti.settings import get_settings

    with session_scope(get_settings().db_url) as session:
        return aliases.current(session, name, aliases.CHAMPION)


def champion_events(name: str) -> list[tuple[int | None, int, str, str]]:
    from fti.settings import get_settings

    with session_scope(get_settings().db_url) as session:
        return [
            (e.from_version, e.to_version, e.actor, e.reason)
            for e in aliases.history(session, name, aliases.CHAMPION)
        ]


@pytest.fixture
def churn_v2(airflow_app) -> None:  # type: ignore[no-untyped-def]
    """A second churn version, not champion (v1 is)."""
    from fti.settings import get_settings

    with session_scope(get_settings().db_url, write=True) as session:
        assert register_version(session, "churn", **lineage()).version == 2


def test_a_user_makes_a_version_champion_from_its_page(airflow_app, churn_v2) -> None:  # type: ignore[no-untyped-def]
    alice = browser_session(airflow_app, "user", "alice")
    page = alice.get("/fti/models/churn/2")
    assert page.status_code == 200
    assert "v1 is champion." in html_text.text(page.text) and "Make champion" in page.text
    assert "Roll back champion" not in page.text  # v2 is not champion: nothing to roll back
    secret = form_token(page.text, "2/promote")

    response = alice.post(
        "/fti/models/churn/2/promote",
        data={"reason": "  beats v1 on April\n", "token": secret},
        headers={"Origin": ORIGIN},
    )
    # Post/Redirect/Get: back to the page, which reads the recorded change back.
    assert response.status_code == 303, response.text
    assert response.headers["location"].startswith("../2?event=")
    assert champion_of("churn") == 2
    assert champion_events("churn")[-1] == (1, 2, "alice", "beats v1 on April")
    shown = alice.get("/fti/models/churn/2?" + response.headers["location"].split("?")[1])
    assert "Recorded: churn champion v1 -&gt; v2 by alice (beats v1 on April)." in shown.text
    assert table_rows(shown.text, "Alias history")[-1][:5] == [
        "champion",
        "v1",
        "v2",
        "alice",
        "beats v1 on April",
    ]
    assert "v2 is champion (this version)." in shown.text
    assert "Make champion" not in shown.text
    # The same form posted again (a double click, a reload): refused in one line, no change.
    again = alice.post(
        "/fti/models/churn/2/promote",
        data={"reason": "again", "token": secret},
        headers={"Origin": ORIGIN},
    )
    assert again.status_code == 409
    assert "Not changed: churn v2 is already champion." in again.text
    assert '<a href="models/churn/2">' in again.text  # back to the page the form was on
    assert '<base href="../../../">' in again.text  # from /fti/models/churn/2/promote
    assert "Traceback" not in again.text and len(champion_events("churn")) == 2
    # An unknown version: one line, 404.
    unknown = alice.post(
        "/fti/models/churn/9/promote",
        data={"reason": "why not", "token": secret},
        headers={"Origin": ORIGIN},
    )
    assert unknown.status_code == 404 and "Not changed:" in unknown.text
    assert "churn" in unknown.text and "Traceback" not in unknown.text
    assert champion_of("churn") == 2


def test_a_user_rolls_the_champion_back_from_its_page(airflow_app, churn_v2) -> None:  # type: ignore[no-untyped-def]
    bob = browser_session(airflow_app, "op", "bob")
    # v1 has been champion from the start: there is no earlier holder, so no rollback.
    assert "Roll back champion" not in bob.get("/fti/models/churn/1").text
    secret = form_token(bob.get("/fti/models/churn/2").text, "2/promote")
    promoted = bob.post(
        "/fti/models/churn/2/promote",
        data={"reason": "try v2", "token": secret},
        headers={"Origin": ORIGIN},
    )
    assert promoted.status_code == 303
    page = bob.get("/fti/models/churn/2").text
    assert "Roll back champion" in page and "to v1" in page
    assert "Roll back champion" not in bob.get("/fti/models/churn/1").text
    rolled = bob.post(
        "/fti/models/churn/2/rollback",
        data={"reason": "v2 misbehaves", "token": form_token(page, "2/rollback")},
        headers={"Origin": ORIGIN},
    )
    assert rolled.status_code == 303, rolled.text
    assert champion_of("churn") == 1
    assert champion_events("churn")[-1] == (2, 1, "bob", "v2 misbehaves")
    shown = bob.get("/fti/models/churn/2?" + rolled.headers["location"].split("?")[1]).text
    assert "Recorded: churn champion v2 -&gt; v1 by bob (v2 misbehaves)." in shown
    # The rollback form posted again (from the now stale page) does not roll back twice.
    twice = bob.post(
        "/fti/models/churn/2/rollback",
        data={"reason": "again", "token": form_token(page, "2/rollback")},
        headers={"Origin": ORIGIN},
    )
    assert twice.status_code == 409
    assert "Not changed: churn v2 is not champion (v1 is champion now)" in twice.text
    assert champion_of("churn") == 1 and len(champion_events("churn")) == 3


def test_a_viewer_sees_no_form_and_cannot_post_one(airflow_app, churn_v2) -> None:  # type: ignore[no-untyped-def]
    viewer = browser_session(airflow_app, "viewer", "vera")
    page = viewer.get("/fti/models/churn/2")
    assert page.status_code == 200 and "v1 is champion." in html_text.text(page.text)
    assert "<form" not in page.text and "Make champion" not in page.text
    # Even with a valid token for her own session and the right origin: 403.
    secret = hmac_token_of(airflow_app, viewer, "/fti/models/churn/2")
    for action in ("promote", "rollback"):
        response = viewer.post(
            f"/fti/models/churn/2/{action}",
            data={"reason": "let me", "token": secret},
            headers={"Origin": ORIGIN},
        )
        assert response.status_code == 403, response.text
        assert "Forbidden" in response.text and "Traceback" not in response.text
    assert champion_of("churn") == 1 and len(champion_events("churn")) == 1


def hmac_token_of(app, client, path: str) -> str:  # type: ignore[no-untyped-def]
    """The token the plugin puts in a form for ``client``'s session cookie (a viewer sees no
    form to read it from), computed by the plugin's own function."""
    from starlette.requests import Request
    from starlette.routing import Mount

    from fti.pages.auth import form_token as token_for

    (fti,) = (r.app for r in app.routes if isinstance(r, Mount) and r.path == "/fti")
    cookie = f"_token={client.cookies['_token']}".encode()
    request = Request(
        {"type": "http", "method": "GET", "path": path, "headers": [(b"cookie", cookie)]}
    )
    return token_for(fti.state.auth, request)


def test_a_form_from_another_site_or_without_the_token_is_refused(
    airflow_app, churn_v2, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import airflow.api_fastapi.app

    alice = browser_session(airflow_app, "user", "alice")
    secret = form_token(alice.get("/fti/models/churn/2").text, "2/promote")
    refused = [
        ({"Origin": "https://evil.example"}, secret, "posted from another site"),
        ({"Origin": "http://testserver.evil.example"}, secret, "posted from another site"),
        ({"Origin": "https://testserver"}, secret, "posted from another site"),  # other scheme
        ({"Referer": "https://evil.example/fti/models/churn/2"}, secret, "another site"),
        ({"Origin": "null"}, secret, "without an Origin or Referer"),  # a sandboxed frame
        ({}, secret, "without an Origin or Referer"),
        ({"Origin": ORIGIN}, "", "token does not match"),
        ({"Origin": ORIGIN}, "0" * 64, "token does not match"),
        # The token of another session (the admin's page) does not fit alice's session.
        (
            {"Origin": ORIGIN},
            hmac_token_of(airflow_app, browser_session(airflow_app, "admin", "admin"), "/"),
            "token does not match",
        ),
    ]
    for headers, value, why in refused:
        response = alice.post(
            "/fti/models/churn/2/promote",
            data={"reason": "csrf", "token": value},
            headers=headers,
        )
        assert response.status_code == 403, (headers, response.text)
        assert why in response.text, (headers, response.text)
    # A reason is required (the browser asks for it too): 400, one line.
    for reason in ("", "   \n "):
        response = alice.post(
            "/fti/models/churn/2/promote",
            data={"reason": reason, "token": secret},
            headers={"Origin": ORIGIN},
        )
        assert response.status_code == 400
        assert "a reason is required" in response.text
    response = alice.post(
        "/fti/models/churn/2/promote", data={"token": secret}, headers={"Origin": ORIGIN}
    )
    assert response.status_code == 400
    assert champion_of("churn") == 1 and len(champion_events("churn")) == 1
    # Behind [api] base_url the origin users browse is that URL's, not the request's host.
    monkeypatch.setattr(airflow.api_fastapi.app, "API_BASE_URL", "https://airflow.example.com/")
    response = alice.post(
        "/fti/models/churn/2/promote",
        data={"reason": "from the proxy", "token": secret},
        headers={"Origin": ORIGIN},
    )
    assert response.status_code == 403
    # A same-origin Referer (a browser that sends no Origin) is accepted.
    response = alice.post(
        "/fti/models/churn/2/promote",
        data={"reason": "from the proxy", "token": secret},
        headers={"Referer": "https://airflow.example.com:443/fti/models/churn/2"},
    )
    assert response.status_code == 303, response.text
    assert champion_events("churn")[-1] == (1, 2, "alice", "from the proxy")


# ---- what the real-time service serves ---------------------------------------------------------
def serving_line(page: str) -> str:
    found = re.search(r'<p class="serving">(.*?)</p>', page)
    assert found, page
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1)))


def test_model_page_says_what_fti_serve_serves(client, churn_v2) -> None:  # type: ignore[no-untyped-def]
    from fti.db.tables import ServedPrediction
    from fti.settings import get_settings

    line = serving_line(client.get("/fti/models/churn/2").text)
    assert line == "Served by fti serve: champion → v1."  # nothing served yet
    assert serving_line(client.get("/fti/models/spend/1").text) == (
        "Served by fti serve: champion → none yet."
    )
    served = {
        "feature_group": "customer_activity",
        "feature_version": 1,
        "feature_versions": {"customer_activity": 1},
        "entity_id": "7",
        "prediction": 1,
        "probability": 0.9,
    }
    with session_scope(get_settings().db_url, write=True) as session:
        session.add_all(
            [
                ServedPrediction(
                    request_id="a", served_at=NOW, model_name="churn", model_version=1, **served
                ),
                ServedPrediction(
                    request_id="b",
                    served_at=NOW + timedelta(minutes=5),
                    model_name="churn",
                    model_version=2,
                    **served,
                ),
                ServedPrediction(  # another model's, later
                    request_id="c",
                    served_at=NOW + timedelta(hours=1),
                    model_name="spend",
                    model_version=1,
                    **served,
                ),
            ]
        )
    line = serving_line(client.get("/fti/models/churn/1").text)
    assert line.startswith(
        "Served by fti serve: champion → v1; last served: v2 at 2026-04-30 03:05"
    )
    # A database before migration 0009 (no served_predictions table): the page still works.
    with session_scope(get_settings().db_url, write=True) as session:
        session.execute(text("DROP TABLE served_predictions"))
    page = client.get("/fti/models/churn/1")
    assert page.status_code == 200
    assert serving_line(page.text) == "Served by fti serve: champion → v1."


# ---- the health page --------------------------------------------------------------------------
FRESH_AT = "2026-05-01T06:00"  # 2026-04-29 is due (a day after, at 23:59): the demo holds 04-30
LATE_AT = "2026-05-03T00:00"  # 2026-05-01 is due: a day past what the demo holds


def freshness_rows(client, **params: Any) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    page = client.get("/fti/health", params=params)
    assert page.status_code == 200, page.text
    return {row[1]: row for row in table_rows(page.text, "Freshness")}


def test_health_page_shows_the_freshness_of_every_group_label_group_and_model(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/health", params={"now": FRESH_AT})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    rows = {row[1]: row for row in table_rows(page.text, "Freshness")}
    # Every group, label group and model of the demo's definition, in its order.
    assert [(row[0], row[1], row[2]) for row in rows.values()] == [
        ("features", "customer_activity", "fresh"),
        ("features", "customer_profile", "never"),
        ("labels", "churned_30d", "fresh"),
        ("labels", "spend_next_30d", "never"),
        ("predictions", "churn", "fresh"),
        ("predictions", "spend", "never"),
    ]
    assert rows["customer_activity"][3:6] == ["2026-04-30", "2026-04-29", "2026-04-30 23:59"]
    assert rows["customer_activity"][6:10] == ["6", "–", "v1", ""]  # a day ahead, nothing to do
    assert rows["churned_30d"][3:5] == ["2026-03-31", "2026-03-30"]  # labels lag 30 days
    # What is missing is flagged (a class and the word) with the commands that catch up.
    assert 'data-status="never">never</span>' in page.text
    assert (
        rows["customer_profile"][3] == "–"
        and (
            "backfill create --dag-id churn_feature_pipeline --from-date 2026-01-01 --to-date 2026-04-29"
        )
        in rows["customer_profile"][9]
    )
    assert rows["spend"][9] == "fti infer --model spend --date 2026-04-29"
    assert "Unhealthy" in page.text
    # The index page links here.
    assert 'href="health"' in client.get("/fti/").text


def test_realized_performance_on_the_model_page_and_the_health_page(client) -> None:  # type: ignore[no-untyped-def]

    settings = make_settings(Path(os.environ["FTI_HOME"]))

    def verdict(page: str) -> str:
        return re.findall(r"Unhealthy: \d+ problem", page)[0]

    health = client.get("/fti/health", params={"now": FRESH_AT}).text
    before = verdict(health)
    realized = {row[0]: row for row in table_rows(health, "Realized performance of the champions")}
    assert realized["churn"][1:4] == ["v1", "–", "none yet"]
    assert "No realized metrics recorded for" in client.get("/fti/models/churn/1").text
    # churn v1 (a real classifier's artifact: its classes say what the stored 0/1 mean) scores
    # 400 of the 567 entities the fixture's labels of 2026-03-31 cover, then the labels are
    # recorded: entity i is labelled i % 2; the 200 negatives score 0.6, half the positives
    # 0.7, the other half 0.5: ROC AUC 0.5 over the 400 rows.
    from sklearn.linear_model import LogisticRegression
    from sqlalchemy import update

    from fti.db.tables import ModelVersion
    from fti.inference.write import SCORE_SCHEMA, Slice, write_slice
    from fti.monitoring.realized import record_realized
    from fti.training.artifacts import save_artifact

    day = date(2026, 3, 31)
    path, digest = save_artifact(
        LogisticRegression().fit([[0.0], [1.0]], [0, 1]), settings.artifacts_path
    )
    with session_scope(settings.db_url, write=True) as session:
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.name == "churn", ModelVersion.version == 1)
            .values(artifact_uri=str(path), artifact_sha256=digest)
        )
    probabilities = [0.6 if i % 2 == 0 else 0.7 if i % 4 == 1 else 0.5 for i in range(400)]
    scores = {
        "entity_id": [str(i) for i in range(400)],
        "prediction": [int(p >= 0.5) for p in probabilities],
        "probability": probabilities,
    }
    schema = pa.schema([SCORE_SCHEMA.field(name) for name in scores])
    piece = Slice("churn", 1, "customer_activity", 1, day, "realized-test", NOW)
    write_slice(settings.db_url, piece, [pa.RecordBatch.from_pydict(scores, schema=schema)])
    (recorded,) = record_realized(settings, "churned_30d", 1, [day])
    assert (recorded["rows"], recorded["value"]) == (400, pytest.approx(0.5))
    # params.yaml's monitor.realized: 28 days, 100 rows, holdout margin 0.05 -> below 0.7623.
    health = client.get("/fti/health", params={"now": FRESH_AT}).text
    realized = {row[0]: row for row in table_rows(health, "Realized performance of the champions")}
    assert realized["churn"] == [
        "churn",
        "v1",
        "roc_auc 0.5",  # the 400 rows' AUC
        "below",
        "2026-03-31 \u2192 2026-03-31",
        "400",
        "0.8123",
        "\u2013",  # no owner: the model was registered outside any project
    ]
    assert 'href="models/churn/1#realized"' in health
    assert 'data-status="below">below</span>' in health
    # It informs: the verdict counts the same problems as before (the never-published ones).
    assert verdict(health) == before
    page = client.get("/fti/models/churn/1").text
    section = page.split('<h2 id="realized">Realized performance</h2>', 1)[1]
    assert charts(section) >= 2  # the metric over dates, the reliability
    assert "2026-03-31" in section and "0.8123" in section


def test_the_index_and_health_pages_show_owners_and_filter_by_project(client) -> None:  # type: ignore[no-untyped-def]
    from fti.ownership import claim
    from fti.settings import get_settings

    with session_scope(get_settings().db_url, write=True) as session:
        for kind, name, project in [
            ("features", "customer_activity", "churn"),
            ("labels", "churned_30d", "churn"),
            ("model", "churn", "churn"),
            ("model", "spend", "b"),
        ]:
            claim(session, kind, name, project, "r")
    every = client.get("/fti/").text
    owners = {row[0]: row[-1] for row in table_rows(every, "Model versions")}
    assert owners == {"churn": "churn", "spend": "b"}
    only_b = client.get("/fti/", params={"project": "b"}).text
    assert [row[0] for row in table_rows(only_b, "Model versions")] == ["spend"]
    assert table_rows(only_b, "Feature and label group versions") == [["none yet"]]  # b owns none
    assert table_rows(only_b, "Prediction runs") == [["none yet"]]  # of churn, not b's
    health = freshness_rows(client, now=FRESH_AT, project="churn")
    assert {name: row[-1] for name, row in health.items()} == {
        "customer_activity": "churn",
        "churned_30d": "churn",
        "churn": "churn",
    }
    assert "--project churn" in client.get("/fti/health", params={"project": "churn"}).text


def test_health_page_flags_a_group_a_day_late_as_stale(client) -> None:  # type: ignore[no-untyped-def]
    rows = freshness_rows(client, now=LATE_AT)
    assert rows["customer_activity"][2:6] == [
        "stale",
        "2026-04-30",
        "2026-05-01",
        "2026-05-02 23:59",
    ]
    assert rows["customer_activity"][7] == "1"  # days behind
    assert rows["customer_activity"][6] == "48"  # hours since the end of 2026-04-30
    assert "2026-05-01" in rows["customer_activity"][9]  # the night that catches up
    assert (rows["churned_30d"][2], rows["churn"][2]) == ("stale", "stale")
    page = client.get("/fti/health", params={"now": LATE_AT}).text
    assert 'class="badge state-failed" data-status="stale">stale</span>' in page  # Airflow's red
    # Judged a day earlier the same group is fresh: the page judges at ?now=, not the clock.
    assert freshness_rows(client, now=FRESH_AT)["customer_activity"][2] == "fresh"
    # An offset is honoured (06:00+09:00 is 21:00 UTC the day before, 04-29 still due).
    assert freshness_rows(client, now="2026-05-02T06:00+09:00")["customer_activity"][2] == "fresh"


def test_health_page_refuses_a_moment_that_is_not_iso(client) -> None:  # type: ignore[no-untyped-def]
    response = client.get("/fti/health", params={"now": "yesterday"})
    assert response.status_code == 400
    assert "'yesterday' is not an ISO date and time" in html.unescape(response.text)
    assert client.get("/fti/health", params={"nights": 0}).status_code == 422


def test_health_page_judges_on_the_newest_raw_date_with_now_data(client) -> None:  # type: ignore[no-untyped-def]
    from fti.settings import get_settings

    refused = client.get("/fti/health", params={"now": "data"})
    assert refused.status_code == 400 and "holds no raw file of events, crm" in refused.text
    folder = get_settings().raw_path / "events"
    folder.mkdir(parents=True)
    (folder / "2026-04-30.csv").write_text("")  # only its name counts: the newest raw date
    rows = freshness_rows(client, now="data")
    # 2026-04-30 is due, and nothing later, whenever the page is read.
    assert rows["customer_activity"][2:5] == ["fresh", "2026-04-30", "2026-04-30"]
    assert rows["churned_30d"][2:5] == ["fresh", "2026-03-31", "2026-03-31"]
    page = client.get("/fti/health", params={"now": "data"}).text
    assert "on the data: nothing after the newest raw date" in page
    assert "fti monitor health --now data" in page and 'value="data"' in page


@pytest.fixture
def nights(airflow_app) -> None:  # type: ignore[no-untyped-def]
    """Two nights of validation and scoring: one raw file rejected, one scoring run failed
    (then scored again by a mapped task), one failed and never resolved."""
    from fti.settings import get_settings

    def validated(day: date, file: str, read: int | None, bad: int, **extra: Any) -> ValidationRun:
        return ValidationRun(
            source="events",
            file=file,
            logical_date=day,
            rows_read=read,
            rows_accepted=(read or 0) - bad,
            rows_quarantined=bad,
            run_id=f"churn_feature_pipeline/scheduled__{day}T00:00:00+00:00",
            created_at=datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC),
            **extra,
        )

    def scored(run_id: str, model: str, day: date, status: str, rows: int, **extra: Any):  # type: ignore[no-untyped-def]
        return PredictionRun(
            run_id=run_id,
            model_name=model,
            model_version=1,
            as_of_date=day,
            status=status,
            row_count=rows,
            started_at=extra["finished_at"] - timedelta(minutes=5),
            **extra,
        )

    april_28, april_29 = date(2026, 4, 28), date(2026, 4, 29)
    with session_scope(get_settings().db_url, write=True) as session:
        session.add_all(
            [
                validated(april_28, "events/2026-04-28.csv", 1000, 12),
                validated(april_29, "events/2026-04-29.csv", 900, 40),
                validated(
                    april_29,
                    "events/2026-04-29-late.csv",
                    None,
                    0,
                    status="rejected",
                    reason="not a CSV file\nsecond line",
                ),
                scored(
                    "spend_inference/scheduled__2026-04-29",
                    "spend",
                    april_29,
                    "failed",
                    0,
                    error="FeatureError: customer_activity has no 2026-04-29\nTraceback ...",
                    finished_at=NOW - timedelta(days=1),
                    airflow_run_id="scheduled__2026-04-29",
                ),
                scored(
                    "spend_inference/manual__2026-04-30__1",  # the second mapped task's run
                    "spend",
                    april_29,
                    "succeeded",
                    777,
                    finished_at=NOW,
                    airflow_run_id="manual__2026-04-30",
                ),
                scored(
                    "cli__infer__2026-04-28",
                    "churn",
                    april_28,
                    "failed",
                    0,
                    error="no champion",
                    finished_at=NOW - timedelta(days=2),
                ),
            ]
        )


def test_health_page_lists_the_failures_of_the_last_nights(client, nights) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/health", params={"now": FRESH_AT}).text
    assert '<h2 id="failures">Failures of the last 7 nights</h2>' in page
    failed = table_rows(page, "Failures")
    assert [row[:6] for row in failed] == [
        [
            "2026-04-29",
            "validation run",
            "events",
            "churn_feature_pipeline/scheduled__2026-04-29T00:00:00+00:00",
            "events/2026-04-29-late.csv: not a CSV file",  # one line
            "unresolved",
        ],
        [
            "2026-04-29",
            "prediction run",
            "spend",
            "spend_inference/scheduled__2026-04-29",
            "FeatureError: customer_activity has no 2026-04-29",
            "resolved",  # scored again later
        ],
        [
            "2026-04-28",
            "prediction run",
            "churn",
            "cli__infer__2026-04-28",
            "no champion",
            "unresolved",
        ],
    ]
    assert failed[0][6] == (  # the feature DAG of the run that validated it: its project's
        "fix or replace the file, then rerun the night: airflow backfill create --dag-id "
        "churn_feature_pipeline --from-date 2026-04-29 --to-date 2026-04-29"
    )
    assert failed[2][6] == "fix the cause, then rerun: fti infer --model churn --date 2026-04-28"
    assert failed[1][6] == ""  # nothing to do
    # Runs link to their Airflow runs; a run from the CLI links nowhere.
    assert 'href="/dags/spend_inference/runs/scheduled__2026-04-29"' in page
    assert 'href="/dags/cli__infer__2026-04-28' not in page
    # One night back from 2026-05-01 reaches 2026-04-30 only.
    assert table_rows(
        client.get("/fti/health", params={"now": FRESH_AT, "nights": 1}).text, "Failures"
    ) == [["none yet"]]


def test_health_page_charts_rows_read_and_scored_per_night(client, nights) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/health", params={"now": FRESH_AT}).text
    assert charts(page) == 2  # one chart each
    run = "churn_feature_pipeline/scheduled__{}T00:00:00+00:00"
    assert table_rows(page, "Rows read and quarantined per night") == [
        ["2026-04-28", "1,000", "12", run.format("2026-04-28")],
        ["2026-04-29", "900", "40", run.format("2026-04-29")],  # the rejected file read nothing
    ]
    assert table_rows(page, "Rows scored per model per night") == [
        ["2026-04-28", "churn", "failed", "0", "cli__infer__2026-04-28"],
        ["2026-04-29", "spend", "failed", "0", "spend_inference/scheduled__2026-04-29"],
        ["2026-04-29", "spend", "succeeded", "777", "spend_inference/manual__2026-04-30__1"],
        ["2026-04-30", "churn", "succeeded", "2,168", SCORED],
    ]
    # A mapped task's run links to its DAG run (fti's airflow_run_id), not to a '__1' run.
    assert 'href="/dags/spend_inference/runs/manual__2026-04-30"' in page
    assert (
        'href="/dags/churn_feature_pipeline/runs/scheduled__2026-04-28T00%3A00%3A00%2B00%3A00"'
        in page
    )
    # Before the first night: empty charts, still served.
    early = client.get("/fti/health", params={"now": "2026-04-20T00:00", "nights": 2}).text
    assert charts(early) == 2
    assert table_rows(early, "Rows scored per model per night") == [["none yet"]]


def test_the_health_page_is_in_the_browse_menu(client) -> None:  # type: ignore[no-untyped-def]
    from airflow import plugins_manager

    info = {p["name"]: p for p in plugins_manager.get_plugin_info()}
    views = {v["url_route"]: v for v in info["fti"]["external_views"]}
    assert (views["fti-health"]["href"], views["fti-health"]["category"]) == (
        "/fti/health",
        "browse",
    )


# ---- the pipelines' DAG runs on the health page -----------------------------------------------
@pytest.fixture
def served(airflow_app):  # type: ignore[no-untyped-def]
    """The same api-server app under a real uvicorn on a free port (its startup already ran):
    the health page reads the DAG runs from the REST API of the server it runs in."""
    from tests.served_app import served as serve

    with serve(airflow_app, lifespan="off") as url:
        yield url


@pytest.fixture
def failed_runs(airflow_app, dags) -> list[Any]:  # type: ignore[no-untyped-def]
    """fti's feature pipeline run for 2026-04-29 and 2026-04-30 by dag.test(): both fail, as
    this home has no raw files."""
    from tests.dags.conftest import run

    return [
        run(dags["churn_feature_pipeline"], day, "failed")
        for day in (date(2026, 4, 29), date(2026, 4, 30))
    ]


def health_page(url: str, **request: Any) -> str:
    import httpx

    page = httpx.get(f"{url}/fti/health", params={"now": FRESH_AT}, timeout=60, **request)
    assert page.status_code == 200, page.text
    return page.text


def run_rows(page: str, heading: str, dag_runs: list[Any]) -> list[list[str]]:
    """The rows of the table under ``heading`` that show one of ``dag_runs``, in page order."""
    shown = {f"{r.dag_id}/{r.run_id}" for r in dag_runs}
    return [row for row in table_rows(page, heading) if shown & set(row)]


def test_health_page_shows_the_pipelines_runs_from_the_rest_api(served, failed_runs) -> None:  # type: ignore[no-untyped-def]
    page = health_page(served, headers={"Authorization": f"Bearer {token()}"})
    newest, oldest = failed_runs[1], failed_runs[0]
    every = run_rows(page, "Pipeline runs per night", failed_runs)
    assert [row[:5] for row in every] == [  # newest night first
        [
            "2026-04-30",
            "churn_feature_pipeline",
            f"churn_feature_pipeline/{newest.run_id}",
            "manual",
            "failed",
        ],
        [
            "2026-04-29",
            "churn_feature_pipeline",
            f"churn_feature_pipeline/{oldest.run_id}",
            "manual",
            "failed",
        ],
    ]
    assert [row[7:] for row in every] == [["0", "validate_raw_events"]] * 2  # retries, failed
    assert all(row[5] and row[6] for row in every)  # started, duration
    failed = run_rows(page, "Failed DAG runs", failed_runs)
    assert failed == [
        [
            "2026-04-30",
            "churn_feature_pipeline",
            f"churn_feature_pipeline/{newest.run_id}",
            "validate_raw_events",
            "0",
            "unresolved",
        ],
        [
            "2026-04-29",
            "churn_feature_pipeline",
            f"churn_feature_pipeline/{oldest.run_id}",
            "validate_raw_events",
            "0",
            "unresolved",
        ],
    ]
    for dag_run in failed_runs:  # each linked to its page in the Airflow UI
        assert f'href="/dags/churn_feature_pipeline/runs/{quote(dag_run.run_id, safe="")}"' in page
    assert charts(page) == 3  # read, scored, and the runs' durations
    assert "DAG runs are not shown" not in page
    assert "Unhealthy" in page


def test_health_page_reads_the_runs_as_the_viewing_user(served, failed_runs) -> None:  # type: ignore[no-untyped-def]
    """The page sends the user's own token on: a viewer's, or the UI's session cookie."""
    for request in (
        {"headers": {"Authorization": f"Bearer {token('viewer', 'viewer')}"}},
        {"cookies": {"_token": token()}},
    ):
        page = health_page(served, **request)
        assert len(run_rows(page, "Failed DAG runs", failed_runs)) == 2


def test_health_page_says_in_one_line_why_runs_are_missing(
    client, served, failed_runs, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The test client's host (testserver) is no server: the page says so and shows the rest;
    with ``[api] base_url`` naming the served api-server, the page reads the runs there."""
    import airflow.api_fastapi.app

    page = client.get("/fti/health", params={"now": FRESH_AT}).text
    missing = (
        "DAG runs are not shown: cannot reach Airflow's REST API at "
        "http://testserver/api/v2/dags/~/dagRuns/list"
    )
    assert html.unescape(page).count(missing) == 2  # under both runs headings
    assert "set [api] base_url (AIRFLOW__API__BASE_URL) to its URL" in html.unescape(page)
    assert table_rows(page, "Freshness")  # the rest of the page is there
    assert charts(page) == 2

    monkeypatch.setattr(airflow.api_fastapi.app, "API_BASE_URL", f"{served}/")
    page = client.get("/fti/health", params={"now": FRESH_AT}).text
    assert len(run_rows(page, "Failed DAG runs", failed_runs)) == 2
