"""The promotion gate through fti.pipelines, on SQLite and PostgreSQL: the decision is stored
with the gain's bootstrap interval and the holdout it was judged on, `fti models show` prints
it; and a backfilled candidate (trained as of an earlier date than the champion) is judged on
the champion's newer holdout, not on rows the champion trained on.

The churn demo: model ``churn`` (binary, roc_auc), labels maturing after 30 days, one label
date a week, the newest quarter of them the holdout.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from fti.cli import app
from fti.db.engine import session_scope
from fti.definitions import LABEL
from fti.pipelines.features import run_features
from fti.pipelines.training import (
    build_training_set,
    load_training_set,
    promote_if_better,
    train_model,
)
from fti.registry.versions import get_version
from fti.settings import Settings
from fti.training.artifacts import load_artifact
from fti.training.metrics import score
from tests.conftest import DEMO_END, DEMO_START, demo_settings

NEWER = DEMO_END  # the champion's as-of date
OLDER = DEMO_END - timedelta(days=14)  # a backfill: two label dates earlier


@pytest.fixture
def history(tmp_path: Path, db_url: str, demo_raw: Path) -> Settings:
    """A home whose feature and label groups hold the whole demo history (version 1 each)."""
    settings = demo_settings(tmp_path / "home", demo_raw, db_url)
    run_features(DEMO_START, DEMO_END, "history", settings)
    return settings


def train(settings: Settings, as_of: date, run_id: str) -> tuple[str, int, dict[str, Any]]:
    """The training DAG's three tasks for churn as of ``as_of``: set, version, decision."""
    path = build_training_set("churn", None, as_of, run_id, settings)
    version = train_model(path, run_id, settings=settings)
    return path, version, promote_if_better(path, version, run_id, settings)


def scores_on(settings: Settings, versions: list[int], path: str) -> dict[int, float | None]:
    """Each version's roc_auc on the holdout of the training set at ``path``."""
    training, _ = load_training_set(path)
    found = {}
    with session_scope(settings.db_url) as session:
        for version in versions:
            row = get_version(session, "churn", version)
            model = load_artifact(Path(row.artifact_uri), row.artifact_sha256)
            names = [f["name"] for f in row.features]
            found[version] = score(
                "roc_auc", model, training.holdout[names], training.holdout[LABEL]
            )
    return found


# The gate's decision is the same on both databases (it compares predictions in memory): one
# test on each.
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_backfilled_candidate_is_judged_on_the_champions_newer_holdout(
    history: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    champion_set, champion, first = train(history, NEWER, "t-newer")
    assert first["promoted"] and first["reason"] == "first version of the model"
    assert first["candidate_as_of"] == first["holdout_as_of"] == NEWER.isoformat()
    backfill_set, candidate, decision = train(history, OLDER, "t-older")
    assert (champion, candidate) == (1, 2)

    newer, _ = load_training_set(champion_set)
    older, _ = load_training_set(backfill_set)
    # What makes the backfill's own holdout unfair: the champion trained on its dates.
    assert set(older.holdout_dates) <= set(newer.train_dates)

    assert decision["candidate_as_of"] == OLDER.isoformat()
    assert decision["holdout_as_of"] == NEWER.isoformat()
    assert decision["holdout_dates"] == [d.isoformat() for d in newer.holdout_dates]
    assert decision["holdout_rows"] == len(newer.holdout)
    assert decision["holdout_versions"] == {
        "customer_activity": 1,
        "customer_profile": 1,
        "churned_30d": 1,
    }
    # Both versions scored on the newer holdout's rows, not on the backfill's own.
    on_newer = scores_on(history, [champion, candidate], champion_set)
    on_older = scores_on(history, [champion, candidate], backfill_set)
    assert decision["champion"] == pytest.approx(on_newer[champion], abs=1e-12)
    assert decision["candidate"] == pytest.approx(on_newer[candidate], abs=1e-12)
    assert decision["champion"] != pytest.approx(on_older[champion], abs=1e-6)
    assert decision["interval"] is not None and decision["resamples"] == 1000

    with session_scope(history.db_url) as session:
        stored = get_version(session, "churn", candidate).promotion
    assert stored == {key: decision[key] for key in stored}
    assert {"gain", "interval", "confidence", "holdout_as_of"} <= set(stored)

    # `fti models show` prints the stored decision whole: the interval and the reason.
    for key, value in {"FTI_HOME": history.home, "FTI_DB_URL": history.db_url}.items():
        monkeypatch.setenv(key, str(value))
    show = ["models", "show", "churn", "--version", str(candidate)]
    shown = CliRunner().invoke(app, [*show, "--json"])
    assert shown.exit_code == 0, shown.output
    promotion = json.loads(shown.output)["promotion"]
    assert promotion["interval"] == decision["interval"]
    assert promotion["reason"] == decision["reason"] and "95% interval [" in decision["reason"]
    text = CliRunner().invoke(app, show)
    assert text.exit_code == 0, text.output
    assert "95% interval [" in " ".join(text.output.split())


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_newer_candidate_is_judged_on_its_own_holdout(history: Settings) -> None:
    train(history, OLDER, "t-older")
    path, candidate, decision = train(history, NEWER, "t-newer")
    own, _ = load_training_set(path)
    assert decision["champion_version"] == 1 and candidate == 2
    assert decision["candidate_as_of"] == decision["holdout_as_of"] == NEWER.isoformat()
    assert decision["holdout_dates"] == [d.isoformat() for d in own.holdout_dates]
    assert decision["holdout_rows"] == len(own.holdout)
