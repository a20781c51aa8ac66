"""When the DAGs run: params.yaml's schedule section, asset triggers (a model trains once every
group it reads has a new version; its inference runs when it gets a new version, or on its
cron), and what an asset-started inference run scores."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml

from tests.conftest import PARAMS, REPO

READS = {
    "churn": {"customer_activity", "customer_profile", "churned_30d"},
    "spend": {"customer_activity", "customer_profile", "spend_next_30d"},
}


def parse(monkeypatch, params_file: Path) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    from airflow.dag_processing.dagbag import BundleDagBag

    monkeypatch.setenv("FTI_PARAMS_FILE", str(params_file))
    bag = BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")
    assert bag.import_errors == {}
    return {dag_id: dag.timetable for dag_id, dag in bag.dags.items()}


def asset_names(condition: Any) -> tuple[str, set[str]]:
    """The kind of an asset condition (AssetAll / AssetAny) and the names of its assets."""
    return type(condition).__name__, {asset.name for asset in condition.objects}


def test_default_schedules_follow_the_data(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    timetables = parse(monkeypatch, PARAMS)
    assert timetables["feature_pipeline"].expression == "0 0 * * *"
    for model, reads in READS.items():
        # Training: once every group the model reads (label group included) has a new version;
        # no cron by default.
        training = timetables[f"{model}_training"]
        assert type(training).__name__ == "AssetTriggeredTimetable"
        assert asset_names(training.asset_condition) == (
            "AssetAll",
            {f"fti_group_{group}" for group in reads},
        )
        # Inference: daily, or when the model's training emits a version.
        inference = timetables[f"{model}_inference"]
        assert type(inference).__name__ == "AssetOrTimeSchedule"
        assert inference.timetable.expression == "0 0 * * *"
        assert asset_names(inference.asset_condition)[1] == {f"fti_model_{model}"}


def test_schedules_come_from_params_yaml(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    params = yaml.safe_load(PARAMS.read_text())
    params["schedule"] = {"features": "0 3 * * *", "inference": None, "retrain": "@weekly"}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    timetables = parse(monkeypatch, params_file)
    assert timetables["feature_pipeline"].expression == "0 3 * * *"
    for model, reads in READS.items():
        # A retrain cron too: the groups' versions, or the weekly clock.
        training = timetables[f"{model}_training"]
        assert type(training).__name__ == "AssetOrTimeSchedule"
        assert training.timetable.expression == "0 0 * * 0"
        assert asset_names(training.asset_condition)[1] == {f"fti_group_{g}" for g in reads}
        # No cron: inference runs only when a model version lands, or from the form.
        inference = timetables[f"{model}_inference"]
        assert type(inference).__name__ == "AssetTriggeredTimetable"
        assert asset_names(inference.asset_condition)[1] == {f"fti_model_{model}"}


def test_no_feature_schedule_means_manual_feature_runs_only(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    params = yaml.safe_load(PARAMS.read_text())
    params["schedule"] = {"features": None, "inference": None, "retrain": None}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    timetables = parse(monkeypatch, params_file)
    assert type(timetables["feature_pipeline"]).__name__ == "NullTimetable"
    assert type(timetables["churn_training"]).__name__ == "AssetTriggeredTimetable"


def event(model: str, **extra: Any) -> Any:
    """A model asset event as the task runner hands it over."""
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult
    from fti_common import model_asset

    asset = model_asset(model)
    return AssetEventDagRunReferenceResult(
        asset={"name": asset.name, "uri": asset.uri, "extra": {}},
        extra=extra,
        source_task_id="promote_if_better",
        source_dag_id=f"{model}_training",
        source_run_id="manual__1",
        source_map_index=-1,
        source_aliases=[],
        timestamp=datetime(2026, 4, 30, 1, tzinfo=UTC),
    )


def context(events: list, **params: Any) -> dict[str, Any]:
    """An inference task's context: asset-started (events, no logical date) or scheduled."""
    from airflow.sdk.execution_time.context import TriggeringAssetEventsAccessor

    defaults = {"as_of_date": None, "model": "champion", "feature_version": "latest"}
    return {
        "params": {**defaults, **params},
        "triggering_asset_events": TriggeringAssetEventsAccessor.build(events),
        "logical_date": None if events else pendulum.datetime(2026, 4, 30, tz="UTC"),
    }


def test_an_asset_started_inference_run_scores_what_the_promoted_model_names() -> None:
    from fti_common import scoring_request

    events = [
        event("churn", model_version=3, promoted=True, feature_version=7, as_of="2026-04-29"),
        event("churn", model_version=4, promoted=False, feature_version=8, as_of="2026-04-30"),
    ]
    assert scoring_request(context(events), "churn") == {
        "as_of": "2026-04-29",
        "model": "3",
        "feature_version": "7",
        "logical_date": None,
    }
    # Two promotions since the last run: the newest one is scored.
    events.append(
        event("churn", model_version=5, promoted=True, feature_version=9, as_of="2026-05-01")
    )
    assert scoring_request(context(events), "churn")["model"] == "5"


def test_an_asset_started_run_without_a_promotion_is_skipped() -> None:
    from airflow.sdk.exceptions import AirflowSkipException
    from fti_common import scoring_request

    not_promoted = [
        event("spend", model_version=4, promoted=False, feature_version=8, as_of="2026-04-30"),
        event("spend", model_version=5, promoted=False, feature_version=8, as_of="2026-04-30"),
    ]
    with pytest.raises(AirflowSkipException, match="v4, v5 not promoted"):
        scoring_request(context(not_promoted), "spend")


def test_a_models_run_ignores_another_models_versions() -> None:
    """spend's inference never scores (or skips) because of a churn version."""
    from fti_common import scoring_request

    churn_promoted = [
        event("churn", model_version=3, promoted=True, feature_version=7, as_of="2026-04-29")
    ]
    request = context(churn_promoted)
    request["logical_date"] = pendulum.datetime(2026, 4, 30, tz="UTC")
    assert scoring_request(request, "spend") == {
        "as_of": "2026-04-30",
        "model": "champion",
        "feature_version": "latest",
        "logical_date": "2026-04-30",
    }


def test_a_scheduled_or_form_run_scores_its_logical_date_or_the_forms_values() -> None:
    from fti_common import scoring_request

    assert scoring_request(context([]), "churn") == {
        "as_of": "2026-04-30",
        "model": "champion",
        "feature_version": "latest",
        "logical_date": "2026-04-30",
    }
    form = context([], as_of_date="2026-04-20", model="v2", feature_version="5")
    assert scoring_request(form, "spend") == {
        "as_of": "2026-04-20",
        "model": "v2",
        "feature_version": "5",
        "logical_date": "2026-04-30",
    }


def test_a_date_before_the_projects_start_fails_the_run() -> None:
    from airflow.sdk.exceptions import AirflowFailException
    from fti_common import scoring_request

    with pytest.raises(
        AirflowFailException, match="is before the start date 2026-01-01 of project 'churn'"
    ):
        scoring_request(context([], as_of_date="2025-12-31"), "churn")
