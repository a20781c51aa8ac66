"""The skew guard refuses to score on features that differ from the trained ones."""

from __future__ import annotations

import pytest

from fti.errors import SkewError
from fti.inference.skew import check_features

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
