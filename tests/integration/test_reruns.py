"""Reruns and concurrent runs: an identical training returns the existing version, and scoring
runs that write at the same time on SQLite wait for each other instead of failing."""

from __future__ import annotations

import multiprocessing
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, PredictionRun
from fti.pipelines.features import run_features
from fti.pipelines.inference import already_scored, score_batch
from fti.pipelines.runs import report_gaps
from fti.pipelines.training import build_training_set, promote_if_better, train_model
from fti.settings import Settings
from tests.conftest import DEMO_END, DEMO_START, demo_settings


def history(settings: Settings, end: date) -> None:
    run_features(DEMO_START, end, "history", settings)


def train(settings: Settings, run_id: str, **overrides: object) -> dict:
    path = build_training_set("churn", None, None, run_id, settings)
    version = train_model(path, run_id, dict(overrides) or None, settings)
    return promote_if_better(path, version, run_id, settings)


def test_an_identical_training_returns_the_existing_version(
    tmp_path: Path, db_url: str, demo_raw: Path
) -> None:
    s = demo_settings(tmp_path / "home", demo_raw, db_url)
    history(s, DEMO_END)
    first = train(s, "t1")
    again = train(s, "t2")  # same group and label versions, window, params and code
    assert (first["model_version"], again["model_version"]) == (1, 1)
    assert first["promoted"] and not again["promoted"]
    assert again["reason"] == "v1 is already champion"
    other = train(s, "t3", max_iter=20)  # other params: a new version
    assert other["model_version"] == 2
    with session_scope(s.db_url) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 2
        kept = session.scalar(select(ModelVersion).where(ModelVersion.version == 1))
        assert kept.promotion["reason"] == "first version of the model"  # not overwritten


def score_three_times(values: dict, day: str) -> list[str]:
    """A worker process: score one date three times (each run writes its row and its slice)."""
    settings = Settings(**values)
    done = []
    for attempt in range(3):
        run_id = f"concurrent__{day}__{attempt}"
        score_batch("churn", date.fromisoformat(day), run_id, settings=settings)
        done.append(run_id)
    return done


def test_concurrent_scoring_runs_on_sqlite_queue_for_the_write_lock(
    tmp_path: Path, demo_raw: Path
) -> None:
    s = demo_settings(tmp_path / "home", demo_raw)
    assert s.db_url.startswith("sqlite")
    history(s, DEMO_END)
    train(s, "t1")
    values = {
        "home": s.home,
        "raw_path": s.raw_path,
        "params_file": s.params_file,
        "manifest_path": s.manifest_path,
        "db_url": s.db_url,
    }
    days = [(DEMO_END - timedelta(days=n)).isoformat() for n in range(4)]
    context = multiprocessing.get_context("spawn")
    with context.Pool(len(days)) as pool:
        results = pool.starmap(score_three_times, [(values, day) for day in days])
    assert sum(len(r) for r in results) == 12
    with session_scope(s.db_url) as session:
        states = session.execute(
            select(PredictionRun.status, func.count()).group_by(PredictionRun.status)
        ).all()
    assert dict(states) == {"succeeded": 12}


def test_a_date_is_scored_once_per_model_version(
    tmp_path: Path, db_url: str, demo_raw: Path
) -> None:
    """What the inference DAG asks before an asset-started scoring: already written by this
    model version from the same feature versions?"""
    s = demo_settings(tmp_path / "home", demo_raw, db_url)
    night = DEMO_END
    history(s, night - timedelta(days=1))
    train(s, "t1")
    run_features(night, night, "night", s)
    assert not already_scored("churn", night, settings=s)
    score_batch("churn", night, "i1", settings=s)
    assert already_scored("churn", night, settings=s)
    assert already_scored("churn", night, "1", "latest", settings=s)
    assert not already_scored("spend", night, settings=s)  # no spend champion yet
    # A new champion has not scored it yet.
    promoted = train(s, "t2", max_iter=300, learning_rate=0.2)
    assert promoted["model_version"] == 2
    assert already_scored("churn", night, "1", settings=s)
    assert not already_scored("churn", night, "2", settings=s)


def test_days_no_run_processed_are_found_with_the_command_that_fills_them(
    tmp_path: Path, demo_raw: Path, caplog
) -> None:  # type: ignore[no-untyped-def]
    """catchup is off: a paused week leaves days unprocessed, and fti says which."""
    from typer.testing import CliRunner

    from fti.cli import app

    s = demo_settings(tmp_path / "home", demo_raw)
    paused = DEMO_END - timedelta(days=5)
    history(s, paused)
    train(s, "t1")
    score_batch("churn", paused, "i1", settings=s)
    gaps = {(g["kind"], g["name"]): g for g in report_gaps(DEMO_END, s)}
    week = [(paused + timedelta(days=1)).isoformat(), DEMO_END.isoformat()]
    assert gaps[("features", "customer_activity")]["ranges"] == [week]
    assert gaps[("features", "customer_activity")]["fill"] == [
        f"airflow backfill create --dag-id churn_feature_pipeline --from-date {week[0]} --to-date {week[1]}"
    ]
    label_end = (DEMO_END - timedelta(days=30)).isoformat()
    assert gaps[("labels", "churned_30d")]["ranges"] == [
        [(paused - timedelta(days=29)).isoformat(), label_end]
    ]
    # The nights that publish those labels are 30 days (the horizon) later: the paused week.
    assert gaps[("labels", "churned_30d")]["fill"] == [
        f"airflow backfill create --dag-id churn_feature_pipeline --from-date {week[0]} --to-date {week[1]}"
    ]
    assert ("predictions", "churn") not in gaps  # its spine holds no unscored day yet
    assert "group customer_activity has no partition for 5 day(s)" in caplog.text
    # The week published: churn's days without predictions show up, spend was never scored.
    run_features(paused + timedelta(days=1), DEMO_END, "catch-up", s)
    gaps = {(g["kind"], g["name"]): g for g in report_gaps(DEMO_END, s)}
    assert set(gaps) == {("predictions", "churn"), ("predictions", "spend")}
    assert gaps[("predictions", "churn")]["ranges"] == [week]
    assert gaps[("predictions", "spend")]["ranges"] == [[DEMO_END.isoformat()] * 2]

    env = {
        "FTI_HOME": str(s.home),
        "FTI_RAW_PATH": str(demo_raw),
        "FTI_PARAMS_FILE": str(s.params_file),
    }
    done = CliRunner().invoke(app, ["monitor", "gaps", "--through", DEMO_END.isoformat()], env=env)
    assert done.exit_code == 1, done.output
    assert f"predictions churn: 5 day(s) missing: {week[0]}..{week[1]}" in done.output
    assert f"fti infer --model churn --date {week[0]}" in done.output
