"""fti hands a group's build no more than a date may see, and catches a build that peeks ahead."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from churn_demo import project as demo
from fti.errors import LeakageError, StoreError
from fti.features.build import build_partitions

DAYS = [date(2026, 3, 1) + timedelta(days=n) for n in range(90)]


def synthetic_events(seed: int = 0) -> pd.DataFrame:
    """Logins, purchases, tickets and cancels of 80 customers over DAYS."""
    rng = np.random.default_rng(seed)
    rows = []
    for day in DAYS:
        for customer in rng.choice(80, size=40, replace=False) + 1:
            kind = rng.choice(
                ["login", "login", "purchase", "support_ticket", "cancel"],
                p=[0.5, 0.2, 0.2, 0.08, 0.02],
            )
            when = pd.Timestamp(day, tz="UTC") + pd.Timedelta(seconds=int(rng.integers(0, 86_399)))
            amount = round(float(rng.lognormal(2.5, 0.4)), 2) if kind == "purchase" else None
            rows.append((int(customer), when, kind, amount))
    return pd.DataFrame(rows, columns=["customer_id", "event_time", "event_type", "amount"])


EVENTS = {"events": synthetic_events()}


@pytest.mark.parametrize(
    "group", [demo.activity, demo.churned, demo.spend_next], ids=lambda g: g.name
)
def test_a_range_build_equals_each_day_built_alone(group) -> None:  # type: ignore[no-untyped-def]
    """The demo's honest builds pass the check, and a range equals its days one at a time."""
    horizon = getattr(group, "horizon_days", 0)
    dates = DAYS[30 : len(DAYS) - horizon]
    ranged = build_partitions(group, EVENTS, dates, check_dates=len(dates))
    for day in dates[:: max(1, len(dates) // 5)]:
        until = pd.Timestamp(day + timedelta(days=horizon + 1), tz="UTC")
        alone = build_partitions(
            group, {"events": EVENTS["events"][EVENTS["events"]["event_time"] < until]}, [day]
        )
        assert ranged[day].equals(alone[day])
    assert sum(t.num_rows for t in ranged.values()) > 0


def peeking_build(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    """Counts every event a customer ever has, including ones after the date: a leak."""
    frame = demo.build_customer_activity(sources, dates)
    totals = sources["events"].groupby("customer_id").size()
    frame["logins_30d"] = frame["customer_id"].map(totals).astype("int64")
    return frame


def test_a_build_that_peeks_ahead_is_refused_naming_the_group_and_the_column() -> None:
    leaky = dataclasses.replace(demo.activity, build=peeking_build)
    with pytest.raises(LeakageError) as raised:
        build_partitions(leaky, EVENTS, DAYS[30:45])
    assert str(raised.value).startswith(
        "feature group 'customer_activity': column 'logins_30d' of 2026-03-31 differs when built "
        "with events up to 2026-03-31 only and within a range to 2026-04-14"
    )
    # One date at a time has nothing ahead of it to peek at.
    assert build_partitions(leaky, EVENTS, [DAYS[40]])


def test_a_label_that_looks_past_its_horizon_is_refused() -> None:
    def beyond(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
        frame = demo.churned_within_30_days(sources, dates)
        cancels = sources["events"][sources["events"]["event_type"] == "cancel"]
        frame["label"] = frame["customer_id"].isin(cancels["customer_id"]).astype("int64")
        return frame

    with pytest.raises(LeakageError, match="label group 'churned_30d': column 'label'"):
        build_partitions(dataclasses.replace(demo.churned, build=beyond), EVENTS, DAYS[0:20])


def test_a_build_must_return_exactly_its_declared_columns() -> None:
    def extra(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
        return demo.build_customer_activity(sources, dates).assign(secret=1)

    with pytest.raises(
        StoreError,
        match="feature group 'customer_activity': build\\(\\) returned undeclared column\\(s\\) secret",
    ):
        build_partitions(dataclasses.replace(demo.activity, build=extra), EVENTS, DAYS[30:32])

    def missing(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
        return demo.build_customer_activity(sources, dates).drop(columns=["spend_7d"])

    with pytest.raises(StoreError, match="returned no column\\(s\\) spend_7d"):
        build_partitions(dataclasses.replace(demo.activity, build=missing), EVENTS, DAYS[30:32])
