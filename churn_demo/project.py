"""The churn demo as an fti project: two sources, two feature groups, two label groups and two
models that share features.

- ``events`` (CSV, UTC): logins, purchases, support tickets, cancellations, one file a day.
- ``crm`` (CSV, written in New York time, no id column): a daily snapshot of every customer's
  plan, seats, fee and region.
- ``customer_activity`` (from events) and ``customer_profile`` (from crm): feature groups.
- ``churned_30d`` (binary) and ``spend_next_30d`` (numeric): label groups, known 30 days later.
- ``churn`` (classifier on both groups) and ``spend`` (regressor on both groups).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fti.definitions import (
    LABEL,
    LABEL_DATE,
    Entity,
    FeatureGroup,
    LabelGroup,
    Model,
    Project,
    Source,
)

EVENT_TYPES = ["login", "purchase", "support_ticket", "cancel"]
PLANS = ["basic", "standard", "premium"]

# Raw rules, read as strings and coerced; every failure quarantines the row with its rule.
EVENTS_SCHEMA = pa.DataFrameSchema(
    {
        "event_id": pa.Column(str, nullable=False),
        "customer_id": pa.Column("int64", pa.Check.gt(0), nullable=False, coerce=True),
        "event_time": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        "event_type": pa.Column(str, pa.Check.isin(EVENT_TYPES), nullable=False),
        "amount": pa.Column("float64", pa.Check.in_range(0, 100_000), nullable=True, coerce=True),
        "plan": pa.Column(str, pa.Check.isin(PLANS), nullable=False),
        "signup_date": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
    },
    checks=[
        pa.Check(
            lambda df: (df["event_type"] != "purchase") | df["amount"].notna(),
            name="purchase_has_amount",
            error="a purchase needs an amount",
        ),
        pa.Check(
            lambda df: df["signup_date"] <= df["event_time"],
            name="signed_up_before_the_event",
            error="signup_date after the event",
        ),
    ],
    strict=False,
)

ACTIVITY = [
    "logins_7d",
    "logins_30d",
    "purchases_30d",
    "spend_7d",
    "spend_30d",
    "tickets_30d",
    "active_days_30d",
    "days_since_last_login",
]
PROFILE = ["plan", "monthly_fee", "seats", "region", "tenure_days", "days_since_plan_change"]
REGIONS = ["eu", "us", "apac"]
WINDOW = 30


CRM_ZONE = "America/New_York"  # the CRM exports its snapshot in New York time, no offset
CRM_SCHEMA = pa.DataFrameSchema(
    {
        "customer_id": pa.Column("int64", pa.Check.gt(0), nullable=False, coerce=True),
        "as_of": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        "plan": pa.Column(str, pa.Check.isin(PLANS), nullable=False),
        "monthly_fee": pa.Column(
            "float64", pa.Check.in_range(0, 10_000), nullable=False, coerce=True
        ),
        "seats": pa.Column("int64", pa.Check.in_range(1, 1000), nullable=False, coerce=True),
        "region": pa.Column(str, pa.Check.isin(REGIONS), nullable=False),
        "signup_date": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
        "plan_changed_at": pa.Column(pd.DatetimeTZDtype("ns", "UTC"), nullable=False, coerce=True),
    },
    checks=[
        pa.Check(
            lambda df: df["signup_date"] <= df["as_of"],
            name="signed_up_before_the_snapshot",
            error="signup_date after the snapshot",
        ),
        pa.Check(
            lambda df: df["plan_changed_at"] >= df["signup_date"],
            name="plan_changed_after_signup",
            error="plan_changed_at before signup_date",
        ),
    ],
    strict=False,
)


_EPOCH = date(1970, 1, 1)


def _day_number(day: date) -> int:
    """Days since 1970-01-01: what numpy's ``datetime64[D]`` holds."""
    return (day - _EPOCH).days


class _Daily:
    """Events summed per customer and UTC day over [first, last]: one row per (customer, day)
    that has an event, sorted by customer then day. Never a dense days x customers grid.

    Each row has an int64 key, ``customer rank * stride + day offset``, ordered like the rows,
    and each column its cumulative sum over the rows; a customer's sum over days (start, end] is
    then the difference of the cumulative sums at two keys found by ``np.searchsorted``. Memory
    grows with the events and the rows asked for, never with days x customers.
    """

    KINDS = {
        "logins": "login",
        "purchases": "purchase",
        "tickets": "support_ticket",
        "cancels": "cancel",
    }

    def __init__(self, events: pd.DataFrame, first: date, last: date) -> None:
        # Each event's UTC day as a day number, vectorised (no Python date per event).
        times = events["event_time"].dt.tz_convert(None).to_numpy()  # None: to UTC, then naive
        day = times.astype("datetime64[D]").view("int64")
        keep = (day >= _day_number(first)) & (day <= _day_number(last))
        # Windows start as early as the day before ``first``: day offsets are in [0, stride).
        origin = _day_number(first) - 1
        stride = _day_number(last) - origin + 1
        rank, customers = pd.factorize(events["customer_id"].to_numpy()[keep], sort=True)
        event_keys = rank * stride + (day[keep] - origin)
        # Sorted by key, the events of one (customer, day) are a run; a row starts each run.
        order = np.argsort(event_keys)
        event_keys = event_keys[order]
        starts = np.flatnonzero(np.diff(event_keys, prepend=-1))  # where the key changes
        self.keys = event_keys[starts]
        self.customer = customers[self.keys // stride]
        self.day = self.keys % stride + origin

        def cumulative(values: np.ndarray) -> np.ndarray:
            """Per-event values summed per row, then over the rows (from 0)."""
            per_row = np.add.reduceat(values[keep][order], starts, dtype="int64")
            return np.concatenate([[0], np.cumsum(per_row)])

        kind = events["event_type"]
        self.sums = {name: cumulative((kind == k).to_numpy()) for name, k in self.KINDS.items()}
        # Amounts in whole cents: window sums of integers are exact whatever the window.
        cents = np.round(events["amount"].fillna(0.0).to_numpy() * 100)
        purchase = (kind == "purchase").to_numpy()
        self.sums["cents"] = cumulative(np.where(purchase, cents, 0).astype("int64"))
        # The key of the latest login up to each row (of this customer or an earlier one).
        logins = np.where(np.diff(self.sums["logins"]) > 0, self.keys, -1)
        self.latest_login = np.maximum.accumulate(logins)

    def key(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """The key of each row's customer on another day."""
        return self.keys[rows] - self.day[rows] + days

    def upto(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Where each row's customer's cumulative sums up to ``days`` are (an index of ``sums``).

        For a row's own day, or any day before the customer's next row, it is ``rows + 1``.
        """
        return np.searchsorted(self.keys, self.key(rows, days), side="right")

    def total(self, column: str, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The sums of ``column`` over days (start, end], given as indices from ``upto``."""
        return self.sums[column][end] - self.sums[column][start]

    def days_since_login(self, rows: np.ndarray, days: np.ndarray) -> np.ndarray:
        """Days from each row's customer's latest login up to ``days``; WINDOW if none in the
        30 days up to it."""
        login = self.latest_login[rows]
        # In the window if after the window's start, which also makes it the same customer's;
        # keys of one customer differ by their days.
        start = self.key(rows, days - WINDOW)
        return np.where(login > start, start + WINDOW - login, WINDOW)

    def active(self, dates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The customers active on each date (day numbers, sorted): an event in the 30 days up
        to the date and no cancellation in them.

        Returns, for each (customer, date) pair, its row (the customer's latest up to the date),
        the position of its date in ``dates`` and where its 30-day window starts (an index from
        ``upto``). The pairs are in customer then date order, as their keys are: the order in
        which ``np.searchsorted`` and the sums are fastest.
        """
        # A row stands for its customer on the dates from its day until the customer's next
        # row or 30 days on, whichever is first: each customer with an event in the 30 days up
        # to a date comes once, from its latest row up to the date.
        until = self.day + WINDOW
        followed = self.customer[1:] == self.customer[:-1]  # the next row is the same customer's
        until[:-1] = np.where(followed, np.minimum(until[:-1], self.day[1:]), until[:-1])
        begin = np.searchsorted(dates, self.day)  # the first date on or after the row's day
        count = np.searchsorted(dates, until) - begin  # the dates before ``until``
        rows = np.repeat(np.arange(len(count)), count)
        # The pairs of a row are its dates begin, begin + 1, ...: number them within the row.
        at = np.arange(len(rows)) + np.repeat(begin - (np.cumsum(count) - count), count)
        month = self.upto(rows, dates[at] - WINDOW)
        active = self.total("cancels", month, rows + 1) == 0
        return rows[active], at[active], month[active]


def build_customer_activity(
    sources: Mapping[str, pd.DataFrame], dates: Sequence[date]
) -> pd.DataFrame:
    """One row per active customer per date: activity over 7/30 days and login recency.

    Sums events per customer and day, then answers each date's windows for the customers
    active on it only (``_Daily``): memory follows the events and the rows returned.
    """
    columns = ["customer_id", "feature_date", *ACTIVITY]
    events = sources["events"]
    if events.empty or not dates:
        return _empty(columns)
    days = sorted(set(dates))
    daily = _Daily(events, days[0] - timedelta(days=WINDOW - 1), days[-1])
    numbers = np.array([_day_number(d) for d in days], dtype="int64")
    rows, at, month = daily.active(numbers)
    if rows.size == 0:
        return _empty(columns)
    day = numbers[at]
    now = rows + 1  # the customer's rows up to the date end at its latest row
    week = daily.upto(rows, day - 7)
    since = daily.days_since_login(rows, day)
    by_date = np.argsort(at, kind="stable")  # the output's order: date, then customer
    frame = {
        "customer_id": daily.customer[rows[by_date]].astype("int64", copy=False),
        "feature_date": np.array(days, dtype=object)[at[by_date]],
        "logins_7d": daily.total("logins", week, now)[by_date],
        "logins_30d": daily.total("logins", month, now)[by_date],
        "purchases_30d": daily.total("purchases", month, now)[by_date],
        "spend_7d": np.round(daily.total("cents", week, now)[by_date] / 100, 2),
        "spend_30d": np.round(daily.total("cents", month, now)[by_date] / 100, 2),
        "tickets_30d": daily.total("tickets", month, now)[by_date],
        "active_days_30d": (now - month)[by_date],  # one row per day with an event
        "days_since_last_login": since[by_date],
    }
    return pd.DataFrame(frame, copy=False)  # the arrays become the columns, uncopied


def build_customer_profile(
    sources: Mapping[str, pd.DataFrame], dates: Sequence[date]
) -> pd.DataFrame:
    """Each customer's CRM snapshot of the date: plan, fee, seats, region, tenure, plan age."""
    columns = ["customer_id", "feature_date", *PROFILE]
    crm = sources["crm"]
    if crm.empty or not dates:
        return _empty(columns)
    day = crm["as_of"].dt.tz_convert(CRM_ZONE).dt.date  # the snapshot's own (New York) date
    crm = crm[day.isin(set(dates))].assign(feature_date=day)
    crm = crm.sort_values("as_of").drop_duplicates(["customer_id", "feature_date"], keep="last")
    as_of = pd.to_datetime(crm["feature_date"])

    def days_since(column: str) -> pd.Series:
        since = as_of - crm[column].dt.tz_convert(CRM_ZONE).dt.tz_localize(None).dt.normalize()
        return since.dt.days.astype("int64")

    frame = pd.DataFrame(
        {
            "customer_id": crm["customer_id"].astype("int64"),
            "feature_date": crm["feature_date"],
            "plan": crm["plan"].astype("str"),
            "monthly_fee": crm["monthly_fee"].astype("float64"),
            "seats": crm["seats"].astype("int64"),
            "region": crm["region"].astype("str"),
            "tenure_days": days_since("signup_date"),
            "days_since_plan_change": days_since("plan_changed_at"),
        }
    )
    return frame[columns].reset_index(drop=True)


def _labels(events: pd.DataFrame, dates: Sequence[date], value: str) -> pd.DataFrame:
    """Per active customer per label date: cancelled, or spend, in the next 30 days.

    As ``build_customer_activity``: sums per customer and day, then for each date only the
    customers active on it, summed over (date, date + 30 days].
    """
    columns = ["customer_id", LABEL_DATE, LABEL]
    if events.empty or not dates:
        return _empty(columns, label="float64")
    days = sorted(set(dates))
    daily = _Daily(events, days[0] - timedelta(days=WINDOW - 1), days[-1] + timedelta(days=WINDOW))
    if daily.keys.size == 0:  # no event in reach: the same empty frame as no events at all
        return _empty(columns, label="float64")
    numbers = np.array([_day_number(d) for d in days], dtype="int64")
    rows, at, _ = daily.active(numbers)
    now, ahead = rows + 1, daily.upto(rows, numbers[at] + WINDOW)
    if value == "cancel":
        label = (daily.total("cancels", now, ahead) > 0).astype("int64")
    else:
        label = np.round(daily.total("cents", now, ahead) / 100, 2)
    by_date = np.argsort(at, kind="stable")  # the output's order: date, then customer
    frame = {
        "customer_id": daily.customer[rows[by_date]].astype("int64", copy=False),
        LABEL_DATE: np.array(days, dtype=object)[at[by_date]],
        LABEL: label[by_date],
    }
    return pd.DataFrame(frame, copy=False)  # the arrays become the columns, uncopied


def churned_within_30_days(
    sources: Mapping[str, pd.DataFrame], dates: Sequence[date]
) -> pd.DataFrame:
    """1 when an active customer cancels in (label date, label date + 30 days], else 0."""
    return _labels(sources["events"], dates, "cancel")


def spend_in_next_30_days(
    sources: Mapping[str, pd.DataFrame], dates: Sequence[date]
) -> pd.DataFrame:
    """What an active customer spends in (label date, label date + 30 days]."""
    return _labels(sources["events"], dates, "spend")


def _empty(columns: list[str], **dtypes: str) -> pd.DataFrame:
    kinds = (
        {c: "int64" for c in columns}
        | {
            "feature_date": "object",
            LABEL_DATE: "object",
            "spend_7d": "float64",
            "spend_30d": "float64",
            "monthly_fee": "float64",
            "plan": "str",
            "region": "str",
        }
        | dtypes
    )
    return pd.DataFrame({c: pd.Series(dtype=kinds[c]) for c in columns})


CATEGORIES = {"plan": PLANS, "region": REGIONS}


def _prepare(features: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder

    steps: list[tuple[str, Any, list[str]]] = [
        (name, OneHotEncoder(categories=[values], handle_unknown="ignore"), [name])
        for name, values in CATEGORIES.items()
        if name in features
    ]
    steps.append(("numeric", "passthrough", [f for f in features if f not in CATEGORIES]))
    return ColumnTransformer(steps)


def _boosted(kind: str, params: dict[str, Any], features: list[str]) -> Any:
    from sklearn import ensemble
    from sklearn.pipeline import Pipeline

    model = getattr(ensemble, f"HistGradientBoosting{kind}")(
        max_iter=int(params.get("max_iter", 200)),
        learning_rate=float(params.get("learning_rate", 0.05)),
        max_depth=params.get("max_depth"),
        l2_regularization=float(params.get("l2_regularization", 0.0)),
        random_state=int(params.get("random_state", 0)),
    )
    return Pipeline([("prepare", _prepare(features)), ("model", model)])


def make_classifier(params: dict[str, Any], features: list[str]) -> Any:
    """Gradient-boosted trees over the features (plan and region one-hot): churn."""
    return _boosted("Classifier", params, features)


def make_regressor(params: dict[str, Any], features: list[str]) -> Any:
    """Gradient-boosted trees over the features (plan and region one-hot): spend."""
    return _boosted("Regressor", params, features)


customer = Entity("customer", key="customer_id", dtype="int64")
# An event id repeats across days only when a day's file is sent again, days later at most: a
# month's window keeps the nightly cross-day check to 30 days of ids however long the history.
events = Source(
    "events",
    schema=EVENTS_SCHEMA,
    time_column="event_time",
    id_column="event_id",
    unique_within_days=30,
)
crm = Source("crm", schema=CRM_SCHEMA, time_column="as_of", timezone=CRM_ZONE)
activity = FeatureGroup(
    "customer_activity",
    entity=customer,
    sources=[events],
    features=ACTIVITY,
    build=build_customer_activity,
    lookback_days=WINDOW,
    description="Activity counts and spend over 7/30 days, login recency; active customers only",
)
profile = FeatureGroup(
    "customer_profile",
    entity=customer,
    sources=[crm],
    features=PROFILE,
    build=build_customer_profile,
    description="The daily CRM snapshot: plan, fee, seats, region, tenure, plan age",
)
churned = LabelGroup(
    "churned_30d",
    entity=customer,
    sources=[events],
    horizon_days=WINDOW,
    lookback_days=WINDOW,
    build=churned_within_30_days,
    description="1 when an active customer cancels within the next 30 days",
)
spend_next = LabelGroup(
    "spend_next_30d",
    entity=customer,
    sources=[events],
    horizon_days=WINDOW,
    lookback_days=WINDOW,
    build=spend_in_next_30_days,
    description="What an active customer spends in the next 30 days",
)
churn = Model(
    "churn",
    label=churned,
    task="binary",
    metric="roc_auc",
    features=[
        "customer_activity.*",
        "customer_profile.plan",
        "customer_profile.tenure_days",
        "customer_profile.days_since_plan_change",
    ],
    ttl={"customer_profile": 7},
    estimator=make_classifier,
)
spend = Model(
    "spend",
    label=spend_next,
    task="regression",
    metric="neg_root_mean_squared_error",
    features=[
        "customer_activity.spend_7d",
        "customer_activity.spend_30d",
        "customer_activity.purchases_30d",
        "customer_activity.logins_30d",
        "customer_profile.*",
    ],
    ttl={"customer_profile": 7},
    estimator=make_regressor,
)
project = Project(
    "churn",
    start_date="2026-01-01",
    entities=[customer],
    sources=[events, crm],
    feature_groups=[activity, profile],
    labels=[churned, spend_next],
    models=[churn, spend],
)
