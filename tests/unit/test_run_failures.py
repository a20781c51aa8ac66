"""Which failed DAG runs make the platform unhealthy (fti.monitoring.runs): a failure nobody
fixed does; an inference run failed by its drift check alone is a flag (its scores were
written, the drift is in fti's drift results), shown but not counted."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fti.monitoring.runs import PipelineRun, Runs, TaskTries

NIGHT = date(2026, 11, 28)
NOW = datetime(2026, 11, 29, 6, tzinfo=UTC)


def a_run(run_id: str, state: str, *tasks: tuple[str, str], resolved: bool = False) -> PipelineRun:
    start = NOW - timedelta(hours=3)
    return PipelineRun(
        dag_id="churn_inference",
        run_id=run_id,
        night=NIGHT,
        logical_date=None,
        run_after=start,
        run_type="asset_triggered",
        state=state,
        start=start,
        end=start + timedelta(seconds=42),
        duration=42.0,
        tasks=tuple(TaskTries(task, task_state, 1) for task, task_state in tasks),
        link=f"http://airflow/dags/churn_inference/runs/{run_id}",
        resolved=resolved,
    )


def test_only_unfixed_failures_other_than_drift_flags_are_problems() -> None:
    drifted = a_run(
        "drifted", "failed", ("score_batch[0]", "success"), ("check_drift[0]", "failed")
    )
    broken = a_run("broken", "failed", ("score_batch[0]", "failed"), ("check_drift[0]", "failed"))
    fixed = a_run("fixed", "failed", ("score_batch", "failed"), resolved=True)
    fine = a_run("fine", "success", ("score_batch", "success"))
    runs = Runs(
        NOW,
        7,
        NIGHT - timedelta(days=7),
        NOW.date(),
        ["churn_inference"],
        [drifted, broken, fixed, fine],
    )
    assert (drifted.drift_flagged, broken.drift_flagged, fixed.drift_flagged) == (
        True,
        False,
        False,
    )
    assert not fine.drift_flagged  # succeeded: nothing to flag
    assert [r.run_id for r in runs.unresolved] == ["broken"]
    assert not runs.healthy and len(runs.problems()) == 1
    assert "score_batch[0], check_drift[0]" in runs.problems()[0]
    shown = {r["run_id"]: r for r in runs.as_dict()["runs"]}
    assert shown["drifted"]["drift_flagged"] and shown["drifted"]["resolved"] is False
    assert Runs(NOW, 7, NIGHT, NOW.date(), ["churn_inference"], [drifted, fine]).healthy
