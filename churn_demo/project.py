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


class _Grid:
    """Daily counts per customer over [first, last] (days x customers), and window sums."""

    def __init__(self, events: pd.DataFrame, first: date, last: date) -> None:
        self.events = events.assign(day=events["event_time"].dt.tz_convert("UTC").dt.date)
        self.events = self.events[(self.events["day"] >= first) & (self.events["day"] <= last)]
        self.days = pd.Index([first + timedelta(days=i) for i in range((last - first).days + 1)])
        self.customers = pd.Index(np.sort(self.events["customer_id"].unique()))

    def count(self, kind: str | None = None, values: str | None = None) -> np.ndarray:
        """Events (of ``kind``) per day and customer, or the sum of ``values`` in cents."""
        ev = self.events if kind is None else self.events[self.events["event_type"] == kind]
        # Amounts in whole cents: window sums of integers are exact whatever the window's start.
        vals = (ev[values].fillna(0.0) * 100).round() if values else pd.Series(1.0, index=ev.index)
        table = (
            pd.DataFrame({"day": ev["day"], "customer_id": ev["customer_id"], "v": vals})
            .pivot_table(index="day", columns="customer_id", values="v", aggfunc="sum")
            .reindex(index=self.days, columns=self.customers, fill_value=0.0)
            .fillna(0.0)
        )
        return table.to_numpy(dtype="float64")

    def trailing(self, matrix: np.ndarray, width: int) -> np.ndarray:
        """Row i: the sum over days (i - width, i]."""
        cumulative = np.vstack([np.zeros((1, matrix.shape[1])), np.cumsum(matrix, axis=0)])
        ends = np.arange(1, len(self.days) + 1)
        return cumulative[ends] - cumulative[np.maximum(ends - width, 0)]

    def leading(self, matrix: np.ndarray, width: int) -> np.ndarray:
        """Row i: the sum over days (i, i + width] (only rows with the whole window known)."""
        cumulative = np.vstack([np.zeros((1, matrix.shape[1])), np.cumsum(matrix, axis=0)])
        starts = np.arange(1, len(self.days) + 1)
        ends = np.minimum(starts + width, len(self.days))
        return cumulative[ends] - cumulative[starts]

    def active(self) -> np.ndarray:
        """Active on day i: an event in the 30 days up to it and no cancellation in them."""
        recent = self.trailing(self.count(), WINDOW)
        return (recent > 0) & (self.trailing(self.count("cancel"), WINDOW) == 0)


def build_customer_activity(
    sources: Mapping[str, pd.DataFrame], dates: Sequence[date]
) -> pd.DataFrame:
    """One row per active customer per date: activity over 7/30 days and login recency."""
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
    """Per active customer per label date: cancelled, or spend, in the next 30 days."""
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
events = Source("events", schema=EVENTS_SCHEMA, time_column="event_time", id_column="event_id")
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
