"""The fti page inside the real Airflow api-server app, served from fti's database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from fti.db.engine import session_scope
from fti.db.tables import DriftResult, PredictionRun
from fti.registry import aliases
from fti.registry.versions import register_version
from fti.store.catalog import record_version
from fti.store.versions import FeatureStore, PublishedVersion
from tests.conftest import make_settings
from tests.integration.test_database import lineage

NOW = datetime(2026, 4, 30, 3, 0, tzinfo=UTC)
RUN = "feature_pipeline/scheduled__2026-04-30T00:00:00+00:00"


@pytest.fixture
def client(tmp_path: Path, monkeypatch):  # type: ignore[no-untyped-def]
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

    def record(published: PublishedVersion) -> None:
        with session_scope(settings.db_url) as session:
            record_version(session, published, {day: rows}, RUN, lambda _: rows)

    store.publish("customer_activity", {day: rows}, "one day", record=record)
    with session_scope(settings.db_url) as session:
        register_version(
            session,
            "churn",
            **lineage(metrics={"roc_auc": 0.8123}, feature_group="customer_activity"),
        )
        aliases.set_alias(session, "churn", "champion", 1, "test", "first")
        session.add(
            PredictionRun(
                run_id="batch_inference_pipeline/manual__2026-04-30",
                model_name="churn",
                model_version=1,
                feature_group="customer_activity",
                feature_version=1,
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
                run_id="batch_inference_pipeline/manual__2026-04-30",
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
    with TestClient(create_app()) as test_client:
        yield test_client


def test_fti_page_lists_feature_versions_models_and_prediction_runs(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    text = page.text
    assert "customer_activity/v1" in text and "1234" in text  # feature version row
    assert "champion" in text and "0.8123" in text  # model with alias and metric
    assert "2168" in text and "succeeded" in text  # prediction run
    # lineage links to the Airflow run page, run id URL-encoded
    assert 'href="/dags/feature_pipeline/runs/scheduled__2026-04-30T00%3A00%3A00%2B00%3A00"' in text


def test_plugin_adds_a_navigation_entry(client) -> None:  # type: ignore[no-untyped-def]
    from airflow import plugins_manager

    info = {p["name"]: p for p in plugins_manager.get_plugin_info()}
    view = info["fti"]["external_views"][0]
    assert (view["href"], view["destination"], view["url_route"]) == ("/fti/", "nav", "fti")


def test_model_page_shows_lineage_and_alias_history(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/models/churn/1")
    assert page.status_code == 200
    for fact in (
        "artifact_sha256",
        "0" * 64,
        "feature_version",
        "train_start",
        "first",
        "champion",
    ):
        assert fact in page.text
    assert 'href="models/churn/1"' in client.get("/fti/").text
    assert client.get("/fti/models/churn/9").status_code == 404


def test_feature_version_page_shows_schema_and_statistics(client) -> None:  # type: ignore[no-untyped-def]
    page = client.get("/fti/features/customer_activity/1")
    assert page.status_code == 200
    # logins_7d is 3 on all 1,234 rows: its statistics say so.
    row = next(r for r in page.text.split("<tr>") if "<td>logins_7d</td>" in r)
    assert [cell.split("</td>")[0] for cell in row.split("<td>")[1:7]] == [
        "logins_7d",
        "int64",
        "0",
        "3",
        "3",
        "3",
    ]
    assert "customer_activity/v1" in page.text and "1234" in page.text
    assert 'href="features/customer_activity/1"' in client.get("/fti/").text
    assert client.get("/fti/features/customer_activity/9").status_code == 404


def test_drift_and_metrics_pages_show_charts(client) -> None:  # type: ignore[no-untyped-def]
    index = client.get("/fti/").text
    assert 'href="drift?run_id=batch_inference_pipeline%2Fmanual__2026-04-30"' in index
    assert "breached" in index and "models/churn/metrics" in index
    drift = client.get(
        "/fti/drift", params={"run_id": "batch_inference_pipeline/manual__2026-04-30"}
    )
    assert drift.status_code == 200
    assert "Over the PSI threshold 0.2: logins_7d" in drift.text
    assert drift.text.count("data:image/png;base64,") == 2  # PSI bars + one histogram
    metrics = client.get("/fti/models/churn/metrics")
    assert (
        metrics.status_code == 200 and "0.8123" in metrics.text and "data:image/png" in metrics.text
    )
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
    assert "cli__infer__02999" in first.text and "cli__infer__02899" not in first.text
    assert "page 1 of 31" in first.text and "?page=2&amp;per_page=100" in first.text
    last = client.get("/fti/", params={"page": 31, "per_page": 100}).text
    assert "batch_inference_pipeline/manual__2026-04-30" in last  # the oldest run
    assert "older" not in last
