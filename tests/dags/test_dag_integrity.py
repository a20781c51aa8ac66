"""The DAG folder parses cleanly, cheaply, and every DAG follows the house rules.

The DAGs are generated from the project's manifest (tests/conftest.py writes the churn demo's):
one feature DAG, and a training and an inference DAG per model.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml

from tests.conftest import MANIFEST, PARAMS, REPO

DAGS = REPO / "dags"
# A drift check's verdict does not change on retry: it fails once, loudly.
NOT_RETRIED = {"check_drift"}
MODELS = {
    "churn": ["customer_activity", "customer_profile"],
    "spend": ["customer_activity", "customer_profile"],
}
LABELS = {"churn": "churned_30d", "spend": "spend_next_30d"}
GROUPS = ["customer_activity", "customer_profile", "churned_30d", "spend_next_30d"]
EXPECTED = {
    "churn_feature_pipeline",
    "churn_training",
    "spend_training",
    "churn_inference",
    "spend_inference",
    "churn_retention",
}


@pytest.fixture(scope="module")
def dagbag():  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag

    # What the dag-processor uses: the bundle folder is importable (dags/fti_common.py).
    return BundleDagBag(str(DAGS), bundle_path=DAGS)


def parse_in_a_fresh_interpreter(**env: str) -> dict[str, Any]:
    """Parse the DAG folder as a dag-processor would, in a new interpreter with ``env``: the
    DAG ids, import errors, the modules the parse imported, and how long it took."""
    code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from airflow.dag_processing.dagbag import BundleDagBag\n"
        "before = set(sys.modules)\n"
        "clock = time.perf_counter()\n"
        f"bag = BundleDagBag({str(DAGS)!r}, bundle_path=Path({str(DAGS)!r}))\n"
        "seconds = time.perf_counter() - clock\n"
        "print(json.dumps({\n"
        "    'dags': {d.dag_id: {'tasks': sorted(d.task_ids), 'start': d.start_date.isoformat(),\n"
        "                        'timetable': repr(getattr(d.timetable, 'asset_condition', None))}\n"
        "             for d in bag.dags.values()},\n"
        "    'errors': bag.import_errors,\n"
        "    'imported': sorted(m for m in sys.modules if m not in before),\n"
        "    'seconds': seconds,\n"
        "    'per_file': {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},\n"
        "}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        check=True,
        timeout=300,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_dagbag_has_no_import_errors(dagbag) -> None:  # type: ignore[no-untyped-def]
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == EXPECTED


def test_each_dag_has_the_tasks_of_its_project(dagbag) -> None:  # type: ignore[no-untyped-def]
    from fti_common import group_asset, model_asset

    features = dagbag.dags["churn_feature_pipeline"]
    assert set(features.task_ids) == {"validate_raw_events"} | {
        f"{step}__{group}" for group in GROUPS for step in ("plan", "build", "publish")
    }
    for group in GROUPS:
        plan, build, publish = (
            features.get_task(f"{step}__{group}") for step in ("plan", "build", "publish")
        )
        assert plan.upstream_task_ids == {"validate_raw_events"}
        assert build.upstream_task_ids == {"validate_raw_events", f"plan__{group}"}
        assert build.is_mapped  # one task per entity shard of the run
        assert publish.upstream_task_ids == {f"build__{group}"}
        assert publish.outlets == [group_asset(group)]
        assert group_asset(group).name == f"fti_group_{group}"
    for model in MODELS:
        training = dagbag.dags[f"{model}_training"]
        assert set(training.task_ids) == {"build_training_set", "train_model", "promote_if_better"}
        assert training.get_task("promote_if_better").outlets == [model_asset(model)]
        assert model_asset(model).name == f"fti_model_{model}"
        inference = dagbag.dags[f"{model}_inference"]
        assert set(inference.task_ids) == {
            "plan_scoring",
            "wait_for_features",
            "plan_shards",
            "list_shards",
            "score_shard",
            "write_scores",
            "check_drift",
            "score_challenger",
        }
        # A scoring task per (date, entity shard), then one write (and drift check) per date.
        shard, write = inference.get_task("score_shard"), inference.get_task("write_scores")
        assert inference.get_task("plan_shards").upstream_task_ids == {"wait_for_features"}
        assert shard.upstream_task_ids == {"list_shards"} and shard.is_mapped
        assert write.upstream_task_ids == {"plan_shards", "score_shard"} and write.is_mapped
        assert write.trigger_rule == "all_done_min_one_success"  # a failed shard: it says which
        for task_id in ("check_drift", "score_challenger"):
            assert inference.get_task(task_id).upstream_task_ids == {"write_scores"}
        assert f"model:{model}" in training.tags and f"model:{model}" in inference.tags


def test_every_dag_has_tags_retries_timeouts_and_the_projects_start_date(dagbag) -> None:  # type: ignore[no-untyped-def]
    from fti.manifest import read_manifest

    manifest = read_manifest(MANIFEST)
    start = pendulum.parse(manifest["start_date"]).in_timezone("UTC")
    assert start == pendulum.datetime(2026, 1, 1, tz="UTC")
    for dag in dagbag.dags.values():
        assert {"fti", f"project:{manifest['project']}"} <= set(dag.tags), dag.dag_id
        # Fixed and early (catchup off): a run before the project's start gets its tasks,
        # which refuse the date (fti_common.run_day), instead of succeeding with none.
        assert dag.start_date < start and dag.start_date.tzinfo is not None, dag.dag_id
        assert not dag.catchup, dag.dag_id
        # Inference dates run side by side (each slice written under its own lock).
        assert dag.max_active_runs == (4 if dag.dag_id.endswith("_inference") else 1), dag.dag_id
        assert dag.doc_md, dag.dag_id
        for task in dag.tasks:
            where = f"{dag.dag_id}.{task.task_id}"
            if task.task_id not in NOT_RETRIED:
                assert task.retries >= 1, where
            assert task.execution_timeout is not None
            assert task.execution_timeout <= timedelta(hours=12), where


def test_every_dag_can_be_triggered_from_a_form_with_defaults(dagbag) -> None:  # type: ignore[no-untyped-def]
    for dag in dagbag.dags.values():
        assert "dry_run" in dag.params and dag.params["dry_run"] is False, dag.dag_id
        for key in dag.params:
            assert dag.params.get_param(key).description, f"{dag.dag_id}: {key}"
    features = dagbag.dags["churn_feature_pipeline"].params
    assert (features["start_date"], features["end_date"]) == (None, None)
    for model, groups in MODELS.items():
        inference = dagbag.dags[f"{model}_inference"].params
        assert set(inference) == {"as_of_date", "model", "feature_version", "dry_run"}
        assert (inference["model"], inference["feature_version"]) == ("champion", "latest")
        training = dagbag.dags[f"{model}_training"].params
        # A version field for each group the model reads, its label group included.
        for group in [*groups, LABELS[model]]:
            assert training[f"{group}_version"] == "latest", (model, group)
        assert training["as_of"] is None and training["features"] is None


def test_hyper_parameter_fields_default_to_params_yaml_per_model(dagbag) -> None:  # type: ignore[no-untyped-def]
    """Hyper-parameters are typed fields whose defaults are params.yaml's train.<model>."""
    train = yaml.safe_load(PARAMS.read_text())["train"]
    assert set(train) == set(MODELS)
    for model, section in train.items():
        params = dagbag.dags[f"{model}_training"].params
        expected_fields = {
            "as_of",
            "features",
            "dry_run",
            *(f"{g}_version" for g in [*MODELS[model], LABELS[model]]),
            *section,
        }
        assert set(params) == expected_fields, model
        for name, value in section.items():
            field = params.get_param(name)
            assert field.value == value, (model, name)
            expected_type = {bool: "boolean", int: "integer", float: "number"}.get(type(value))
            assert field.schema["type"] == (expected_type or "string"), (model, name)


def test_hyper_parameter_defaults_follow_an_edited_params_file(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag

    params = yaml.safe_load(PARAMS.read_text())
    params["train"]["spend"] = {"max_iter": 7, "learning_rate": 0.5}
    edited = tmp_path / "params.yaml"
    edited.write_text(yaml.safe_dump(params))
    monkeypatch.setenv("FTI_PARAMS_FILE", str(edited))
    bag = BundleDagBag(str(DAGS), bundle_path=DAGS)
    spend, churn = bag.dags["spend_training"].params, bag.dags["churn_training"].params
    assert (spend["max_iter"], spend["learning_rate"]) == (7, 0.5)
    assert "max_depth" not in spend and churn["max_depth"] == params["train"]["churn"]["max_depth"]


def test_publishers_share_a_one_slot_pool_and_failures_are_told_in_words(dagbag, caplog) -> None:  # type: ignore[no-untyped-def]
    from fti_common import PUBLISH_POOL, say_what_failed

    features = dagbag.dags["churn_feature_pipeline"]
    publishers = [t for t in features.tasks if t.task_id.startswith("publish__")]
    assert len(publishers) == len(GROUPS)
    assert {t.pool for t in publishers} == {PUBLISH_POOL}
    assert {t.pool for t in features.tasks if t not in publishers} == {"default_pool"}
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback or []  # a mapped task keeps the one it was given
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert say_what_failed in callbacks, task.task_id

    class TaskInstance:
        task_id, dag_id, try_number = "publish__customer_activity", "churn_feature_pipeline", 2

    say_what_failed(
        {
            "task_instance": TaskInstance(),
            "logical_date": "2026-06-30",
            "exception": OSError("disk full"),
        }
    )
    assert (
        "fti: task publish__customer_activity of churn_feature_pipeline for 2026-06-30 failed on try "
        "2: disk full. Fix the cause, then clear the task" in caplog.text
    )


def test_parsing_the_dag_folder_does_no_work(capsys) -> None:  # type: ignore[no-untyped-def]
    """Parse in a fresh interpreter: the DAG files read only the manifest and params.yaml, so
    fti's pipelines, pandas, pandera, scikit-learn and DVC are not imported."""
    report = parse_in_a_fresh_interpreter(FTI_MANIFEST_PATH=str(MANIFEST))
    assert report["errors"] == {}
    assert set(report["dags"]) == EXPECTED
    per_file = ", ".join(f"{f} {s * 1000:.0f} ms" for f, s in sorted(report["per_file"].items()))
    with capsys.disabled():  # shown in every run: the issue asks for the number
        print(
            f"\nDAG folder parse time (two-model demo, {len(report['dags'])} DAGs): "
            f"{report['seconds'] * 1000:.0f} ms ({per_file})"
        )
    heavy = (
        "fti.pipelines",
        "fti.definitions",
        "churn_demo",
        "sklearn",
        "dvc",
        "pandas",
        "pandera",
    )
    imported = {m.partition(".")[0] for m in report["imported"]} | set(report["imported"])
    assert sorted(imported & set(heavy)) == []
    # Far below Airflow's dagbag_import_timeout (30 s); the dag-processor reparses it often.
    assert report["seconds"] < 10


def test_without_a_manifest_every_dag_file_says_to_run_fti_check(tmp_path: Path) -> None:
    report = parse_in_a_fresh_interpreter(FTI_MANIFEST_PATH=str(tmp_path / "missing.json"))
    assert report["dags"] == {}
    assert set(report["errors"]) == {
        "feature_pipeline.py",
        "training_pipeline.py",
        "batch_inference_pipeline.py",
        "retention.py",
    }
    for file, error in report["errors"].items():
        assert "run `fti check`" in error and str(tmp_path / "missing.json") in error, file


def test_a_model_added_to_the_definition_adds_its_dags(tmp_path: Path) -> None:
    """A third model in the project's definition: `fti check` writes its manifest, and the
    unchanged DAG files generate its training and inference DAGs."""
    from churn_demo.project import churn, project
    from fti.manifest import write_manifest

    bigger = dataclasses.replace(
        project, models=[*project.models, dataclasses.replace(churn, name="churn_small")]
    )
    manifest = write_manifest(bigger, "churn_demo.project:project", tmp_path / "manifest.json")
    before = {p.name: p.read_bytes() for p in DAGS.iterdir() if p.is_file()}

    report = parse_in_a_fresh_interpreter(FTI_MANIFEST_PATH=str(manifest))

    assert report["errors"] == {}
    assert set(report["dags"]) == EXPECTED | {"churn_small_training", "churn_small_inference"}
    small = report["dags"]["churn_small_training"]
    assert small["tasks"] == ["build_training_set", "promote_if_better", "train_model"]
    # It reads what churn reads: both feature groups and churn's label group.
    for group in [*MODELS["churn"], LABELS["churn"]]:
        assert f"fti_group_{group}" in small["timetable"]
    assert "fti_group_spend_next_30d" not in small["timetable"]
    assert "fti_model_churn_small" in report["dags"]["churn_small_inference"]["timetable"]
    assert {p.name: p.read_bytes() for p in DAGS.iterdir() if p.is_file()} == before
