"""`fti run --past-weeks N` on a project that is not the demo (the weather station of
tests/projects/weather.py), as a user types it: past dates are scored by the champion of the
time, so realized metrics exist before the first real night. And a run that fails says which
DAG run, for which date and why in one line, with the Airflow log's path, and no traceback."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml

from tests.projects import weather
from tests.user_shell import run_fti, user_env

START, END = date(2025, 1, 1), date(2025, 6, 30)
PAST_WEEKS = 2
RUN_LINE = re.compile(r"^  \w+ +\d{4}-\d\d-\d\d  (success|flagged|failed|skipped) +\d+\.\ds")


@pytest.fixture(scope="module")
def weather_raw(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[date]]:
    """The raw files, and the days left without one."""
    folder = tmp_path_factory.mktemp("weather-raw")
    return folder, weather.generate(folder, START, END)


def fti(home: Path, raw: Path, *args: str, **sections: dict) -> subprocess.CompletedProcess[str]:
    """`fti ARGS` in a user's shell (none of the test session's settings) on the weather
    project, with params.yaml's ``sections`` beside its train and promote sections."""
    params = home.with_name(f"{home.name}-params.yaml")
    train = {"rain": {"C": 0.5}, "rain_class": {"C": 0.5}}
    params.write_text(yaml.safe_dump({"train": train, "promote": {"margin": 0.0}} | sections))
    env = user_env(
        FTI_HOME=home,
        FTI_RAW_PATH=raw,
        FTI_PARAMS_FILE=params,
        FTI_PROJECT="tests.projects.weather:project",
    )
    return run_fti(env, *args, timeout=900)


def run_args(*extra: str) -> list[str]:
    return ["run", "--start", str(START), "--end", str(END), "--nights", "0", *extra]


def test_past_weeks_are_scored_by_the_champion_of_the_time(
    tmp_path: Path, weather_raw: tuple[Path, list[date]]
) -> None:
    raw, missing = weather_raw
    home = tmp_path / "home"
    done = fti(home, raw, *run_args("--past-weeks", str(PAST_WEEKS)))
    transcript = done.stdout + done.stderr
    assert done.returncode == 0, transcript[-5000:]
    assert "Traceback" not in transcript, transcript[-5000:]
    # One line per DAG run: two range runs, each with its trainings and scorings, and the
    # backtest's scorings of one date a week.
    total = int(re.search(r"running (\d+) DAG runs", done.stdout).group(1))  # type: ignore[union-attr]
    assert total == 2 * (1 + 2 + 2) + 2 * PAST_WEEKS
    assert len([line for line in done.stdout.splitlines() if RUN_LINE.match(line)]) == total
    log = Path(re.search(r"Airflow's log of every run: (\S+)", done.stdout).group(1))  # type: ignore[union-attr]
    assert log.is_file() and log.is_relative_to(home)
    assert "backtest 4 runs" in done.stdout

    # v1, trained on the history before the past weeks, scored them (and the first range
    # run's own date); their labels (one day later) have landed: realized rows exist at once
    # (a day without readings has nothing to score, a day before one has no label).
    history_end = END - timedelta(weeks=PAST_WEEKS) - timedelta(days=1)
    scored = {history_end} | {END - timedelta(weeks=n) for n in range(1, PAST_WEEKS + 1)}
    expected = {d for d in scored if not {d, d + timedelta(days=1)} & set(missing)}
    assert len(expected) >= 2
    shown = fti(home, raw, "monitor", "realized", "--model", "rain", "--json")
    assert shown.returncode == 0, shown.stderr
    realized = [r for r in json.loads(shown.stdout) if r["model_version"] == 1]
    assert {date.fromisoformat(r["as_of_date"]) for r in realized} == expected
    assert all(r["rows"] == 1 for r in realized)  # one station: a row a date
    v1 = json.loads(fti(home, raw, "models", "show", "rain", "--version", "1", "--json").stdout)
    assert all(r["as_of_date"] > v1["train_end"] for r in realized)  # out of sample


def test_a_failed_run_says_why_in_one_line_and_names_the_log(
    tmp_path: Path, weather_raw: tuple[Path, list[date]]
) -> None:
    raw, _ = weather_raw
    home = tmp_path / "home"
    done = fti(home, raw, *run_args(), shards={"bogus": 1})  # the first tasks read shards
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    reason = "params.yaml shards: unknown key(s) ['bogus']; known: "
    assert re.search(
        rf"^  weather_feature_pipeline +2025-06-30  failed .*{re.escape(reason)}", done.stdout, re.M
    )
    (error,) = done.stderr.splitlines()
    assert error.startswith(f"error: weather_feature_pipeline run for 2025-06-30 failed: {reason}")
    (log,) = (home / "airflow" / "logs").glob("fti-run-*.log")
    assert error.endswith(f"; Airflow's log: {log}")
    assert "Traceback" in log.read_text()  # Airflow's own story of the failure is kept there
