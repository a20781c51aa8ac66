"""What retention keeps and frees, decided from plain facts (fti.retention.plan), the staged
files it lists (fti.retention.staging), and params.yaml's retention section."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pytest

from fti.errors import ConfigError
from fti.retention import staging
from fti.retention.plan import ModelRow, decide_groups, decide_models, staging_cuts
from fti.retention.policy import Policy, read_policy
from tests.projects import weather

DAY = date(2026, 3, 1)


def row(version: int, sha: str | None = None, name: str = "rain", pruned: bool = False) -> ModelRow:
    digest = sha or f"sha{version}"
    return ModelRow(name, version, f"/a/{digest}.skops", digest, {"g": version}, "y", 1, pruned)


def test_models_keep_aliases_ever_held_scored_versions_and_the_newest_n() -> None:
    rows = [row(v) for v in range(1, 8)] + [row(1, sha="other1", name="other")]
    sizes = {r.artifact_uri: 100 for r in rows}
    plan = decide_models(
        rows,
        aliased={("rain", 2): {"was champion"}, ("rain", 6): {"champion"}},
        scored={("rain", 3)},
        keep=2,
        artifact_sizes=sizes,
    )
    assert sorted(plan.kept) == [("other", 1), ("rain", 2), ("rain", 3), ("rain", 6), ("rain", 7)]
    assert plan.kept[("rain", 6)] == ["newest 2", "champion"]
    assert [(r.name, r.version) for r in plan.pruned] == [("rain", 1), ("rain", 4), ("rain", 5)]
    assert sorted(plan.artifacts) == ["/a/sha1.skops", "/a/sha4.skops", "/a/sha5.skops"]


def test_an_artifact_a_kept_version_shares_stays_and_a_pruned_ones_file_goes_once() -> None:
    rows = [row(1, sha="same"), row(2, sha="same"), row(3, pruned=True), row(4), row(5)]
    sizes = {"/a/same.skops": 10, "/a/sha3.skops": 30}  # v4's and v5's files: gone already
    plan = decide_models(rows, {}, set(), keep=1, artifact_sizes=sizes | {"/a/sha5.skops": 50})
    assert [r.version for r in plan.pruned] == [1, 2, 4]  # v3 was pruned by an earlier gc
    assert plan.artifacts == {"/a/same.skops": 10, "/a/sha3.skops": 30}  # v3's: left by a kill
    kept_shares = decide_models(rows, {("rain", 2): {"champion"}}, set(), 1, sizes)
    assert "/a/same.skops" not in kept_shares.artifacts


def test_groups_keep_the_newest_n_and_every_version_something_kept_reads() -> None:
    tags = {"daily": [1, 2, 3, 4, 5], "labels": [1, 2], "alone": [7]}
    named = {("daily", 2): {"model rain v3"}, ("labels", 1): {"a training set in staging"}}
    plan = decide_groups(tags, named | {("daily", 9): {"a prediction run"}}, keep=2)
    assert plan.dropped == [("daily", 1), ("daily", 3)]
    assert plan.kept[("daily", 2)] == ["model rain v3"]
    assert plan.kept[("alone", 7)] == ["newest 2"]
    assert ("daily", 9) not in plan.kept  # named, but not in the store: nothing to keep


def test_staged_days_go_before_the_longest_look_back_and_the_id_window() -> None:
    project = weather.project  # readings: no id column; daily_weather looks back 7 days
    next_dates = {g.name: DAY for g in project.groups}
    cuts = staging_cuts(project, next_dates, {"readings": DAY}, rerun_days=3)
    assert cuts["readings"] == (
        DAY - timedelta(days=3 + 6),
        "daily_weather's look-back of 7 day(s)",
    )

    unique = replace(weather.readings, id_column="station_id", unique_within_days=30)
    windowed = replace(
        project,
        sources=[unique],
        feature_groups=[replace(weather.daily_weather, sources=[unique])],
        labels=[],
        models=[],
    )
    first, why = staging_cuts(windowed, next_dates, {"readings": DAY}, rerun_days=3)["readings"]
    assert (first, why) == (DAY - timedelta(days=33), "ids unique within 30 day(s)")

    forever = replace(unique, unique_within_days=None)
    kept = replace(
        windowed,
        sources=[forever],
        feature_groups=[replace(weather.daily_weather, sources=[forever])],
    )
    assert staging_cuts(kept, next_dates, {"readings": DAY}, 3)["readings"][0] is None
    assert staging_cuts(project, {}, {}, 3)["readings"][0] is None  # no version yet


def test_staging_lists_old_days_old_builds_and_all_but_the_newest_runs(tmp_path: Path) -> None:
    validated = tmp_path / "validated" / "readings"
    validated.mkdir(parents=True)
    for offset in range(5):
        day = DAY - timedelta(days=offset)
        (validated / f"{day}.parquet").write_bytes(b"x" * 10)
        (validated / f"{day}.ids.npy").write_bytes(b"y")
    builds = tmp_path / "features" / "daily_weather"
    (builds / f"{DAY - timedelta(days=9)}_{DAY - timedelta(days=8)}_night").mkdir(parents=True)
    (builds / f"{DAY}_{DAY}_night.published.json").write_text("{}")
    # Another project's build and training sets in the shared staging: its own gc's to remove.
    (tmp_path / "features" / "theirs" / f"{DAY - timedelta(days=9)}_{DAY}_night").mkdir(
        parents=True
    )
    theirs = tmp_path / "training" / "their_model"
    theirs.mkdir(parents=True)
    for n in range(3):
        (theirs / f"run-{n}.parquet").write_text("t")
    training = tmp_path / "training" / "rain"
    training.mkdir(parents=True)
    for n in range(3):
        for suffix in (".parquet", ".json"):
            (training / f"run-{n}{suffix}").write_text("t")
            os.utime(training / f"run-{n}{suffix}", (1_000_000 + n, 1_000_000 + n))

    cuts = {"readings": (DAY - timedelta(days=2), "a look-back")}
    gone = staging.validated_removals(tmp_path, cuts)
    assert sorted(f.path.name for f in gone) == sorted(
        f"{DAY - timedelta(days=d)}{s}" for d in (3, 4) for s in (".parquet", ".ids.npy")
    )
    builds_gone = staging.build_removals(
        tmp_path, {"daily_weather": DAY, "theirs": DAY}, rerun_days=3, theirs=["theirs"]
    )
    assert [f.path.name for f in builds_gone] == [
        f"{DAY - timedelta(days=9)}_{DAY - timedelta(days=8)}_night"
    ]
    runs = staging.run_removals(tmp_path, keep=2, theirs=["their_model"])
    assert sorted(f.path.name for f in runs) == ["run-0.json", "run-0.parquet"]
    written = 1_000_000  # run-0's files' time: kept while younger than the minimum age
    assert staging.settled(runs, min_age_hours=1, now=written + 3_599) == []
    assert staging.settled(runs, min_age_hours=1, now=written + 3_600) == runs
    assert staging.remove([*gone, *builds_gone, *runs]) == 2 * 10 + 2 * 1 + 2
    assert len(list(validated.iterdir())) == 6


@pytest.mark.parametrize(
    ("section", "said"),
    [
        ({"keep_versions": 3}, "retention.keep_versions is not a retention setting"),
        (
            {"keep_model_versions": 0},
            "retention.keep_model_versions = 0: must be a whole number >= 1",
        ),
        (
            {"keep_group_versions": "5"},
            "retention.keep_group_versions = '5': must be a whole number",
        ),
        ({"rerun_days": -1}, "retention.rerun_days = -1: must be a whole number >= 0"),
        ({"remote": "yes"}, "retention.remote = 'yes': must be true or false"),
    ],
)
def test_a_bad_retention_setting_is_one_line_naming_the_key(
    tmp_path: Path, section: dict, said: str
) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(f"retention: {section}\n".replace("'", '"'))
    with pytest.raises(ConfigError) as error:
        read_policy(params)
    assert str(error.value).startswith(f"{params}: {said}")
    assert "\n" not in str(error.value)


def test_without_a_retention_section_the_defaults_hold(tmp_path: Path) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("train: {}\n")
    assert read_policy(params) == Policy()
    assert Policy() == Policy(5, 5, 7, True, 24, False)
