"""`fti serve`: scores on request equal batch scores, follows promotions and rollbacks, refuses
what it must (auth, bad requests, skew), answers per entity (not_found, stale); SQLite and
PostgreSQL where the database matters.

One demo home per backend (module scope): the churn demo's history published through
DEMO_END - 1, churn and spend trained and promoted (v1 champions), a weaker churn v2 left
unpromoted, and the online store materialised from the published versions.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, Prediction, ServedPrediction
from fti.pipelines.features import run_features
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.registry import aliases
from fti.registry.versions import get_version, register_version
from fti.serve.app import create_app
from fti.serve.config import ServeConfig, serve_config
from fti.settings import Settings
from tests.conftest import DEMO_DAYS, DEMO_END, _admin_engine, demo_settings

TOKEN = "test-token-" + uuid.uuid4().hex
AUTH = {"Authorization": f"Bearer {TOKEN}"}
AS_OF = DEMO_END - timedelta(days=1)  # the last date published and scored
HANG_GUARD_S = 60.0  # the issue asks for 5 s; a busy CI machine must not fail the test


@dataclass(frozen=True)
class Demo:
    settings: Settings
    as_of: date
    batch: dict[str, dict[str, Any]]  # model: score_batch's summary for as_of


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, demo_raw: Path
) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("serve") / "home"
    name = None
    url = None
    if request.param == "postgresql":
        request.getfixturevalue("postgres_server")
        name = f"fti_test_{uuid.uuid4().hex[:12]}"
        with _admin_engine().connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    s = demo_settings(home, demo_raw, url)
    start = DEMO_END - timedelta(days=DEMO_DAYS - 1)
    run_features(start, AS_OF, "serve-features", s)
    for model in ("churn", "spend"):
        training_set = build_training_set(model, None, None, f"t-{model}", s)
        version = train_model(training_set, f"t-{model}", settings=s)
        assert promote_if_better(training_set, version, f"t-{model}", s)["promoted"]
    weaker = build_training_set("churn", None, None, "t-weaker", s)
    assert train_model(weaker, "t-weaker", {"max_iter": 3, "learning_rate": 0.05}, s) == 2
    materialise(s)
    batch = {
        model: score_batch(model, AS_OF, f"batch-{model}", settings=s)
        for model in ("churn", "spend")
    }
    yield Demo(s, AS_OF, batch)
    if name is not None:
        from fti.db.engine import get_engine

        get_engine(s.db_url).dispose()
        get_engine.cache_clear()
        with _admin_engine().connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def materialise(s: Settings) -> None:
    from fti.online.materialise import materialise_latest

    materialise_latest(s)


def config(**changes: Any) -> ServeConfig:
    return replace(ServeConfig(token=TOKEN, poll_seconds=0.2), **changes)


@pytest.fixture
def client(demo: Demo) -> Iterator[TestClient]:
    app = create_app(demo.settings, config(), today=lambda: demo.as_of + timedelta(days=1))
    with TestClient(app) as c:
        yield c


def predict(client: TestClient | httpx.Client, model: str, body: Any) -> httpx.Response:
    return client.post(f"/models/{model}/predict", json=body, headers=AUTH)


def batch_slice(s: Settings, model: str, as_of: date) -> dict[str, Prediction]:
    with session_scope(s.db_url) as session:
        rows = session.scalars(
            select(Prediction).where(Prediction.model_name == model, Prediction.as_of_date == as_of)
        )
        return {row.entity_id: row for row in rows}


def set_champion(s: Settings, model: str, version: int) -> None:
    with session_scope(s.db_url, write=True) as session:
        aliases.set_alias(session, model, aliases.CHAMPION, version, "test", "test")


def copy_of_churn_v1(s: Settings, **changes: Any) -> int:
    """Register a new churn version: v1's lineage with ``changes``; returns its number."""
    with session_scope(s.db_url, write=True) as session:
        v1 = get_version(session, "churn", 1)
        lineage = {
            c.key: getattr(v1, c.key)
            for c in ModelVersion.__table__.columns
            if c.key not in ("id", "name", "version", "created_at")
        }
        return register_version(session, "churn", **{**lineage, **changes}).version


# ---- parity -----------------------------------------------------------------------------------
def test_served_scores_equal_batch_scores_of_the_same_date(demo: Demo, client: TestClient) -> None:
    s = demo.settings
    for model, columns in (("churn", ("prediction", "probability")), ("spend", ("value",))):
        summary = demo.batch[model]
        batch = batch_slice(s, model, demo.as_of)
        assert len(batch) == summary["rows"] > 50
        entities = sorted(batch)
        response = predict(client, model, {"entities": entities})
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["model"], body["model_version"]) == (model, 1)
        assert len(body["request_id"]) >= 16
        served = {p["entity"]: p for p in body["predictions"]}
        assert [p["entity"] for p in body["predictions"]] == entities
        for entity, row in batch.items():
            answer = served[entity]
            assert {c: answer[c] for c in columns} == {c: getattr(row, c) for c in columns}, entity
            assert answer["feature_versions"] == summary["feature_versions"]
            assert answer["feature_date"] == demo.as_of.isoformat()
            assert answer["stale"] is False
            assert "status" not in answer
        if model == "churn":
            assert set(served[entities[0]]) == {
                "entity",
                "prediction",
                "probability",
                "feature_versions",
                "feature_date",
                "stale",
            }


# ---- per-entity answers -------------------------------------------------------------------------
def test_unknown_entities_are_answered_not_found_in_request_order(
    demo: Demo, client: TestClient
) -> None:
    known = next(iter(batch_slice(demo.settings, "churn", demo.as_of)))
    response = predict(client, "churn", {"entities": ["999999", known, "not-a-number", known]})
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["entity"] for a in answers] == ["999999", known, "not-a-number", known]
    assert answers[0] == {"entity": "999999", "status": "not_found"}
    assert answers[2] == {"entity": "not-a-number", "status": "not_found"}
    assert answers[1] == answers[3] and 0 <= answers[1]["probability"] <= 1


def test_a_request_of_unknown_entities_only_is_answered_not_found(client: TestClient) -> None:
    """No entity held by any group: every answer is not_found (was a 500: an empty join mask)."""
    response = predict(client, "churn", {"entities": ["999999"]})
    assert response.status_code == 200, response.text
    assert response.json()["predictions"] == [{"entity": "999999", "status": "not_found"}]


def test_an_integer_key_is_found_as_the_store_holds_it(demo: Demo, client: TestClient) -> None:
    """ "0494" is 494 to the online store (as `fti features get` reads it): scored the same."""
    known = next(iter(batch_slice(demo.settings, "churn", demo.as_of)))
    response = predict(client, "churn", {"entities": [known, f"00{known}"]})
    assert response.status_code == 200, response.text
    plain, padded = response.json()["predictions"]
    assert padded["entity"] == f"00{known}"
    assert {k: v for k, v in padded.items() if k != "entity"} == {
        k: v for k, v in plain.items() if k != "entity"
    }


def test_features_older_than_the_ttl_are_served_stale_or_refused(demo: Demo) -> None:
    entity = next(iter(batch_slice(demo.settings, "churn", demo.as_of)))
    published = demo.as_of + timedelta(days=1)  # the night after: age 0, the freshest
    answers = {}
    for label, today, policy in (
        ("fresh", published, "serve"),
        ("stale", published + timedelta(days=1), "serve"),  # spine TTL 0: one day late is stale
        ("refused", published + timedelta(days=1), "refuse"),
    ):
        app = create_app(demo.settings, config(stale=policy), today=lambda t=today: t)
        with TestClient(app) as c:
            response = predict(c, "churn", {"entities": [entity]})
        assert response.status_code == 200, response.text
        answers[label] = response.json()["predictions"][0]
    assert answers["fresh"]["stale"] is False
    assert answers["stale"]["stale"] is True
    assert answers["stale"]["probability"] == answers["fresh"]["probability"]
    refused = answers["refused"]
    assert refused["status"] == "stale" and refused["stale"] is True
    assert "probability" not in refused and refused["feature_date"] == demo.as_of.isoformat()


# ---- the skew guard -----------------------------------------------------------------------------
def test_a_model_whose_features_the_online_store_holds_with_other_dtypes_is_refused(
    demo: Demo, client: TestClient
) -> None:
    s = demo.settings
    with session_scope(s.db_url) as session:
        features = get_version(session, "churn", 1).features
    first = features[0]
    skewed = copy_of_churn_v1(s, features=[{**first, "dtype": "float32"}, *features[1:]])
    response = predict(client, "churn", {"entities": ["1"], "alias": str(skewed)})
    assert response.status_code == 503
    error = response.json()["error"]
    assert error.startswith(f"refusing to score churn v{skewed} on online store customer_activity")
    assert f"{first['name']} (trained on float32" in error and "\n" not in error


# ---- bad requests and auth ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "demo", ["sqlite"], indirect=True
)  # HTTP handling does not depend on the database
def test_each_bad_request_is_a_4xx_with_a_one_line_reason(demo: Demo) -> None:
    app = create_app(demo.settings, config(max_entities=3))
    cases: list[tuple[str, Any, int, str]] = [
        ("churn", None, 422, "malformed request: the body is not valid JSON"),
        ("churn", {}, 422, "malformed request: entities: Field required"),
        ("churn", {"entities": "494"}, 422, "malformed request: entities:"),
        ("churn", {"entities": []}, 422, "malformed request: entities:"),
        ("churn", {"entities": [1.5]}, 422, "malformed request: entities.0:"),
        ("churn", {"entities": ["1"], "extra": 1}, 422, "malformed request: extra:"),
        ("churn", {"entities": ["1"], "alias": "no such"}, 422, "malformed request: alias:"),
        ("churn", {"entities": ["1", "2", "3", "4"]}, 413, "4 entities in one request; at most 3"),
        ("nope", {"entities": ["1"]}, 404, "unknown model 'nope'; this service serves: churn"),
        ("churn", {"entities": ["1"], "alias": "gold"}, 404, "model 'churn' has no alias 'gold'"),
        ("churn", {"entities": ["1"], "alias": "99"}, 404, "model 'churn' has no version 99"),
    ]
    with TestClient(app) as c:
        for model, body, status, start in cases:
            if body is None:
                response = c.post(
                    f"/models/{model}/predict",
                    content=b"{not json",
                    headers={**AUTH, "Content-Type": "application/json"},
                )
            else:
                response = predict(c, model, body)
            assert response.status_code == status, (body, response.text)
            assert set(response.json()) == {"error"}, response.text
            message = response.json()["error"]
            assert message.startswith(start), (body, message)
            assert "\n" not in message and "Traceback" not in message
        for path in ("/nowhere", "/models/churn/predict/x"):
            response = c.get(path, headers=AUTH)
            assert response.status_code == 404 and set(response.json()) == {"error"}


@pytest.mark.parametrize(
    "demo", ["sqlite"], indirect=True
)  # authentication does not depend on the database
def test_every_route_but_health_needs_the_token(demo: Demo, client: TestClient) -> None:
    routes = [
        ("GET", "/ready", None),
        ("GET", "/metrics", None),
        ("GET", "/models/churn", None),
        ("POST", "/models/churn/predict", {"entities": ["1"]}),
        ("POST", "/features/customer_activity", {"entities": ["1"]}),
    ]
    wrong = [None, "Bearer " + TOKEN[:-1], "Bearer", "Basic " + TOKEN, TOKEN, f"Bearer {TOKEN}x"]
    for method, path, body in routes:
        for header in wrong:
            headers = {"Authorization": header} if header else {}
            response = client.request(method, path, json=body, headers=headers)
            assert response.status_code == 401, (path, header)
            assert response.headers["WWW-Authenticate"] == "Bearer"
            assert response.json()["error"].endswith("'Authorization: Bearer <FTI_SERVE_TOKEN>'")
        assert client.request(method, path, json=body, headers=AUTH).status_code == 200, path
    assert client.get("/health").json() == {"status": "ok"}


def test_serve_refuses_to_start_without_a_token_unless_told(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from typer.testing import CliRunner

    from fti.cli import app

    monkeypatch.delenv("FTI_SERVE_TOKEN", raising=False)
    result = CliRunner().invoke(app, ["serve"])
    assert result.exit_code == 1
    assert "FTI_SERVE_TOKEN is not set" in result.output and "--insecure-no-token" in result.output
    assert serve_config({}).token is None
    assert serve_config({"FTI_SERVE_TOKEN": TOKEN}).token == TOKEN
    with pytest.raises(Exception, match="FTI_SERVE_STALE='maybe': set it to serve or refuse"):
        serve_config({"FTI_SERVE_STALE": "maybe"})


# ---- feature rows -------------------------------------------------------------------------------
def features(client: TestClient, group: str, body: Any) -> httpx.Response:
    return client.post(f"/features/{group}", json=body, headers=AUTH)


def fti_features_get(s: Settings, group: str, entities: list[str], monkeypatch: Any) -> Any:
    """What `fti features get GROUP ENTITIES --json` prints for ``s``' home."""
    from typer.testing import CliRunner

    from fti.cli import app

    for name in ("home", "db_url", "params_file", "raw_path", "manifest_path"):
        monkeypatch.setenv(f"FTI_{name.upper()}", str(getattr(s, name)))
    done = CliRunner().invoke(app, ["features", "get", group, *entities, "--json"])
    assert done.exit_code == 0, done.output
    return json.loads(done.stdout)


@pytest.mark.parametrize("group", ["customer_activity", "customer_profile"])
def test_feature_rows_are_what_fti_features_get_prints(
    demo: Demo, client: TestClient, group: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    known = sorted(batch_slice(demo.settings, "churn", demo.as_of))[:3]
    entities = [*known, "999999", "not-a-number", f"00{known[0]}", known[1]]
    response = features(client, group, {"entities": entities})
    assert response.status_code == 200, response.text
    body = response.json()
    printed = fti_features_get(demo.settings, group, entities, monkeypatch)
    assert body["rows"] == printed
    assert body["group"] == group and body["version"] == printed[0]["version"] >= 1
    assert [r["entity"] for r in body["rows"]] == entities
    assert [r["found"] for r in body["rows"]] == [True, True, True, False, False, True, True]
    first = body["rows"][0]
    assert first["feature_date"] == demo.as_of.isoformat() and len(first) > 4
    assert {k: v for k, v in body["rows"][5].items() if k != "entity"} == {
        k: v for k, v in first.items() if k != "entity"
    }
    assert body["rows"][3] == {"entity": "999999", "found": False, "version": body["version"]}

    metrics = client.get("/metrics", headers=AUTH).text.splitlines()
    for line in (
        f'fti_serve_feature_entities_total{{group="{group}",outcome="found"}} 5.0',
        f'fti_serve_feature_entities_total{{group="{group}",outcome="not_found"}} 2.0',
        'fti_serve_requests_total{method="POST",route="/features/{group}",status="200"} 1.0',
    ):
        assert line in metrics, line


def test_feature_rows_of_unknown_entities_only_are_not_found(client: TestClient) -> None:
    response = features(client, "customer_activity", {"entities": ["999999", 123456789]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rows"] == [
        {"entity": "999999", "found": False, "version": body["version"]},
        {"entity": "123456789", "found": False, "version": body["version"]},
    ]


@pytest.mark.parametrize(
    "demo", ["sqlite"], indirect=True
)  # HTTP handling does not depend on the database
def test_a_bad_feature_request_is_a_4xx_with_a_one_line_reason(demo: Demo) -> None:
    app = create_app(demo.settings, config(max_entities=3))
    cases: list[tuple[str, Any, int, str]] = [
        ("customer_activity", {}, 422, "malformed request: entities: Field required"),
        ("customer_activity", {"entities": []}, 422, "malformed request: entities:"),
        ("customer_activity", {"entities": ["1"], "alias": "x"}, 422, "malformed request: alias:"),
        ("customer_activity", {"entities": ["1"] * 4}, 413, "4 entities in one request; at most 3"),
        ("churned_30d", {"entities": ["1"]}, 404, "feature group 'churned_30d' is a label group"),
        ("nope", {"entities": ["1"]}, 404, "feature group 'nope' is unknown; this service serves:"),
    ]
    with TestClient(app) as c:
        for group, body, status, start in cases:
            response = features(c, group, body)
            assert response.status_code == status, (group, body, response.text)
            assert set(response.json()) == {"error"}, response.text
            message = response.json()["error"]
            assert message.startswith(start), (body, message)
            assert "\n" not in message
        errors = c.get("/metrics", headers=AUTH).text.splitlines()
        assert 'fti_serve_errors_total{route="/features/{group}",status="404"} 2.0' in errors


# ---- what the service tells operators --------------------------------------------------------------
def test_ready_model_and_metrics_describe_what_is_served(demo: Demo, client: TestClient) -> None:
    ready = client.get("/ready", headers=AUTH)
    assert ready.status_code == 200, ready.text
    models = ready.json()["models"]
    assert {k: v["model_version"] for k, v in models.items()} == {
        "churn@champion": 1,
        "spend@champion": 1,
    }
    shown = client.get("/models/churn", headers=AUTH).json()
    assert shown["served"]["champion"]["model_version"] == 1
    lineage = shown["served"]["champion"]["lineage"]
    assert lineage["aliases"] == ["champion"] and len(lineage["artifact_sha256"]) == 64
    assert client.get("/models/nope", headers=AUTH).status_code == 404

    entity = next(iter(batch_slice(demo.settings, "churn", demo.as_of)))
    assert predict(client, "churn", {"entities": [entity, "999999"]}).status_code == 200
    assert predict(client, "churn", {"entities": []}).status_code == 422
    metrics = client.get("/metrics", headers=AUTH)
    assert metrics.headers["content-type"].startswith("text/plain")
    lines = metrics.text.splitlines()
    expected = [
        'fti_serve_model_version{alias="champion",model="churn"} 1.0',
        'fti_serve_entities_total{model="churn",outcome="scored"} 1.0',
        'fti_serve_entities_total{model="churn",outcome="not_found"} 1.0',
        'fti_serve_requests_total{method="POST",route="/models/{name}/predict",status="200"} 1.0',
        'fti_serve_errors_total{route="/models/{name}/predict",status="422"} 1.0',
        'fti_serve_feature_age_days_bucket{le="0.0",model="churn"} 1.0',
    ]
    for line in expected:
        assert line in lines, line
    assert any(
        line.startswith('fti_serve_request_seconds_count{route="/models/{name}/predict"}')
        for line in lines
    )


def test_served_predictions_are_logged_off_the_request_path(demo: Demo) -> None:
    entities = sorted(batch_slice(demo.settings, "churn", demo.as_of))[:5]
    app = create_app(demo.settings, config(log=True))
    with TestClient(app) as c:
        response = predict(c, "churn", {"entities": [*entities, "999999"]})
        assert response.status_code == 200
    request_id = response.json()["request_id"]
    with session_scope(demo.settings.db_url) as session:  # stopping the service wrote the queue
        rows = session.scalars(
            select(ServedPrediction).where(ServedPrediction.request_id == request_id)
        ).all()
    served = {p["entity"]: p for p in response.json()["predictions"]}
    assert sorted(r.entity_id for r in rows) == sorted(entities)  # not_found is not a prediction
    for row in rows:
        answer = served[row.entity_id]
        assert (row.model_name, row.model_version, row.feature_group) == (
            "churn",
            1,
            "customer_activity",
        )
        assert (row.prediction, row.probability) == (answer["prediction"], answer["probability"])
        assert row.feature_versions == answer["feature_versions"]
        assert row.feature_version == answer["feature_versions"]["customer_activity"]
        assert row.feature_date == demo.as_of and row.stale is answer["stale"]


# ---- following promotions and rollbacks ------------------------------------------------------------
@pytest.fixture
def server(demo: Demo) -> Iterator[str]:
    """The service under a real uvicorn, in a thread, on a free port; its base URL."""
    from tests.served_app import served

    with served(create_app(demo.settings, config(poll_seconds=1.0))) as url:
        yield url


def test_promotion_and_rollback_are_served_without_a_restart(demo: Demo, server: str) -> None:
    s = demo.settings
    entities = sorted(batch_slice(s, "churn", demo.as_of))[:20]
    with httpx.Client(base_url=server, timeout=HANG_GUARD_S) as http:

        def scores(alias: str) -> tuple[int, list[Any]]:
            response = predict(http, "churn", {"entities": entities, "alias": alias})
            assert response.status_code == 200, response.text
            body = response.json()
            return body["model_version"], [p.get("probability") for p in body["predictions"]]

        expected = {version: scores(str(version))[1] for version in (1, 2)}
        assert expected[1] != expected[2]
        assert scores("champion") == (1, expected[1])

        def follow(change: Any, to: int) -> float:
            change()
            start = time.monotonic()
            while True:
                version, probabilities = scores("champion")
                assert probabilities == expected[version]  # one model per request, never a mix
                if version == to:
                    return time.monotonic() - start
                assert time.monotonic() - start < HANG_GUARD_S, f"still v{version}, not v{to}"
                time.sleep(0.02)

        def rollback() -> None:
            with session_scope(s.db_url, write=True) as session:
                aliases.rollback(session, "churn", aliases.CHAMPION, "test", "test")

        promoted = follow(lambda: set_champion(s, "churn", 2), 2)
        rolled_back = follow(rollback, 1)
    print(f"alias change served after: promotion {promoted:.2f} s, rollback {rolled_back:.2f} s")


def test_a_version_whose_artifact_fails_its_check_is_not_swapped_in(
    demo: Demo, tmp_path: Path
) -> None:
    s = demo.settings
    with session_scope(s.db_url) as session:
        artifact = Path(get_version(session, "churn", 1).artifact_uri)
    tampered = tmp_path / "tampered.skops"
    tampered.write_bytes(artifact.read_bytes() + b"x")
    bad = copy_of_churn_v1(s, artifact_uri=str(tampered))
    app = create_app(s, config())
    try:
        with TestClient(app) as c:
            set_champion(s, "churn", bad)
            app.state.holder.refresh()  # the poll, now
            entity = next(iter(batch_slice(s, "churn", demo.as_of)))
            response = predict(c, "churn", {"entities": [entity]})
            assert response.json()["model_version"] == 1  # the old version keeps answering
            not_served = c.get("/ready", headers=AUTH).json()["not_served"]
            assert "has sha256" in not_served["churn@champion"]
            pinned = predict(c, "churn", {"entities": [entity], "alias": str(bad)})
            assert pinned.status_code == 503 and "has sha256" in pinned.json()["error"]
    finally:
        set_champion(s, "churn", 1)


def test_json_of_a_prediction_is_plain(demo: Demo, client: TestClient) -> None:
    entity = next(iter(batch_slice(demo.settings, "spend", demo.as_of)))
    body = predict(client, "spend", {"entities": [int(entity)]}).json()
    answer = body["predictions"][0]
    assert answer["entity"] == entity and isinstance(answer["value"], float)
    assert json.loads(json.dumps(body)) == body
