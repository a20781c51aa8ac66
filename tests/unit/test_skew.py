"""The skew guard refuses to score on features that differ from the trained ones."""

from __future__ import annotations

import pyarrow as pa
import pytest

from fti.errors import SkewError
from fti.inference.skew import ServingProfile, check_features

TRAINED = [{"name": "logins_7d", "dtype": "int64"}, {"name": "plan", "dtype": "large_string"}]


def test_same_features_pass() -> None:
    check_features(
        "churn v1", TRAINED, {"logins_7d": "int64", "plan": "large_string", "new": "double"}, "g v2"
    )


def test_missing_feature_is_refused_by_name() -> None:
    with pytest.raises(SkewError, match="missing feature.*plan"):
        check_features("churn v1", TRAINED, {"logins_7d": "int64"}, "g v2")


def test_changed_dtype_is_refused_with_both_types() -> None:
    with pytest.raises(SkewError, match=r"logins_7d \(trained on int64, g v2 has double\)"):
        check_features("churn v1", TRAINED, {"logins_7d": "double", "plan": "large_string"}, "g v2")


def profile_of(
    columns: dict[str, list[object]], training: dict[str, dict[str, object]]
) -> list[dict[str, object]]:
    profile = ServingProfile(list(columns), training)  # type: ignore[arg-type]
    table = pa.table(columns)
    for batch in table.to_batches(max_chunksize=2):  # statistics add up across batches
        profile.add(batch)
    return profile.warnings()


TRAINING = {"x": {"nulls": 0, "count": 100, "min": 0.0, "max": 10.0}}


def test_values_inside_or_near_the_training_range_are_fine() -> None:
    assert profile_of({"x": [0.0, 5.0, 19.9, -9.9, None]}, TRAINING) == []


def test_values_far_outside_the_training_range_are_counted() -> None:
    (warning,) = profile_of({"x": [1.0, 25.0, -11.0, 3.0, 30.0]}, TRAINING)
    assert warning["rule"] == "far_out_of_range"
    assert warning["message"].startswith("x: 3 of 5 values outside [-10, 20]")


def test_a_feature_null_in_every_row_is_reported_unless_training_was_too() -> None:
    nulls = pa.array([None, None, None], pa.float64())
    assert [w["rule"] for w in profile_of({"x": nulls}, TRAINING)] == ["all_null"]  # type: ignore[dict-item]
    always_null = {"x": {"nulls": 100, "count": 100}}
    assert profile_of({"x": nulls}, always_null) == []  # type: ignore[dict-item]


def test_no_training_statistics_means_no_range_check() -> None:
    assert profile_of({"x": [1e9]}, {}) == []
