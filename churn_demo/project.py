"""The churn demo as an fti project definition: source rules, features, label, model."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa

from fti.project import FeatureGroup, Label, ModelSpec, Project, Source

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
        )
    ],
    strict=False,
)

FEATURES = [
    "logins_7d",
    "logins_30d",
    "purchases_30d",
    "spend_7d",
    "spend_30d",
    "tickets_30d",
    "active_days_30d",
    "days_since_last_login",
    "tenure_days",
    "plan",
]
WINDOW = 30


def build_customer_activity(events: pd.DataFrame, dates: Sequence[date]) -> pd.DataFrame:
    """One row per active customer per date: activity over 7/30 days, recency, tenure, plan.

    Active = an event in the 30 days up to and including the date and no cancellation in them.
    """
    columns = ["customer_id", "feature_date", *FEATURES]
    if events.empty or not dates:
        return _empty_features(columns)
    ev = events.assign(day=events["event_time"].dt.tz_convert("UTC").dt.date)
    first, last = min(dates) - timedelta(days=WINDOW - 1), max(dates)
    ev = ev[(ev["day"] >= first) & (ev["day"] <= last)]
    if ev.empty:
        return _empty_features(columns)
    days = pd.Index([first + timedelta(days=i) for i in range((last - first).days + 1)])
    customers = pd.Index(np.sort(ev["customer_id"].unique()))

    def grid(mask: pd.Series, values: pd.Series | None = None) -> np.ndarray:
        sub = ev[mask]
        vals = values[mask] if values is not None else pd.Series(1.0, index=sub.index)
        table = (
            pd.DataFrame({"day": sub["day"], "customer_id": sub["customer_id"], "v": vals})
            .pivot_table(index="day", columns="customer_id", values="v", aggfunc="sum")
            .reindex(index=days, columns=customers, fill_value=0.0)
            .fillna(0.0)
        )
        return table.to_numpy(dtype="float64")

    def window_sum(matrix: np.ndarray, width: int) -> np.ndarray:
        cumulative = np.vstack([np.zeros((1, matrix.shape[1])), np.cumsum(matrix, axis=0)])
        ends = np.arange(1, len(days) + 1)
        return cumulative[ends] - cumulative[np.maximum(ends - width, 0)]

    kind = ev["event_type"]
    logins = grid(kind == "login")
    purchases = grid(kind == "purchase")
    spend = grid(kind == "purchase", ev["amount"].fillna(0.0))
    tickets = grid(kind == "support_ticket")
    cancels = grid(kind == "cancel")
    any_event = grid(pd.Series(True, index=ev.index))

    day_no = np.arange(len(days), dtype="float64")[:, None]
    last_login = np.maximum.accumulate(np.where(logins > 0, day_no, -np.inf), axis=0)
    latest = ev.sort_values("event_time").groupby("customer_id").last()
    plan = latest["plan"].reindex(customers).to_numpy()
    signup = latest["signup_date"].dt.tz_convert("UTC").dt.date.reindex(customers).to_numpy()

    sums = {
        "logins_7d": window_sum(logins, 7),
        "logins_30d": window_sum(logins, WINDOW),
        "purchases_30d": window_sum(purchases, WINDOW),
        "spend_7d": window_sum(spend, 7),
        "spend_30d": window_sum(spend, WINDOW),
        "tickets_30d": window_sum(tickets, WINDOW),
        "active_days_30d": window_sum((any_event > 0).astype("float64"), WINDOW),
    }
    recent_events = window_sum(any_event, WINDOW)
    recent_cancels = window_sum(cancels, WINDOW)
    frames = []
    for d in sorted(set(dates)):
        i = days.get_loc(d)
        active = (recent_events[i] > 0) & (recent_cancels[i] == 0)
        if not active.any():
            continue
        since = np.where(np.isfinite(last_login[i]), i - last_login[i], WINDOW)
        frame = {"customer_id": customers.to_numpy()[active].astype("int64"), "feature_date": d}
        for name, values in sums.items():
            row = values[i][active]
            frame[name] = np.round(row, 2) if name.startswith("spend") else row.astype("int64")
        frame["days_since_last_login"] = np.minimum(since, WINDOW)[active].astype("int64")
        frame["tenure_days"] = np.array([(d - s).days for s in signup[active]], dtype="int64")
        frame["plan"] = pd.array(plan[active], dtype="str")
        frames.append(pd.DataFrame(frame))
    if not frames:
        return _empty_features(columns)
    return pd.concat(frames, ignore_index=True)[columns]


def _empty_features(columns: list[str]) -> pd.DataFrame:
    dtypes = {c: "int64" for c in columns} | {
        "feature_date": "object",
        "spend_7d": "float64",
        "spend_30d": "float64",
        "plan": "str",
    }
    return pd.DataFrame({c: pd.Series(dtype=dtypes[c]) for c in columns})


def cancels_within_30_days(events: pd.DataFrame, keys: pd.DataFrame) -> pd.Series:
    """1 when the customer cancels in (label date, label date + 30 days], else 0."""
    cancel = events[events["event_type"] == "cancel"]
    first_cancel = cancel.groupby("customer_id")["event_time"].min().dt.tz_convert("UTC").dt.date
    when = keys["customer_id"].map(first_cancel)
    label_day = pd.to_datetime(keys["label_date"]).dt.date
    horizon = label_day + timedelta(days=WINDOW)
    hit = when.notna() & (when > label_day) & (when <= horizon)
    return hit.astype("int64")


def make_estimator(params: dict[str, Any], features: list[str]) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder

    steps = [("numeric", "passthrough", [f for f in features if f != "plan"])]
    if "plan" in features:
        steps.insert(
            0, ("plan", OneHotEncoder(categories=[PLANS], handle_unknown="ignore"), ["plan"])
        )
    prepare = ColumnTransformer(steps)
    model = HistGradientBoostingClassifier(
        max_iter=int(params.get("max_iter", 200)),
        learning_rate=float(params.get("learning_rate", 0.05)),
        max_depth=params.get("max_depth"),
        l2_regularization=float(params.get("l2_regularization", 0.0)),
        random_state=int(params.get("random_state", 0)),
    )
    return Pipeline([("prepare", prepare), ("model", model)])


project = Project(
    name="churn",
    source=Source(
        name="events", schema=EVENTS_SCHEMA, id_column="event_id", time_column="event_time"
    ),
    feature_group=FeatureGroup(
        name="customer_activity",
        entity="customer_id",
        lookback_days=WINDOW,
        build=build_customer_activity,
    ),
    label=Label(name="cancels_within_30d", horizon_days=WINDOW, build=cancels_within_30_days),
    model=ModelSpec(name="churn", features=FEATURES, make_estimator=make_estimator),
)
