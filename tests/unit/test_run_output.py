"""What `fti run` and `fti demo` print of their DAG runs (fti.runner): a line per run where
output is not a terminal, a progress bar and a line per run that was not a success on one, and
one line when the runner stops."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from rich.console import Console

from fti.runner import phase_times, plan, planned_runs, show_runs, stopped

DRIFT = "drift over the threshold in tenure_days for churn v1 on 2026-11-03; its predictions were written"
OUTCOMES = [
    {"dag": "feature_pipeline", "date": "2026-11-02", "phase": "history", "state": "success",
     "seconds": 20.0, "reason": None},
    {"dag": "churn_inference", "date": "2026-11-03", "phase": "backtest", "state": "flagged",
     "seconds": 2.5, "reason": DRIFT},
    {"dag": "churn_training", "date": "2026-11-04", "phase": "night", "state": "skipped",
     "seconds": 0.0, "reason": "not every group it reads landed a version"},
    {"dag": "churn_training", "date": "2026-11-05", "phase": "night", "state": "success",
     "seconds": 7.5, "reason": None},
]  # fmt: skip


def shown(terminal: bool) -> str:
    console = Console(force_terminal=terminal, record=True, width=80, color_system=None)
    assert show_runs(iter(OUTCOMES), len(OUTCOMES), console) == OUTCOMES
    return console.export_text()


def test_elsewhere_than_a_terminal_each_run_is_one_line_whatever_its_length() -> None:
    lines = shown(terminal=False).splitlines()
    assert len(lines) == len(OUTCOMES)
    assert lines[0] == "  feature_pipeline           2026-11-02  success  20.0s"
    assert lines[1].endswith(f"flagged   2.5s  {DRIFT}")  # not wrapped at 80 columns


def test_on_a_terminal_a_bar_counts_the_runs_and_only_the_others_get_a_line() -> None:
    text = shown(terminal=True)
    assert f"churn_inference            2026-11-03  flagged   2.5s  {DRIFT}" in text
    assert "feature_pipeline           2026-11-02  success" not in text
    assert "4/4" in text


def test_the_phases_sum_their_runs() -> None:
    assert phase_times(OUTCOMES) == "history 1 runs 20s, backtest 1 runs 2s, night 1 runs 8s"


def test_the_plan_counts_every_run_of_a_backtest() -> None:
    steps = plan(date(2026, 1, 1), date(2026, 6, 30), nights=2, past_weeks=3)["steps"]
    assert [s["phase"] for s in steps] == ["history", "history", "night", "night"]
    assert planned_runs(steps, models=2) == 4 * 5 + 3 * 2
    # A project that only reads other projects' groups has no feature run to count.
    assert planned_runs(steps, models=2, feature_runs=False) == 4 * 4 + 3 * 2


def test_the_runner_stopping_is_one_line_naming_the_log(tmp_path: Path) -> None:
    log = tmp_path / "fti-run.log"
    log.write_text("Traceback (most recent call last):\n  ...\nModuleNotFoundError: No module\n")
    failed = {
        **OUTCOMES[0],
        "state": "failed",
        "reason": "raw file events/2026-11-02.csv is missing.",
    }
    assert stopped([OUTCOMES[0], failed], 1, log) == (
        "feature_pipeline run for 2026-11-02 failed: raw file events/2026-11-02.csv is missing; "
        f"Airflow's log: {log}"
    )
    assert stopped([{"stop": "the DAG files do not import: x.py: E"}], 1, log) == (
        f"the DAG files do not import: x.py: E; Airflow's log: {log}"
    )
    assert stopped([], -9, log) == (
        "the DAG runner stopped (exit -9) with ModuleNotFoundError: No module; "
        f"Airflow's log: {log}"
    )
