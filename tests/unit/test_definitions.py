"""A project definition is checked when it is loaded: every mistake is one line naming the object."""

from __future__ import annotations

import dataclasses
import sys
import types
from datetime import UTC, date, datetime
from pathlib import Path

import pandera.pandas as pa
import pytest

from churn_demo import project as demo
from fti.definitions import (
    Entity,
    Freshness,
    LabelGroup,
    Model,
    ModelFeature,
    Source,
    check_project,
    data_problems,
    load_project,
)
from fti.errors import ConfigError, DefinitionError

PROJECT = demo.project


def replace_model(**changes: object) -> object:
    model = dataclasses.replace(demo.churn, **changes)
    return dataclasses.replace(PROJECT, models=[model, demo.spend])


def test_the_demo_project_is_sound_and_resolves_features_across_groups() -> None:
    assert check_project(PROJECT) == []
    features = PROJECT.model_features(demo.churn)
    assert features[0] == ModelFeature("customer_activity", "logins_7d")
    assert ModelFeature("customer_profile", "plan") in features
    assert PROJECT.model_groups(demo.churn) == ["customer_activity", "customer_profile"]
    # The training form may list bare names when one of the model's groups has them.
    assert PROJECT.model_features(demo.churn, ["plan", "customer_activity.spend_7d"]) == [
        ModelFeature("customer_profile", "plan"),
        ModelFeature("customer_activity", "spend_7d"),
    ]


@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            replace_model(metric="r2"),
            "model 'churn': metric 'r2' does not fit a binary model",
        ),
        (
            replace_model(metric="roc_acu"),
            "model 'churn': unknown metric 'roc_acu'",
        ),
        (
            replace_model(features=["customer_activity.logins_7d", "customer_profile.colour"]),
            "model 'churn': feature group 'customer_profile' has no feature 'colour'",
        ),
        (
            replace_model(features=["weather.rain"]),
            "model 'churn': feature 'weather.rain' names no feature group of the project",
        ),
        (
            replace_model(ttl={"customer_crm": 3}),
            "model 'churn': ttl names 'customer_crm', not one of its groups",
        ),
        (
            dataclasses.replace(PROJECT, models=[demo.churn, demo.churn]),
            "model 'churn' is defined twice",
        ),
        (
            dataclasses.replace(PROJECT, labels=[demo.churned, demo.churned, demo.spend_next]),
            "feature or label group 'churned_30d' is defined twice",
        ),
        (
            dataclasses.replace(
                PROJECT,
                feature_groups=[
                    *PROJECT.feature_groups,
                    dataclasses.replace(demo.profile, name="Customer Profile"),
                ],
            ),
            "feature or label group 'Customer Profile': name must be lower-case",
        ),
        (
            replace_model(
                label=dataclasses.replace(demo.churned, entity=Entity("store", key="store_id"))
            ),
            "model 'churn': label group 'churned_30d' is not in the project's labels",
        ),
        (
            dataclasses.replace(
                PROJECT,
                feature_groups=[
                    demo.activity,
                    dataclasses.replace(demo.profile, features=[*demo.profile.features, "plan"]),
                ],
            ),
            "feature group 'customer_profile': feature 'plan' is declared twice; declare it once",
        ),
        (
            replace_model(task="ranking"),
            "model 'churn': task 'ranking' is not one of",
        ),
        (
            replace_model(holdout_share=1.5),
            "model 'churn': holdout_share 1.5 must be between 0 and 1",
        ),
        (
            dataclasses.replace(PROJECT, start_date="the first of May"),
            "project 'churn': start_date 'the first of May' is not a date",
        ),
        (
            dataclasses.replace(
                PROJECT, sources=[dataclasses.replace(demo.events, time_column="when"), demo.crm]
            ),
            "source 'events': time_column 'when' is not in its schema",
        ),
        (
            dataclasses.replace(
                PROJECT,
                sources=[demo.events, dataclasses.replace(demo.crm, timezone="Mars/Olympus")],
            ),
            "source 'crm': timezone 'Mars/Olympus' is not an IANA time zone",
        ),
        (
            dataclasses.replace(
                PROJECT, sources=[demo.events, dataclasses.replace(demo.crm, missing_day="skip")]
            ),
            "source 'crm': missing_day 'skip' is not one of",
        ),
        (
            dataclasses.replace(
                PROJECT,
                sources=[dataclasses.replace(demo.events, unique_within_days=0), demo.crm],
            ),
            "source 'events': unique_within_days 0 must be a whole number of days >= 1",
        ),
        (
            dataclasses.replace(
                PROJECT,
                sources=[demo.events, dataclasses.replace(demo.crm, unique_within_days=7)],
            ),
            "source 'crm': unique_within_days needs an id_column",
        ),
        (
            dataclasses.replace(
                PROJECT,
                feature_groups=[demo.activity, dataclasses.replace(demo.profile, partition="week")],
            ),
            "feature group 'customer_profile': partition 'week' is not one of ('day', 'month')",
        ),
    ],
)
def test_each_mistake_is_one_line_naming_the_object(project, message: str) -> None:  # type: ignore[no-untyped-def]
    problems = check_project(project)
    assert any(p.startswith(message) for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_a_label_group_about_another_entity_is_refused() -> None:
    store = Entity("store", key="store_id")
    other = dataclasses.replace(demo.churned, entity=store)
    model = dataclasses.replace(demo.churn, label=other)
    project = dataclasses.replace(
        PROJECT, entities=[demo.customer, store], labels=[other, demo.spend_next], models=[model]
    )
    problems = check_project(project)
    assert (
        "model 'churn': feature group 'customer_activity' is about entity 'customer' but label "
        "group 'churned_30d' is about 'store'"
    ) in problems


def test_a_feature_name_in_two_groups_must_be_chosen() -> None:
    twin = dataclasses.replace(demo.profile, name="customer_twin")
    model = dataclasses.replace(
        demo.churn, features=["customer_profile.plan", "customer_twin.plan"]
    )
    project = dataclasses.replace(
        PROJECT, feature_groups=[*PROJECT.feature_groups, twin], models=[model]
    )
    assert (
        "model 'churn': feature 'plan' comes from both 'customer_profile' and 'customer_twin'; "
        "choose one" in check_project(project)
    )
    with pytest.raises(DefinitionError, match="'plan' is in customer_profile and customer_twin"):
        project.model_features(
            dataclasses.replace(model, features=["customer_profile.*", "customer_twin.*"]), ["plan"]
        )


def test_a_feature_params_yaml_picks_by_a_name_two_groups_have_names_both(
    tmp_path: Path,
) -> None:
    """The training form's (and params.yaml's) ``features`` may name a bare column: one two of
    the model's groups both have is named with both groups, before a run trips on it."""
    from fti.checks import params_problems

    twin = dataclasses.replace(demo.profile, name="customer_twin")
    model = dataclasses.replace(
        demo.churn, features=["customer_activity.*", "customer_profile.plan", "customer_twin.*"]
    )
    project = dataclasses.replace(
        PROJECT, feature_groups=[*PROJECT.feature_groups, twin], models=[model, demo.spend]
    )
    params = tmp_path / "params.yaml"
    params.write_text(
        "train:\n  churn: {max_iter: 10, features: [plan, tenure_days]}\n  spend: {max_iter: 10}\n"
    )
    assert params_problems(project, params) == [
        f"{params}: train.churn.features: model 'churn': feature 'plan' is in customer_profile "
        "and customer_twin of its groups (customer_activity, customer_profile, customer_twin); "
        "name it as 'group.column'"
    ]


def test_a_source_not_listed_in_the_project_is_refused() -> None:
    stray = Source("clicks", schema=pa.DataFrameSchema({"t": pa.Column(str)}), time_column="t")
    group = dataclasses.replace(demo.profile, sources=[stray])
    project = dataclasses.replace(PROJECT, feature_groups=[demo.activity, group])
    assert (
        "feature group 'customer_profile': source 'clicks' is not in the project's sources"
        in check_project(project)
    )


def test_load_project_raises_every_problem_and_names_the_reference(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    module = types.ModuleType("broken_project")
    module.project = dataclasses.replace(
        PROJECT, models=[dataclasses.replace(demo.churn, metric="r2")]
    )  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "broken_project", module)
    with pytest.raises(DefinitionError) as raised:
        load_project("broken_project:project")
    assert str(raised.value).startswith("broken_project:project: 1 problem(s) in the definition:")
    with pytest.raises(
        ConfigError, match="cannot load project definition 'no_such_module:project'"
    ):
        load_project("no_such_module:project")
    module.not_a_project = 42  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="is a int, not an fti.definitions.Project"):
        load_project("broken_project:not_a_project")


def test_a_start_date_after_the_data_is_named(tmp_path: Path) -> None:
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "2025-12-30.csv").write_text("x\n")
    problems = data_problems(PROJECT, tmp_path)
    assert problems == [
        f"project 'churn': start_date 2026-01-01 is after the first raw file of source 'events' "
        f"(2025-12-30, in {tmp_path / 'events'}); those days would never be processed: move "
        "start_date back"
    ]
    assert (
        data_problems(dataclasses.replace(PROJECT, start_date=date(2025, 12, 30)), tmp_path) == []
    )


def test_models_and_labels_of_every_task_can_be_declared() -> None:
    label = LabelGroup(
        "weather_class",
        entity=demo.customer,
        sources=[demo.events],
        horizon_days=1,
        build=lambda s, d: None,
    )
    model = Model(
        "weather",
        label=label,
        task="multiclass",
        metric="log_loss",
        features=["customer_activity.*"],
        estimator=lambda params, features: None,
    )
    project = dataclasses.replace(
        PROJECT, labels=[*PROJECT.labels, label], models=[*PROJECT.models, model]
    )
    assert check_project(project) == []
    wrong = dataclasses.replace(model, metric="roc_auc")  # binary only
    problems = check_project(dataclasses.replace(project, models=[*PROJECT.models, wrong]))
    assert len(problems) == 1
    assert problems[0].startswith("model 'weather': metric 'roc_auc' does not fit a multiclass")


def test_freshness_is_due_at_its_time_on_the_day_after() -> None:
    fresh = Freshness(days_after=1, at="03:00")
    assert fresh.due(date(2026, 3, 1)) == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    assert fresh.expected_date(datetime(2026, 3, 2, 2, 59)) == date(2026, 2, 28)
    assert fresh.expected_date(datetime(2026, 3, 2, 3, 0, tzinfo=UTC)) == date(2026, 3, 1)
    # Undeclared: the end of D+1, on every group, label group and model.
    assert demo.activity.fresh_by == demo.churned.fresh_by == demo.churn.fresh_by == Freshness()
    assert Freshness().due(date(2026, 3, 1)) == datetime(2026, 3, 2, 23, 59, tzinfo=UTC)


def test_each_bad_freshness_is_one_line_naming_the_object() -> None:
    churned = dataclasses.replace(demo.churned, fresh_by="03:00")
    project = dataclasses.replace(
        PROJECT,
        feature_groups=[
            dataclasses.replace(demo.activity, fresh_by=Freshness(days_after=-1)),
            dataclasses.replace(demo.profile, fresh_by=Freshness(at="3am")),
        ],
        labels=[churned, demo.spend_next],
        models=[
            dataclasses.replace(demo.churn, label=churned, fresh_by=Freshness(1, "24:00")),
            demo.spend,
        ],
    )
    problems = check_project(project)
    assert problems == [
        "feature group 'customer_activity': fresh_by days_after -1 must be a whole number of "
        "days >= 0",
        "feature group 'customer_profile': fresh_by at '3am' is not a UTC time of day as 'HH:MM' "
        "(00:00 to 23:59)",
        "label group 'churned_30d': fresh_by '03:00' is not an fti.definitions.Freshness",
        "model 'churn': fresh_by at '24:00' is not a UTC time of day as 'HH:MM' (00:00 to 23:59)",
    ]


def test_predictions_cannot_be_due_before_their_features() -> None:
    activity = dataclasses.replace(demo.activity, fresh_by=Freshness(1, "03:00"))
    churn = dataclasses.replace(demo.churn, fresh_by=Freshness(1, "02:00"))
    project = dataclasses.replace(
        PROJECT, feature_groups=[activity, demo.profile], models=[churn, demo.spend]
    )
    assert check_project(project) == [
        "model 'churn': fresh_by (D+1 02:00 UTC) is before that of its feature group "
        "'customer_activity' (D+1 03:00 UTC): predictions need the features first"
    ]
    later = dataclasses.replace(churn, fresh_by=Freshness(1, "06:00"))
    assert check_project(dataclasses.replace(project, models=[later, demo.spend])) == []
