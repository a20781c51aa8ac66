"""`fti demo` as `make demo` runs it (the console script, ending yesterday), on a smaller
business: it prints a line per DAG run and no traceback, Airflow's log goes to the file its
summary names, and its history has the same length whatever the date; afterwards every group
and model is fresh, `fti monitor health` exits 0, and the champion's realized performance
exists for past dates whose labels matured, scored by a version that never saw those labels;
a night later without a run, health exits 1."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fti.definitions import load_project
from fti.demo import HISTORY_DAYS, demo_days
from fti.errors import ConfigError
from tests.user_shell import run_fti, user_env

PAST_WEEKS = 6
NIGHTS = 2
RUN_LINE = re.compile(r"^  (\w+) +(\d{4}-\d\d-\d\d)  (success|flagged|failed|skipped) +\d+\.\ds")


def test_the_history_has_one_length_whatever_the_date() -> None:
    """Its days depend on the options, not on the calendar: a year later, the same work."""
    project = load_project("churn_demo.project:project")
    days = HISTORY_DAYS + 7 * PAST_WEEKS + NIGHTS
    for end in (date(2026, 9, 1), date(2026, 12, 31), date(2028, 2, 29)):
        raw_first, first = demo_days(project, end, NIGHTS, PAST_WEEKS)
        assert (end - first).days + 1 == days
        assert (first - raw_first).days == 59  # a label row looks back 30 days from D - 30
    with pytest.raises(ConfigError, match="from the project's start date 2026-01-01 on"):
        demo_days(project, date(2026, 4, 1), NIGHTS, PAST_WEEKS)


def fti(env: dict[str, str], *args: str, code: int = 0) -> str:
    done = run_fti(env, *args)
    output = done.stdout + done.stderr
    assert done.returncode == code, output[-5000:]
    assert "Traceback" not in output, output[-5000:]
    return done.stdout


def test_after_the_demo_everything_is_fresh_and_realized_performance_exists(
    tmp_path: Path,
) -> None:
    # A user's shell: none of the test session's fti or Airflow settings, a home of its own.
    env = user_env(FTI_HOME=tmp_path / "home")
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    transcript = fti(
        env, "demo", "--customers", "200", "--days", str(NIGHTS), "--past-weeks", str(PAST_WEEKS)
    )
    assert "fti demo finished in" in transcript
    assert f"predictions for {yesterday}" in transcript
    assert "realized roc_auc of v1 once labels landed" in transcript
    # A person reads it: the history's length, a line per DAG run (fti's one-line reason on
    # each that was not a success), and Airflow's log in the file the summary names.
    days = HISTORY_DAYS + 7 * PAST_WEEKS + NIGHTS
    first = yesterday - timedelta(days=days - 1)
    assert f"the DAGs run {first} .. {yesterday} ({days} days)" in transcript
    total = int(re.search(r"running (\d+) DAG runs", transcript).group(1))  # type: ignore[union-attr]
    runs = [line for line in transcript.splitlines() if RUN_LINE.match(line)]
    assert len(runs) == total == (2 + NIGHTS) * 5 + 2 * PAST_WEEKS
    assert all("drift over the threshold in " in line for line in runs if " flagged " in line)
    log = Path(re.search(r"Airflow's log of every run: (\S+)", transcript).group(1))  # type: ignore[union-attr]
    assert log.parent == Path(env["FTI_HOME"]) / "airflow" / "logs"
    assert "churn_feature_pipeline" in log.read_text()
    assert len(transcript.splitlines()) < total + 30

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
