"""When the DAGs run: params.yaml's schedule section, asset triggers (a model trains once every
group it reads has a new version; its inference runs when it gets a new version, or on its
cron), and what an asset-started inference run scores."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
import yaml

from fti.manifest import read_manifest
from tests.conftest import MANIFEST, PARAMS, REPO

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
    assert timetables["churn_feature_pipeline"].expression == "0 0 * * *"
    for model, reads in READS.items():
        # Training: once every group the model reads (label group included) has a new version;
        # no cron by default.
        training = timetables[f"{model}_training"]
        assert type(training).__name__ == "AssetTriggeredTimetable"
        assert asset_names(training.asset_condition) == (
            "AssetAll",
            {f"fti_group_{group}" for group in reads},
        )
        # Inference: when its spine group has a new version or its training emits a version;
        # no cron by default (nothing polls for features).
        inference = timetables[f"{model}_inference"]
        assert type(inference).__name__ == "AssetTriggeredTimetable"
        assert asset_names(inference.asset_condition) == (
            "AssetAny",
            {f"fti_model_{model}", "fti_group_customer_activity"},
        )
    # Retention: manual runs (or `fti gc`) unless params.yaml gives it a cron.
    assert type(timetables["churn_retention"]).__name__ == "NullTimetable"


def test_schedules_come_from_params_yaml(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    params = yaml.safe_load(PARAMS.read_text())
    params["schedule"] = {
        "features": "0 3 * * *",
        "inference": "@daily",
        "retrain": "@weekly",
        "retention": "0 7 * * *",
    }
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    timetables = parse(monkeypatch, params_file)
    assert timetables["churn_feature_pipeline"].expression == "0 3 * * *"
    assert timetables["churn_retention"].expression == "0 7 * * *"
    for model, reads in READS.items():
        # A retrain cron too: the groups' versions, or the weekly clock.
        training = timetables[f"{model}_training"]
        assert type(training).__name__ == "AssetOrTimeSchedule"
        assert training.timetable.expression == "0 0 * * 0"
        assert asset_names(training.asset_condition)[1] == {f"fti_group_{g}" for g in reads}
        # An inference cron too: the assets, or the daily clock.
        inference = timetables[f"{model}_inference"]
        assert type(inference).__name__ == "AssetOrTimeSchedule"
        assert inference.timetable.expression == "0 0 * * *"
        assert asset_names(inference.asset_condition)[1] == {
            f"fti_model_{model}",
            "fti_group_customer_activity",
        }


def test_no_feature_schedule_means_manual_feature_runs_only(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    params = yaml.safe_load(PARAMS.read_text())
    params["schedule"] = {"features": None, "inference": None, "retrain": None}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    timetables = parse(monkeypatch, params_file)
    assert type(timetables["churn_feature_pipeline"]).__name__ == "NullTimetable"
    assert type(timetables["churn_training"]).__name__ == "AssetTriggeredTimetable"


def event(model: str, **extra: Any) -> Any:
    """A model asset event as the task runner hands it over."""
    from fti_common import model_asset

    return asset_event(model_asset(model), f"{model}_training", "promote_if_better", extra)


def features_landed(name: str, **extra: Any) -> Any:
    """A group asset event as the feature pipeline's publish task emits it."""
    from fti_common import group_asset

    return asset_event(group_asset(name), "churn_feature_pipeline", f"publish__{name}", extra)


def asset_event(asset: Any, dag_id: str, task_id: str, extra: dict[str, Any]) -> Any:
    from airflow.sdk.execution_time.comms import AssetEventDagRunReferenceResult

    return AssetEventDagRunReferenceResult(
        asset={"name": asset.name, "uri": asset.uri, "extra": {}},
        extra=extra,
        source_task_id=task_id,
        source_dag_id=dag_id,
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


def requests(events: list, of: str = "churn", **params: Any) -> list[dict[str, Any]]:
    """The scoring requests of model ``of``'s inference run (its spine: customer_activity)."""
    from fti_common import scoring_requests

    return scoring_requests(
        read_manifest(MANIFEST), context(events, **params), of, "customer_activity"
    )


def test_an_asset_started_inference_run_scores_what_the_promoted_model_names() -> None:
    events = [
        event("churn", model_version=3, promoted=True, feature_version=7, as_of="2026-04-29"),
        event("churn", model_version=4, promoted=False, feature_version=8, as_of="2026-04-30"),
    ]
    assert requests(events) == [
        {
            "as_of": "2026-04-29",
            "model": "3",
            "feature_version": "7",
            "logical_date": None,
            "started_by": "promotion",
        }
    ]
    # Two promotions of one date since the last run: the newest one is scored; another date
    # is its own request.
    events.append(
        event("churn", model_version=5, promoted=True, feature_version=9, as_of="2026-04-29")
    )
    events.append(
        event("churn", model_version=6, promoted=True, feature_version=9, as_of="2026-05-01")
    )
    assert [(r["as_of"], r["model"]) for r in requests(events)] == [
        ("2026-04-29", "5"),
        ("2026-05-01", "6"),
    ]


def test_new_features_are_scored_with_the_champion_unless_a_promotion_scores_that_date() -> None:
    landed = features_landed(
        "customer_activity",
        group="customer_activity",
        version=8,
        first_date="2026-04-30",
        last_date="2026-04-30",
        new=True,
    )
    assert requests([landed]) == [
        {
            "as_of": "2026-04-30",
            "model": "champion",
            "feature_version": "8",
            "logical_date": None,
            "started_by": "features",
        }
    ]
    promoted = event("churn", model_version=4, promoted=True, feature_version=8, as_of="2026-04-30")
    assert [(r["model"], r["started_by"]) for r in requests([landed, promoted])] == [
        ("4", "promotion")
    ]


def test_an_asset_started_run_without_a_promotion_is_skipped_saying_why(caplog) -> None:  # type: ignore[no-untyped-def]
    from airflow.sdk.exceptions import AirflowSkipException

    caplog.set_level(logging.INFO, logger="fti")
    not_promoted = [
        event(
            "spend",
            model_version=4,
            promoted=False,
            reason="rmse 40.1 vs champion v2 39.8: not better",
        ),
        event("spend", model_version=5, promoted=False, reason="v5 is already champion"),
    ]
    with pytest.raises(
        AirflowSkipException, match="v4: rmse 40.1 vs champion v2 39.8: not better; v5"
    ):
        requests(not_promoted, of="spend")
    assert "fti: skipped: spend not promoted" in caplog.text


def test_a_models_run_ignores_another_models_versions() -> None:
    """spend's inference never scores (or skips) because of a churn version."""
    from fti_common import scoring_requests

    churn_promoted = [
        event("churn", model_version=3, promoted=True, feature_version=7, as_of="2026-04-29")
    ]
    run = context(churn_promoted)
    run["logical_date"] = pendulum.datetime(2026, 4, 30, tz="UTC")
    assert scoring_requests(read_manifest(MANIFEST), run, "spend", "customer_activity") == [
        {
            "as_of": "2026-04-30",
            "model": "champion",
            "feature_version": "latest",
            "logical_date": "2026-04-30",
            "started_by": "form",
        }
    ]


def test_a_scheduled_or_form_run_scores_its_logical_date_or_the_forms_values() -> None:
    assert requests([]) == [
        {
            "as_of": "2026-04-30",
            "model": "champion",
            "feature_version": "latest",
            "logical_date": "2026-04-30",
            "started_by": "form",
        }
    ]
    form = requests([], of="spend", as_of_date="2026-04-20", model="v2", feature_version="5")
    assert form == [
        {
            "as_of": "2026-04-20",
            "model": "v2",
            "feature_version": "5",
            "logical_date": "2026-04-30",
            "started_by": "form",
        }
    ]


def test_a_date_before_the_projects_start_fails_the_run() -> None:
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(
        AirflowFailException, match="is before the start date 2026-01-01 of project 'churn'"
    ):
        requests([], as_of_date="2025-12-31")
