"""When the DAGs run: params.yaml's schedule section, asset triggers, and what an asset-started
inference run scores."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pendulum
import pytest
import yaml

from tests.conftest import PARAMS, REPO


def parse(monkeypatch, params_file: Path) -> dict:  # type: ignore[type-arg]
    from airflow.dag_processing.dagbag import BundleDagBag

    monkeypatch.setenv("FTI_PARAMS_FILE", str(params_file))
    bag = BundleDagBag(str(REPO / "dags"), bundle_path=REPO / "dags")
    assert bag.import_errors == {}
    return {dag_id: dag.timetable for dag_id, dag in bag.dags.items()}


def test_default_schedules_follow_the_data(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    timetables = parse(monkeypatch, PARAMS)
    assert timetables["feature_pipeline"].expression == "0 0 * * *"
    # Training: whenever a feature version lands (no cron by default).
    training = timetables["training_pipeline"]
    assert type(training).__name__ == "AssetTriggeredTimetable"
    assert "fti_feature_versions" in repr(training.asset_condition)
    # Inference: daily, or when training emits a model version.
    inference = timetables["batch_inference_pipeline"]
    assert type(inference).__name__ == "AssetOrTimeSchedule"
    assert inference.timetable.expression == "0 0 * * *"
    assert "fti_model_versions" in repr(inference.asset_condition)


def test_schedules_come_from_params_yaml(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    params = yaml.safe_load(PARAMS.read_text())
    params["schedule"] = {"features": "0 3 * * *", "inference": None, "retrain": "@weekly"}
    params_file = tmp_path / "params.yaml"
    params_file.write_text(yaml.safe_dump(params))

    timetables = parse(monkeypatch, params_file)
    assert timetables["feature_pipeline"].expression == "0 3 * * *"
    assert type(timetables["training_pipeline"]).__name__ == "AssetOrTimeSchedule"
    assert timetables["training_pipeline"].timetable.expression == "0 0 * * 0"
    # No cron: inference runs only when a model version lands, or from the form.
    assert type(timetables["batch_inference_pipeline"]).__name__ == "AssetTriggeredTimetable"


def event(**extra):  # type: ignore[no-untyped-def]
    return SimpleNamespace(extra=extra)


def context(events: list, **params):  # type: ignore[no-untyped-def]
    from fti_common import MODELS

    defaults = {"as_of_date": None, "model": "champion", "feature_version": "latest"}
    return {
        "params": {**defaults, **params},
        "triggering_asset_events": {MODELS: events} if events else {},
        "logical_date": None if events else pendulum.datetime(2026, 4, 30, 7, tz="UTC"),
    }


def test_an_asset_started_inference_run_scores_what_the_promoted_model_names() -> None:
    from fti_common import scoring_request

    events = [
        event(model_version=3, promoted=True, feature_version=7, as_of="2026-04-29"),
        event(model_version=4, promoted=False, feature_version=8, as_of="2026-04-30"),
    ]
    assert scoring_request(context(events)) == {
        "as_of": "2026-04-29",
        "model": "3",
        "feature_version": "7",
        "logical_date": None,
    }


def test_an_asset_started_run_without_a_promotion_is_skipped() -> None:
    from airflow.sdk.exceptions import AirflowSkipException
    from fti_common import scoring_request

    with pytest.raises(AirflowSkipException, match="v4 not promoted"):
        scoring_request(context([event(model_version=4, promoted=False)]))


def test_a_scheduled_or_form_run_scores_its_logical_date_or_the_forms_values() -> None:
    from fti_common import scoring_request

    assert scoring_request(context([])) == {
        "as_of": "2026-04-30",
        "model": "champion",
        "feature_version": "latest",
        "logical_date": "2026-04-30",
    }
    form = context([], as_of_date="2026-04-20", model="v2", feature_version="5")
    assert scoring_request(form)["as_of"] == "2026-04-20"
    assert (scoring_request(form)["model"], scoring_request(form)["feature_version"]) == ("v2", "5")
