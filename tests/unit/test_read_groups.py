"""Groups a project reads from another project (issue 29): their definition checks, the two
views of a project's groups, the manifest the DAGs follow, and the comparison with a version's
schema."""

from __future__ import annotations

import dataclasses

import pytest

from fti.definitions import Entity, ReadGroup, ReadLabelGroup, check_project
from fti.manifest import builds_groups, manifest_of
from fti.monitoring.runs import manifest_dags
from fti.read_groups import read_problems
from tests.projects import weather, weather_reader

READER = weather_reader.project
GROUP = weather_reader.daily_weather


def with_reads(*reads: object, **changes: object) -> object:
    return dataclasses.replace(READER, reads=list(reads), **changes)


def test_a_reader_uses_read_groups_but_builds_and_watches_none() -> None:
    assert check_project(READER) == []
    assert READER.groups == []  # what its pipelines publish and its monitors watch
    assert READER.readable_groups == [GROUP, weather_reader.rain_tomorrow]
    assert READER.readable_group("rain_tomorrow") is weather_reader.rain_tomorrow
    assert READER.model_groups(weather_reader.rain_soon) == ["daily_weather"]
    assert [f.name for f in READER.model_features(weather_reader.rain_soon)] == list(
        weather_reader.TYPES
    )


def test_the_manifest_lists_read_groups_as_the_models_groups_only() -> None:
    manifest = manifest_of(READER, "tests.projects.weather_reader:project")
    assert manifest["feature_groups"] == [] and manifest["labels"] == []
    (model,) = manifest["models"]
    # The training DAG's assets come from these: it waits on the owner's publishes.
    assert (model["groups"], model["label"]) == (["daily_weather"], "rain_tomorrow")
    # It builds nothing: no feature pipeline DAG (dags/feature_pipeline.py) to list or run.
    assert not builds_groups(manifest)
    assert manifest_dags(manifest) == ["rain_soon_training", "rain_soon_inference"]
    own = manifest_of(weather_reader.with_own_group, "tests.projects.weather_reader:x")
    assert builds_groups(own) and manifest_dags(own)[0] == "forecasts_feature_pipeline"


@pytest.mark.parametrize(
    ("project", "message"),
    [
        (
            dataclasses.replace(
                weather.project, reads=[dataclasses.replace(GROUP, owner="forecasts")]
            ),
            "read feature group 'daily_weather': this project builds a group of that name too; "
            "rename one of them",
        ),
        (
            with_reads(GROUP, weather_reader.rain_tomorrow, entities=[Entity("site", "site_id")]),
            "read feature group 'daily_weather': entity 'station' is not in the project's entities",
        ),
        (
            with_reads(dataclasses.replace(GROUP, owner="forecasts"), weather_reader.rain_tomorrow),
            "read feature group 'daily_weather': owner is this project ('forecasts'); a group it "
            "builds is a FeatureGroup or LabelGroup, not a read",
        ),
        (
            with_reads(dataclasses.replace(GROUP, owner="Weather"), weather_reader.rain_tomorrow),
            "read feature group 'daily_weather': owner 'Weather' is not a project name",
        ),
        (
            with_reads(dataclasses.replace(GROUP, features={}), weather_reader.rain_tomorrow),
            "read feature group 'daily_weather': features must map each column it reads to its "
            "type",
        ),
        (
            with_reads(
                dataclasses.replace(GROUP, features={"temp_mean": None}),
                weather_reader.rain_tomorrow,
            ),
            "read feature group 'daily_weather': feature 'temp_mean' has type None",
        ),
        (
            with_reads(GROUP, dataclasses.replace(weather_reader.rain_tomorrow, horizon_days=0)),
            "read label group 'rain_tomorrow': horizon_days must be at least 1",
        ),
        (
            with_reads(GROUP),
            "model 'rain_soon': label group 'rain_tomorrow' is not in the project's labels or "
            "reads",
        ),
    ],
)
def test_each_mistake_in_a_read_is_one_line_naming_it(project, message: str) -> None:  # type: ignore[no-untyped-def]
    assert any(p.startswith(message) for p in check_project(project)), check_project(project)


def test_declared_types_read_pandas_aliases_as_the_catalogs_arrow_names() -> None:
    group = ReadGroup("g", Entity("e", "e_id"), "a", {"x": "float64", "y": "str", "z": "int64"})
    assert group.declared == {"x": "double", "y": "string", "z": "int64"}
    label = ReadLabelGroup("l", Entity("e", "e_id"), "a", horizon_days=3, label="bool")
    assert label.declared == {"label": "bool"}


def test_a_version_about_another_entity_is_named_with_its_columns() -> None:
    schema = {"site_id": "string", "feature_date": "date32[day]", "temp_mean": "double"}
    assert read_problems(GROUP, ["rain_soon"], 4, "features", schema) == [
        "model 'rain_soon': feature group 'daily_weather' read from project 'weather' has no "
        "column 'station_id' (the key of entity 'station') in its newest version v4; it has "
        "site_id, feature_date, temp_mean: declare the entity it is about"
    ]


def test_a_column_without_values_yet_matches_any_declared_type() -> None:
    schema = {"station_id": "string", "feature_date": "date32[day]"} | {
        name: "double" for name in weather_reader.TYPES
    }
    retyped = read_problems(GROUP, ["rain_soon"], 2, "features", schema)
    assert retyped == [
        "model 'rain_soon': feature 'daily_weather.rain_days_7d' read from project 'weather' is "
        "declared int64 but its newest version v2 has double (retyped?); declare the new type, "
        "or ask the owner"
    ]
    # All null so far (Arrow type null): the store types it with its first values, so it holds.
    assert (
        read_problems(GROUP, ["rain_soon"], 2, "features", schema | {"rain_days_7d": "null"}) == []
    )
