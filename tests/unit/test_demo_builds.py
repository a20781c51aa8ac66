"""The demo's event builds equal the dense-grid versions they replaced, for any events.

The reference below is the demo's former implementation, its logic unchanged, as an oracle: it
built a dense (days x customers) grid per event kind, which is simple to check by eye but does
not scale. The demo now aggregates per (customer, day) and looks only at the customers active on
each date; these tests hold it to exactly the same rows, column order, dtypes and values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churn_demo import project as demo
from fti.definitions import LABEL, LABEL_DATE

WINDOW = 30
ACTIVITY = demo.ACTIVITY


# --- The reference: the former dense-grid builds (logic unchanged) ----------------------------


class _Grid:
    """Daily counts per customer over [first, last] (days x customers), and window sums."""

    def __init__(self, events: pd.DataFrame, first: date, last: date) -> None:
        self.events = events.assign(day=events["event_time"].dt.tz_convert("UTC").dt.date)
        self.events = self.events[(self.events["day"] >= first) & (self.events["day"] <= last)]
        self.days = pd.Index([first + timedelta(days=i) for i in range((last - first).days + 1)])
        self.customers = pd.Index(np.sort(self.events["customer_id"].unique()))

    def count(self, kind: str | None = None, values: str | None = None) -> np.ndarray:
        ev = self.events if kind is None else self.events[self.events["event_type"] == kind]
        vals = (ev[values].fillna(0.0) * 100).round() if values else pd.Series(1.0, index=ev.index)
        table = (
            pd.DataFrame({"day": ev["day"], "customer_id": ev["customer_id"], "v": vals})
            .pivot_table(index="day", columns="customer_id", values="v", aggfunc="sum")
            .reindex(index=self.days, columns=self.customers, fill_value=0.0)
            .fillna(0.0)
        )
        return table.to_numpy(dtype="float64")

    def trailing(self, matrix: np.ndarray, width: int) -> np.ndarray:
        cumulative = np.vstack([np.zeros((1, matrix.shape[1])), np.cumsum(matrix, axis=0)])
        ends = np.arange(1, len(self.days) + 1)
        return cumulative[ends] - cumulative[np.maximum(ends - width, 0)]

    def leading(self, matrix: np.ndarray, width: int) -> np.ndarray:
        cumulative = np.vstack([np.zeros((1, matrix.shape[1])), np.cumsum(matrix, axis=0)])
        starts = np.arange(1, len(self.days) + 1)
        ends = np.minimum(starts + width, len(self.days))
        return cumulative[ends] - cumulative[starts]

    def active(self) -> np.ndarray:
        recent = self.trailing(self.count(), WINDOW)
        return (recent > 0) & (self.trailing(self.count("cancel"), WINDOW) == 0)


def reference_activity(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    columns = ["customer_id", "feature_date", *ACTIVITY]
    events = sources["events"]
    if events.empty or not dates:
        return _empty(columns)
    grid = _Grid(events, min(dates) - timedelta(days=WINDOW - 1), max(dates))
    if grid.events.empty:
        return _empty(columns)
    logins = grid.count("login")
    sums = {
        "logins_7d": grid.trailing(logins, 7),
        "logins_30d": grid.trailing(logins, WINDOW),
        "purchases_30d": grid.trailing(grid.count("purchase"), WINDOW),
        "spend_7d": grid.trailing(grid.count("purchase", "amount"), 7),
        "spend_30d": grid.trailing(grid.count("purchase", "amount"), WINDOW),
        "tickets_30d": grid.trailing(grid.count("support_ticket"), WINDOW),
        "active_days_30d": grid.trailing((grid.count() > 0).astype("float64"), WINDOW),
    }
    day_no = np.arange(len(grid.days), dtype="float64")[:, None]
    last_login = np.maximum.accumulate(np.where(logins > 0, day_no, -np.inf), axis=0)
    active = grid.active()
    frames = []
    for d in sorted(set(dates)):
        i = grid.days.get_loc(d)
        if not active[i].any():
            continue
        since = np.where(np.isfinite(last_login[i]), i - last_login[i], WINDOW)
        frame = {
            "customer_id": grid.customers.to_numpy()[active[i]].astype("int64"),
            "feature_date": d,
        }
        for name, values in sums.items():
            row = values[i][active[i]]
            frame[name] = (
                np.round(row / 100, 2) if name.startswith("spend") else row.astype("int64")
            )
        frame["days_since_last_login"] = np.minimum(since, WINDOW)[active[i]].astype("int64")
        frames.append(pd.DataFrame(frame))
    if not frames:
        return _empty(columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _reference_labels(events: pd.DataFrame, dates: Sequence[date], value: str) -> pd.DataFrame:
    columns = ["customer_id", LABEL_DATE, LABEL]
    if events.empty or not dates:
        return _empty(columns, label="float64")
    grid = _Grid(
        events, min(dates) - timedelta(days=WINDOW - 1), max(dates) + timedelta(days=WINDOW)
    )
    if grid.events.empty:
        return _empty(columns, label="float64")
    active = grid.active()
    if value == "cancel":
        ahead = (grid.leading(grid.count("cancel"), WINDOW) > 0).astype("int64")
    else:
        ahead = np.round(grid.leading(grid.count("purchase", "amount"), WINDOW) / 100, 2)
    frames = []
    for d in sorted(set(dates)):
        i = grid.days.get_loc(d)
        frames.append(
            pd.DataFrame(
                {
                    "customer_id": grid.customers.to_numpy()[active[i]].astype("int64"),
                    LABEL_DATE: d,
                    LABEL: ahead[i][active[i]],
                }
            )
        )
    return pd.concat(frames, ignore_index=True)[columns]


def reference_churned(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    return _reference_labels(sources["events"], dates, "cancel")


def reference_spend(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> pd.DataFrame:
    return _reference_labels(sources["events"], dates, "spend")


def _empty(columns: list[str], **dtypes: str) -> pd.DataFrame:
    kinds = (
        {c: "int64" for c in columns}
        | {"feature_date": "object", LABEL_DATE: "object", "spend_7d": "float64"}
        | {"spend_30d": "float64"}
        | dtypes
    )
    return pd.DataFrame({c: pd.Series(dtype=kinds[c]) for c in columns})


Build = Callable[[Mapping[str, pd.DataFrame], Sequence[date]], pd.DataFrame]
PAIRS: list[tuple[Build, Build]] = [
    (demo.build_customer_activity, reference_activity),
    (demo.churned_within_30_days, reference_churned),
    (demo.spend_in_next_30_days, reference_spend),
]


def assert_same_builds(sources: Mapping[str, pd.DataFrame], dates: Sequence[date]) -> None:
    for build, reference in PAIRS:
        pd.testing.assert_frame_equal(
            build(sources, dates), reference(sources, dates), check_exact=True
        )


# --- Random small event frames ------------------------------------------------------------------

START = date(2026, 1, 1)
KINDS = ["login"] * 4 + ["purchase"] * 3 + ["support_ticket", "cancel", "other"]
amounts = st.one_of(
    st.integers(0, 10_000_000).map(lambda cents: cents / 100),  # whole cents, up to 100,000
    st.integers(0, 100_000).map(lambda mills: mills / 1000),  # tenths of a cent: rounding
    st.floats(0, 1_000, allow_nan=False),
    st.just(float("nan")),
)
event = st.tuples(
    st.sampled_from([1, 2, 3, 2**40]),  # customer: few, so each has events in most windows
    st.integers(0, 69),  # day
    st.sampled_from([0, 1, 3_600 * 12, 86_399]),  # second of the day
    st.sampled_from(KINDS),
    amounts,
)


# Offsets of a date from an event's day that put the event on a window's edge.
EDGES = [-31, -30, -1, 0, 6, 7, 29, 30]


@st.composite
def events_and_dates(draw: st.DrawFn) -> tuple[pd.DataFrame, list[date]]:
    """Events as the source's schema types them (the times in UTC or another zone), and dates:
    anywhere from well before the events to well after, or on the edge of an event's windows."""
    rows = draw(st.lists(event, min_size=15, max_size=80))
    zone = draw(st.sampled_from(["UTC", "UTC", "America/New_York"]))
    times = pd.DatetimeIndex(
        [pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=d, seconds=s) for _, d, s, _, _ in rows],
        dtype="datetime64[us, UTC]",
    )
    events = pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(len(rows))],
            "customer_id": pd.array([r[0] for r in rows], dtype="int64"),
            "event_time": times.tz_convert(zone),
            "event_type": pd.array([r[3] for r in rows], dtype="str"),
            "amount": pd.array([r[4] for r in rows], dtype="float64"),
        }
    )
    near = st.tuples(st.sampled_from(rows), st.sampled_from(EDGES)).map(lambda e: e[0][1] + e[1])
    days = st.one_of(st.integers(-40, 110), near)
    dates = draw(st.lists(days.map(lambda n: START + timedelta(days=n)), max_size=8))
    return events, dates


@settings(max_examples=60, deadline=None)
@given(case=events_and_dates())
def test_the_builds_equal_the_dense_grid_reference(case: tuple[pd.DataFrame, list[date]]) -> None:
    events, dates = case
    assert_same_builds({"events": events}, dates)


def at(day: int, hour: int = 0) -> pd.Timestamp:
    return pd.Timestamp(START, tz="UTC") + pd.Timedelta(days=day, hours=hour)


# Customer 7 buys on day 0, logs in on day 1 and cancels on day 31; 9 cancels on day 0; 8 buys
# on day 31 (1.005: half a cent, as floats hold it).
EDGE_EVENTS = pd.DataFrame(
    {
        "customer_id": pd.array([7, 9, 7, 8, 7], dtype="int64"),
        "event_time": pd.DatetimeIndex(
            [at(0, 1), at(0, 2), at(1, 6), at(31), at(31)], dtype="datetime64[us, UTC]"
        ),
        "event_type": pd.array(["purchase", "cancel", "login", "purchase", "cancel"], dtype="str"),
        "amount": [12.345, float("nan"), float("nan"), 1.005, float("nan")],
    }
)


@pytest.mark.parametrize(
    "days",
    [
        [-31],  # the first events are one day past the labels' horizon
        [-5],  # events ahead only: nobody active, the labels' window holds events
        [0],  # 7 active; its cancellation is 31 days ahead, just past the horizon
        [1, 2],  # 7 active; it cancels 30 and 29 days ahead
        [30, 31],  # 7 active on 30 (login 29 days ago), cancelled on 31; 8 active on 31
        [61],  # the last events are on day 31, one day before the window
        [],
    ],
)
def test_edge_cases_equal_the_reference(days: list[int]) -> None:
    dates = [START + timedelta(days=n) for n in days]
    assert_same_builds({"events": EDGE_EVENTS}, dates)
    assert_same_builds({"events": EDGE_EVENTS.iloc[:0]}, dates)


def test_generated_demo_data_builds_equal_the_reference_over_a_range(tmp_path: Path) -> None:
    """Three months of the demo's raw events, typed by the source's schema, built as one range.

    Written without bad rows: validation would quarantine them, so the builds never see them.
    """
    from churn_demo.generate import generate

    first, last = date(2026, 1, 1), date(2026, 3, 31)
    paths = generate(tmp_path, first, last, customers=300, seed=3, bad_share=0.0)
    raw = pd.concat(
        [pd.read_csv(p, dtype=str) for p in paths if p.parent.name == demo.events.name],
        ignore_index=True,
    )
    events = demo.EVENTS_SCHEMA.validate(raw)
    dates = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    assert_same_builds({"events": events}, dates)
    assert len(demo.build_customer_activity({"events": events}, dates)) > 10_000
