"""The DAG folder parses cleanly, cheaply, and every DAG follows the house rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest
import yaml

from tests.conftest import PARAMS, REPO

# A drift check's verdict does not change on retry: it fails once, loudly.
NOT_RETRIED = {"check_drift"}
EXPECTED = {"feature_pipeline", "training_pipeline", "batch_inference_pipeline"}


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag

    # What the dag-processor uses: the bundle folder is importable (dags/fti_common.py).
    return BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")


def test_dagbag_has_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


def test_every_dag_has_tags_retries_timeouts_and_a_fixed_start(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag in dagbag.dags.values():
        assert "fti" in dag.tags, dag.dag_id
        assert dag.start_date is not None and dag.start_date.tzinfo is not None, dag.dag_id
        assert dag.start_date.year == 2026 and not dag.catchup, dag.dag_id
        assert dag.max_active_runs == 1, dag.dag_id
        for task in dag.tasks:
            if task.task_id not in NOT_RETRIED:
                assert task.retries >= 1, f"{dag.dag_id}.{task.task_id}"
            assert task.execution_timeout is not None and task.execution_timeout <= timedelta(
                hours=12
            )


def test_every_dag_can_be_triggered_from_a_form_with_defaults(dagbag) -> None:  # type: ignore[no-untyped-def]
    params = {dag_id: dagbag.dags[dag_id].params for dag_id in EXPECTED}
    assert params["batch_inference_pipeline"]["model"] == "champion"
    assert params["training_pipeline"]["feature_version"] == "latest"
    for dag_params in params.values():
        for key in dag_params:
            assert dag_params.get_param(key).description, key
    # Hyper-parameters are typed fields whose defaults are params.yaml's, one place.
    train = yaml.safe_load(PARAMS.read_text())["train"]
    for name, value in train.items():
        field = params["training_pipeline"].get_param(name)
        assert field.value == value and field.schema["type"] in {"integer", "number", "string"}


def test_publishers_share_a_one_slot_pool_and_failures_are_told_in_words(dagbag, caplog) -> None:  # type: ignore[no-untyped-def]
    from fti_common import PUBLISH_POOL, say_what_failed

    publish = dagbag.dags["feature_pipeline"].get_task("publish_feature_version")
    assert publish.pool == PUBLISH_POOL
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            assert say_what_failed in (task.on_failure_callback or []), task.task_id

    class TaskInstance:
        task_id, dag_id, try_number = "publish_feature_version", "feature_pipeline", 2

    say_what_failed(
        {
            "task_instance": TaskInstance(),
            "logical_date": "2026-06-30",
            "exception": OSError("disk full"),
        }
    )
    assert (
        "fti: task publish_feature_version of feature_pipeline for 2026-06-30 failed on try 2: "
        "disk full. Fix the cause, then clear the task" in caplog.text
    )


def test_parsing_the_dag_folder_does_no_work() -> None:
    """Parse in a fresh interpreter: fti, pandas, sklearn and DVC must not be imported."""
    code = (
        "import json, sys, time\n"
        "t = time.perf_counter()\n"
        "from pathlib import Path\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        "t_import = time.perf_counter() - t\n"
        "t = time.perf_counter()\n"
        f"bag = BundleDagBag({str(REPO / 'dags')!r}, bundle_path=Path({str(REPO / 'dags')!r}))\n"
        "t_parse = time.perf_counter() - t\n"
        "heavy = sorted(m for m in ('fti.pipelines', 'sklearn', 'dvc', 'pandas', 'pyarrow') if m in sys.modules)\n"
        "print(json.dumps({'errors': len(bag.import_errors), 'heavy': heavy, 'parse_s': t_parse}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"DAG folder parse time: {report['parse_s']:.2f}s")
    assert report["errors"] == 0
    assert [m for m in report["heavy"] if m in ("fti.pipelines", "sklearn", "dvc")] == []
