"""Point-in-time correct joins of label rows to feature rows."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd


def point_in_time_join(
    labels: pd.DataFrame,
    features: pd.DataFrame,
    entity: str,
    label_time: str,
    feature_time: str,
    ttl: timedelta | None = None,
) -> pd.DataFrame:
    """For each label row, attach the newest feature row of the same entity at or before its time.

    Never a later row. Rows without such a feature row (or one older than ``ttl``) get nulls.
    Input order does not matter; the result keeps ``labels``' order and index. When several
    feature rows share the newest timestamp, the last of them in ``features``' order wins.
    """
    left = labels.reset_index(names="__label_index")
    left["__pos"] = range(len(left))
    left["__t"] = _as_time(left[label_time])
    right = features.rename(columns={feature_time: "__ft"}).copy()
    right["__t"] = _as_time(right["__ft"])
    if not left.empty and not right.empty and left["__t"].dt.tz != right["__t"].dt.tz:
        raise ValueError(
            f"label time {label_time!r} and feature time {feature_time!r} differ in time zone"
        )
    right = right.reset_index(drop=True).reset_index(names="__order")
    left = left.sort_values("__t", kind="stable")
    right = right.sort_values(["__t", "__order"], kind="stable")
    joined = pd.merge_asof(
        left,
        right,
        on="__t",
        by=entity,
        direction="backward",
        allow_exact_matches=True,
        tolerance=pd.Timedelta(ttl) if ttl is not None else None,
    )
    joined = joined.sort_values("__pos").set_index("__label_index")
    joined.index.name = labels.index.name
    joined = joined.rename(columns={"__ft": feature_time})
    return joined.drop(columns=["__t", "__order", "__pos"])


def _as_time(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.as_unit("ns")  # one unit on both sides; tz kept
