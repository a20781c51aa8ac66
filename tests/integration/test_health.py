"""`fti monitor health`: freshness of groups, labels and models against their declared
expectations, and recorded failures, on a small real store (the weather project, one model)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from fti.cli import app
from fti.db.engine import session_scope
from fti.definitions import Freshness
from fti.errors import FtiError
from fti.monitoring.health import health
from fti.pipelines.features import run_features
from fti.pipelines.inference import score_batch
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.settings import Settings
from fti.store.versions import FeatureStore
from tests.conftest import project_home
from tests.projects import weather

START = date(2025, 1, 1)
NIGHT = date(2025, 3, 10)  # the night scored; the history before it trains the model

# The weather project with one model, small enough to train on two months, and expectations:
# features of D by 03:00 UTC on D+1, the labels that night publishes by 04:00, predictions by 06:00.
daily_weather = dataclasses.replace(weather.daily_weather, fresh_by=Freshness(1, "03:00"))
rain_label = dataclasses.replace(weather.rain_label, fresh_by=Freshness(1, "04:00"))
rain = dataclasses.replace(
    weather.rain,
    label=rain_label,
    fresh_by=Freshness(1, "06:00"),
    training_days=60,
    min_train_rows=30,
    min_holdout_rows=10,
)
project = dataclasses.replace(
    weather.project,
    feature_groups=[daily_weather],
    labels=[rain_label],
    models=[rain],
)

runner = CliRunner()


@pytest.fixture
def health_settings(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    raw = tmp_path / "raw"
    weather.generate(raw, START, NIGHT + timedelta(days=3), missing_share=0.0)
    params = {"train": {"rain": {"C": 0.5}}, "promote": {"margin": 0.0}}
    ref = "tests.integration.test_health:project"
    return project_home(tmp_path, db_url, monkeypatch, ref, raw, params)  # type: ignore[no-any-return]


def monitor(now: datetime, code: int) -> tuple[dict, str]:  # type: ignore[type-arg]
    result = runner.invoke(app, ["monitor", "health", "--json", "--now", now.isoformat()])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout), result.stderr


def by_name(report: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {row["name"]: row for row in report["freshness"]}


def test_fresh_after_the_night_stale_after_a_skipped_one(health_settings: Settings) -> None:
    s = health_settings
    run_features(START, NIGHT - timedelta(days=1), "history", s)
    path = build_training_set("rain", None, None, "t-rain", s)
    version = train_model(path, "t-rain", settings=s)
    assert promote_if_better(path, version, "t-rain", s)["promoted"]
    run_features(NIGHT, NIGHT, "night", s)

    # After every expectation of the night, before the model was ever scored: "never".
    morning = datetime.fromisoformat(f"{NIGHT + timedelta(days=1)}T06:30:00")
    report, errors = monitor(morning, 1)
    rows = by_name(report)
    assert rows["rain"]["status"] == "never" and rows["rain"]["newest_date"] is None
    assert rows["rain"]["fill"] == [f"fti infer --model rain --date {NIGHT}"]
    assert errors.splitlines() == [
        f"never: model 'rain' has nothing yet; {NIGHT} was due at {NIGHT + timedelta(days=1)} "
        f"06:00 UTC; catch up with: fti infer --model rain --date {NIGHT}"
    ]

    # The night scored: all fresh, nothing failed.
    score_batch("rain", NIGHT, "i-night", settings=s)
    report, errors = monitor(morning, 0)
    assert errors == "" and report["failures"] == []
    assert report["healthy"] is True
    rows = by_name(report)
    assert {name: row["status"] for name, row in rows.items()} == {
        "daily_weather": "fresh",
        "rain_tomorrow": "fresh",
        "rain": "fresh",
    }
    assert rows["daily_weather"]["newest_date"] == NIGHT.isoformat()
    assert rows["rain_tomorrow"]["newest_date"] == (NIGHT - timedelta(days=1)).isoformat()
    assert rows["rain"] | {"published_at": None} == {
        "kind": "predictions",
        "name": "rain",
        "owner": "weather",  # claimed by its project's training
        "status": "fresh",
        "newest_date": NIGHT.isoformat(),
        "expected_date": NIGHT.isoformat(),
        "due_at": f"{NIGHT + timedelta(days=1)}T06:00:00+00:00",
        "version": 1,
        "published_at": None,
        "age_hours": 6.5,
        "days_behind": 0,
        "fill": [],
    }
    # Right before the features' deadline the night is not due yet: the day before is enough.
    with session_scope(s.db_url) as session:
        early = health(session, project, morning.replace(hour=2, minute=59), 7)
    assert [row.expected_date for row in early.freshness] == [
        NIGHT - timedelta(days=1),
        NIGHT - timedelta(days=2),  # labels lag their night by the horizon
        NIGHT - timedelta(days=1),
    ]
    assert early.healthy

    # A run that fails (scoring a day that has no features yet) is unhealthy until a run of
    # the same model and date succeeds; it is listed with its one-line reason.
    after = NIGHT + timedelta(days=1)
    with pytest.raises(FtiError):
        score_batch("rain", after, "i-too-early", settings=s)
    report, errors = monitor(morning, 1)
    assert all(row["status"] == "fresh" for row in report["freshness"])
    [failure] = report["failures"]
    assert failure["kind"] == "prediction_run" and failure["run_id"] == "i-too-early"
    assert (failure["date"], failure["resolved"]) == (after.isoformat(), False)
    assert "\n" not in failure["reason"] and failure["reason"] != "(no reason recorded)"
    assert errors.startswith(f"failed: prediction run rain {after}: ")

    # A night skipped: one day later nothing new was published or scored.
    report, errors = monitor(morning + timedelta(days=1), 1)
    rows = by_name(report)
    assert {name: (row["status"], row["days_behind"]) for name, row in rows.items()} == {
        "daily_weather": ("stale", 1),
        "rain_tomorrow": ("stale", 1),
        "rain": ("stale", 1),
    }
    assert rows["daily_weather"]["fill"] == [
        f"airflow backfill create --dag-id weather_feature_pipeline --from-date {after} --to-date {after}"
    ]
    # The labels of NIGHT are published by the run of NIGHT + 1 (horizon one day).
    assert rows["rain_tomorrow"]["expected_date"] == NIGHT.isoformat()
    assert rows["rain_tomorrow"]["fill"] == rows["daily_weather"]["fill"]
    assert rows["rain"]["fill"] == [f"fti infer --model rain --date {after}"]
    assert report["healthy"] is False
    lines = errors.splitlines()
    assert len(lines) == 4  # three stale rows and the failed run
    assert lines[0].startswith("stale: feature group 'daily_weather' is 1 day(s) behind")
    assert lines[3].startswith(f"failed: prediction run rain {after}: ")
    assert f"fti infer --model rain --date {after}" in lines[3]

    # The table form: one row per group, label group and model, and the failure.
    table = runner.invoke(app, ["monitor", "health", "--now", morning.isoformat()])
    assert table.exit_code == 1, table.output
    assert all(name in table.stdout for name in ("daily_weather", "rain_tomorrow", "rain"))
    assert "prediction_run" in table.stdout

    # Scoring the day once its features are there resolves the failure.
    run_features(after, after, "night", s)
    score_batch("rain", after, "i-after", settings=s)
    report, errors = monitor(morning + timedelta(days=1), 0)
    assert [f["resolved"] for f in report["failures"]] == [True] and errors == ""


def test_a_rejected_raw_file_is_a_failure_and_its_night_goes_stale(
    health_settings: Settings,
) -> None:
    s = health_settings
    run_features(START, NIGHT, "history", s)
    broken = Path(s.raw_path) / "readings" / f"{NIGHT + timedelta(days=1)}.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(FtiError):
        run_features(NIGHT + timedelta(days=1), NIGHT + timedelta(days=1), "night", s)
    with session_scope(s.db_url) as session:
        result = health(
            session,
            project,
            datetime.fromisoformat(f"{NIGHT + timedelta(days=2)}T05:00:00+00:00"),
            store=FeatureStore(s.store_path),
        )
    statuses = {row.name: row.status for row in result.freshness}
    assert statuses == {"daily_weather": "stale", "rain_tomorrow": "stale", "rain": "never"}
    # No version of the model yet: it must be trained before it can be scored.
    assert result.freshness[2].fill == [
        "fti train --model rain",
        f"fti infer --model rain --date {NIGHT}",  # NIGHT + 1 is due at 06:00
    ]
    [failure] = result.failures
    assert (failure.kind, failure.name, failure.resolved) == ("validation_run", "readings", False)
    assert failure.date == NIGHT + timedelta(days=1)
    assert broken.name in failure.reason
    assert not result.healthy
    assert any(line.startswith("failed: validation run readings") for line in result.problems())


def test_a_bad_now_is_a_usage_error(health_settings: Settings) -> None:
    for command in (["monitor", "health"], ["monitor", "runs"], ["serve", "--insecure-no-token"]):
        result = runner.invoke(app, [*command, "--now", "yesterday"])
        assert result.exit_code == 2, result.output
        said = " ".join(result.output.replace("\u2502", " ").split())  # typer's box, unwrapped
        assert "'yesterday' is not an ISO date and time, 'clock' or 'data'" in said
    params = health_settings.params_file
    params.write_text(yaml.safe_dump({"monitor": {"now": "soon"}}))
    result = runner.invoke(app, ["monitor", "gaps"])
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {params}: monitor.now: 'soon' is not an ISO date and time, 'clock' or 'data'; "
        "set it to clock (production), data (a project on past data) or a moment such as "
        "2026-05-01T06:00"
    )


def test_a_project_on_past_data_is_judged_on_its_newest_raw_date(
    health_settings: Settings,
) -> None:
    """Raw data years before the clock: on the clock everything is "N days behind" (with a
    hint); with params.yaml's ``monitor.now: data`` health, gaps and serving judge at the
    newest raw date, and ``--now`` overrides either way."""
    from fastapi.testclient import TestClient

    from fti.monitoring.clock import serving_day
    from fti.online.materialise import materialise_latest
    from fti.serve.app import create_app
    from fti.serve.config import ServeConfig

    s = health_settings
    newest = NIGHT + timedelta(days=3)  # the fixture's last raw file
    run_features(START, newest, "history", s)
    path = build_training_set("rain", None, None, "t-rain", s)
    assert promote_if_better(path, train_model(path, "t-rain", settings=s), "t-rain", s)["promoted"]
    score_batch("rain", newest, "i-newest", settings=s)
    materialise_latest(s)

    behind = runner.invoke(app, ["monitor", "health", "--json"])
    assert behind.exit_code == 1, behind.output
    report = json.loads(behind.stdout)
    assert report["now_from"] == "clock" and report["newest_raw_date"] is None
    assert {row["status"] for row in report["freshness"]} == {"stale"}
    assert behind.stderr.splitlines()[-1].startswith("everything is ")
    assert "set now: data in params.yaml's monitor section" in behind.stderr

    params = yaml.safe_load(s.params_file.read_text())
    s.params_file.write_text(yaml.safe_dump(params | {"monitor": {"now": "data"}}))
    on_data = runner.invoke(app, ["monitor", "health", "--json"])
    assert on_data.exit_code == 0, on_data.output
    report = json.loads(on_data.stdout)
    assert (report["now_from"], report["newest_raw_date"]) == ("data", newest.isoformat())
    # Judged when the last expectation of the newest raw date was due (the model's, 06:00).
    assert report["now"] == f"{newest + timedelta(days=1)}T06:00:00+00:00"
    assert [(row["status"], row["expected_date"]) for row in report["freshness"]] == [
        ("fresh", newest.isoformat()),
        ("fresh", (newest - timedelta(days=1)).isoformat()),  # labels lag by their horizon
        ("fresh", newest.isoformat()),
    ]
    table = runner.invoke(app, ["monitor", "health"])
    assert table.exit_code == 0 and table.stderr == "", table.output
    assert table.stdout.startswith(
        f"judged at {newest + timedelta(days=1)} 06:00 UTC (data: newest raw date {newest})"
    )
    gaps = runner.invoke(app, ["monitor", "gaps"])
    assert (gaps.exit_code, gaps.stdout.strip()) == (0, f"no gaps up to {newest}"), gaps.output
    # --now wins over params.yaml: on the clock the same store is years behind.
    assert runner.invoke(app, ["monitor", "health", "--now", "clock"]).exit_code == 1

    def served_stale(today: Any) -> bool:
        app_ = create_app(s, ServeConfig(token="t" * 16), project, today)
        with TestClient(app_) as client:
            response = client.post(
                "/models/rain/predict",
                json={"entities": [weather.STATION]},
                headers={"Authorization": f"Bearer {'t' * 16}"},
            )
        assert response.status_code == 200, response.text
        return bool(response.json()["predictions"][0]["stale"])

    assert served_stale(None) is False  # params.yaml's monitor.now: data
    assert served_stale(serving_day("clock", s, project)) is True
