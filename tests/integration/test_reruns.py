"""Reruns and concurrent runs: an identical training returns the existing version, and scoring
runs that write at the same time on SQLite wait for each other instead of failing."""

from __future__ import annotations

import multiprocessing
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import func, select

from fti import pipelines
from fti.db.engine import session_scope
from fti.db.tables import ModelVersion, PredictionRun
from fti.settings import Settings
from tests.conftest import DEMO_END, DEMO_START, demo_settings


def history(settings: Settings, end: date) -> None:
    pipelines.run_features(DEMO_START, end, "history", settings)


def train(settings: Settings, run_id: str, **overrides: object) -> dict:
    path = pipelines.build_training_set("churn", None, None, run_id, settings)
    version = pipelines.train_model(path, run_id, dict(overrides) or None, settings)
    return pipelines.promote_if_better(path, version, run_id, settings)


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
        pipelines.score_batch("churn", date.fromisoformat(day), run_id, settings=settings)
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
    pipelines.run_features(night, night, "night", s)
    assert not pipelines.already_scored("churn", night, settings=s)
    pipelines.score_batch("churn", night, "i1", settings=s)
    assert pipelines.already_scored("churn", night, settings=s)
    assert pipelines.already_scored("churn", night, "1", "latest", settings=s)
    assert not pipelines.already_scored("spend", night, settings=s)  # no spend champion yet
    # A new champion has not scored it yet.
    promoted = train(s, "t2", max_iter=300, learning_rate=0.2)
    assert promoted["model_version"] == 2
    assert pipelines.already_scored("churn", night, "1", settings=s)
    assert not pipelines.already_scored("churn", night, "2", settings=s)
