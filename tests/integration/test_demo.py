"""`fti demo` as `make demo` runs it (the console script, ending yesterday), on a smaller
business: afterwards every group and model is fresh, `fti monitor health` exits 0, and the
champion's realized performance exists for past dates whose labels matured, scored by a
version that never saw those labels; a night later without a run, health exits 1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import REPO

PAST_WEEKS = 6


def fti(env: dict[str, str], *args: str, code: int = 0) -> str:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "fti"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == code, output[-5000:]
    return done.stdout


def test_after_the_demo_everything_is_fresh_and_realized_performance_exists(
    tmp_path: Path,
) -> None:
    # A user's shell: none of the test session's fti or Airflow settings, a home of its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FTI_", "AIRFLOW"))}
    env["FTI_HOME"] = str(tmp_path / "home")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    transcript = fti(
        env, "demo", "--customers", "200", "--days", "2", "--past-weeks", str(PAST_WEEKS)
    )
    assert "fti demo finished in" in transcript
    assert f"predictions for {yesterday}" in transcript
    assert "realized roc_auc of v1 once labels landed" in transcript

    health: dict[str, Any] = json.loads(fti(env, "monitor", "health", "--json"))
    assert health["healthy"] is True
    assert {(f["kind"], f["name"], f["status"]) for f in health["freshness"]} == {
        ("features", "customer_activity", "fresh"),
        ("features", "customer_profile", "fresh"),
        ("labels", "churned_30d", "fresh"),
        ("labels", "spend_next_30d", "fresh"),
        ("predictions", "churn", "fresh"),
        ("predictions", "spend", "fresh"),
    }
    assert health["failures"] == []
    # Each champion's realized window (none yet when a night's training promoted a new one).
    assert [r["model"] for r in health["realized"]] == ["churn", "spend"]

    # The past weeks were scored by v1 (trained on the first range run), after its training
    # window: out of sample. Those whose labels matured (30 days) have realized metrics.
    v1 = json.loads(fti(env, "models", "show", "churn", "--version", "1", "--json"))
    realized = json.loads(fti(env, "monitor", "realized", "--model", "churn", "--json"))
    scored_by_v1 = [r for r in realized if r["model_version"] == 1]
    history_end = yesterday - timedelta(days=2)
    past = {history_end - timedelta(weeks=n) for n in range(1, PAST_WEEKS + 1)}
    past.add(min(past) - timedelta(days=1))  # the first range run's own date, scored by v1
    matured = {day for day in past if day <= yesterday - timedelta(days=30)}
    assert {date.fromisoformat(r["as_of_date"]) for r in scored_by_v1} == matured
    assert all(r["as_of_date"] > v1["train_end"] and r["rows"] > 0 for r in scored_by_v1)
    assert all(0.0 <= r["value"] <= 1.0 and r["holdout_value"] for r in scored_by_v1)

    # Two nights later with no run, the platform is not healthy: features, labels and
    # predictions of the missed night are late.
    later = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    stale = fti(env, "monitor", "health", "--json", "--now", later, code=1)
    assert {f["status"] for f in json.loads(stale)["freshness"]} == {"stale"}
