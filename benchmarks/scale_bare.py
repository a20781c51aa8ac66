"""The bare script ``bench_scale.py`` runs beside the platform, in one process of its own: pandas
reads every raw CSV (types parsed, bad rows dropped), the churn demo's build functions compute
features and labels over all of it, ``pandas.merge_asof`` joins the training frames, the same
estimators are fitted and predict the night, and the predictions are COPYed into PostgreSQL."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from workers import _in_worker, _measured, _peak_rss_mib

MODELS = ("churn", "spend")


# ---- what runs inside a fresh process ----------------------------------------------------------
def _start_bare() -> None:
    """The bare script's process imports what it uses (no fti.pipelines) before it is timed."""
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import psycopg  # noqa: F401
    import sklearn.ensemble  # noqa: F401
    import sklearn.metrics  # noqa: F401

    import churn_demo.project  # noqa: F401

    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())


def _in_bare_process(task: Callable[..., Any], *args: Any) -> Any:
    return _in_worker(_measured, task, *args, initializer=_start_bare)


# ---- the bare script (one process, no platform) ------------------------------------------------
def _read_events(raw: Path, day: date) -> Any:
    """One day of events, typed; rows breaking the events' rules dropped."""
    import pandas as pd

    from churn_demo import project as demo

    frame = pd.read_csv(raw / "events" / f"{day}.csv", dtype=str)
    customer = pd.to_numeric(frame["customer_id"], errors="coerce")
    when = pd.to_datetime(frame["event_time"], format="ISO8601", utc=True, errors="coerce")
    amount = pd.to_numeric(frame["amount"], errors="coerce")
    kind = frame["event_type"]
    good = (
        (customer > 0)
        & (when.dt.date == day)
        & kind.isin(demo.EVENT_TYPES)
        & ~(amount < 0)
        & ((kind != "purchase") | amount.notna())
        & frame["plan"].isin(demo.PLANS)
        & ~frame["event_id"].duplicated(keep="first")
    )
    return pd.DataFrame(
        {
            "customer_id": customer[good].astype("int64"),
            "event_time": when[good],
            "event_type": kind[good].astype("category"),
            "amount": amount[good],
        }
    )


def _read_crm(raw: Path, day: date) -> Any:
    """One CRM snapshot, typed (its New York times in UTC); rows breaking its rules dropped."""
    import pandas as pd

    from churn_demo import project as demo

    frame = pd.read_csv(raw / "crm" / f"{day}.csv", dtype=str)

    def utc(column: str, layout: str) -> pd.Series:
        local = pd.to_datetime(frame[column], format=layout, errors="coerce")
        return local.dt.tz_localize(
            demo.CRM_ZONE, ambiguous="NaT", nonexistent="NaT"
        ).dt.tz_convert("UTC")

    typed = pd.DataFrame(
        {
            "customer_id": pd.to_numeric(frame["customer_id"], errors="coerce"),
            "as_of": utc("as_of", "%Y-%m-%dT%H:%M:%S"),
            "plan": frame["plan"],
            "monthly_fee": pd.to_numeric(frame["monthly_fee"], errors="coerce"),
            "seats": pd.to_numeric(frame["seats"], errors="coerce"),
            "region": frame["region"],
            "signup_date": utc("signup_date", "%Y-%m-%d"),
            "plan_changed_at": utc("plan_changed_at", "%Y-%m-%d"),
        }
    )
    good = (
        (typed["customer_id"] > 0)
        & typed["as_of"].notna()
        & typed["plan"].isin(demo.PLANS)
        & typed["monthly_fee"].between(0, 10_000)
        & typed["seats"].between(1, 1000)
        & typed["region"].isin(demo.REGIONS)
        & (typed["signup_date"] <= typed["as_of"])
        & (typed["plan_changed_at"] >= typed["signup_date"])
    )
    return typed[good].astype({"customer_id": "int64", "seats": "int64"})


def _features_of(model: Any, groups: dict[str, list[str]]) -> list[str]:
    """A model's declared features (``group.column`` or ``group.*``) as column names."""
    names: list[str] = []
    for spec in model.features:
        group, column = spec.split(".")
        names += groups[group] if column == "*" else [column]
    return names


def _as_of_join(left: Any, activity: Any, profile: Any, profile_ttl: int) -> Any:
    """Each (customer, date) row of ``left`` with that date's activity row (rows without one
    dropped) and the newest CRM profile at most ``profile_ttl`` days older."""
    import pandas as pd

    left = left.sort_values("date")
    frame = pd.merge_asof(left, activity, on="date", by="customer_id", tolerance=pd.Timedelta(0))
    frame = frame[frame["logins_30d"].notna()]
    return pd.merge_asof(
        frame, profile, on="date", by="customer_id", tolerance=pd.Timedelta(days=profile_ttl)
    )


def _bare(
    raw: str, pg_url: str, start: date, end: date, night: date, train: dict[str, Any]
) -> dict[str, Any]:
    """Read everything, build everything, train both models on the history, score the night."""
    import numpy as np
    import pandas as pd
    import psycopg
    from sklearn.metrics import mean_squared_error, roc_auc_score

    from churn_demo import project as demo

    stages: dict[str, tuple[float, float]] = {}
    clock = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = (now - clock, _peak_rss_mib())
        clock = now

    days = [start + timedelta(days=i) for i in range((night - start).days + 1)]
    events = pd.concat([_read_events(Path(raw), d) for d in days], ignore_index=True)
    crm = pd.concat([_read_crm(Path(raw), d) for d in days], ignore_index=True)
    rows = {"events": len(events), "crm": len(crm)}
    stage("read raw CSVs (pandas)")
    activity = demo.build_customer_activity({"events": events}, days)
    profile = demo.build_customer_profile({"crm": crm}, days)
    matured = [d for d in days if d <= night - timedelta(days=demo.WINDOW)]
    labels = {
        "churn": demo.churned_within_30_days({"events": events}, matured),
        "spend": demo.spend_in_next_30_days({"events": events}, matured),
    }
    del events, crm
    rows |= {"activity": len(activity), "profile": len(profile)}
    stage("build features + labels (churn_demo.project)")
    activity["date"] = pd.to_datetime(activity.pop("feature_date"))
    profile["date"] = pd.to_datetime(profile.pop("feature_date"))
    activity, profile = activity.sort_values("date"), profile.sort_values("date")
    groups = {g.name: list(g.features) for g in demo.project.feature_groups}
    metrics, frames, fitted = {}, {}, {}
    for name in MODELS:
        model = demo.project.model(name)
        label = model.label
        # The platform's label dates: every label_every_days back from the newest matured by
        # the end of the history, none in the activity's first look-back window.
        newest = end - timedelta(days=label.horizon_days)
        warm = start + timedelta(days=demo.activity.lookback_days)
        oldest = max(newest - timedelta(days=model.training_days), warm)
        dates = []
        while newest >= oldest:
            dates.append(newest)
            newest -= timedelta(days=model.label_every_days)
        dates.sort()
        holdout = dates[-max(1, math.ceil(len(dates) * model.holdout_share)) :]
        picked = labels[name][labels[name][demo.LABEL_DATE].isin(dates)]
        left = picked.assign(date=pd.to_datetime(picked[demo.LABEL_DATE]))
        left = left[["customer_id", "date", demo.LABEL]]
        frames[name] = _as_of_join(left, activity, profile, model.ttl.get("customer_profile", 0))
        frames[name]["holdout"] = frames[name]["date"].isin(pd.to_datetime(holdout))
    stage("training frames (merge_asof)")
    for name in MODELS:
        model = demo.project.model(name)
        names = _features_of(model, groups)
        frame = frames[name]
        fit, check = frame[~frame["holdout"]], frame[frame["holdout"]]
        make = demo.make_classifier if model.task == "binary" else demo.make_regressor
        estimator = make(train.get(name, {}), names).fit(fit[names], fit[demo.LABEL])
        if model.task == "binary":
            score = roc_auc_score(check[demo.LABEL], estimator.predict_proba(check[names])[:, 1])
        else:
            score = -math.sqrt(
                mean_squared_error(check[demo.LABEL], estimator.predict(check[names]))
            )
        fitted[name], metrics[name] = (estimator, names), round(float(score), 4)
        rows[f"train {name}"] = len(fit)
    stage("fit + holdout metric x2")
    tonight = activity[activity["date"] == pd.Timestamp(night)][["customer_id", "date"]]
    spine = _as_of_join(tonight, activity, profile, 7)
    predictions = []
    for name, (estimator, names) in fitted.items():
        task = demo.project.model(name).task
        scores = (
            estimator.predict_proba(spine[names])[:, 1]
            if task == "binary"
            else estimator.predict(spine[names])
        )
        predictions.append(
            pd.DataFrame(
                {"model": name, "customer_id": spine["customer_id"], "as_of_date": night}
                | {"prediction": np.asarray(scores, dtype="float64")}
            )
        )
    scored = pd.concat(predictions, ignore_index=True)
    stage("predict the night x2")
    conninfo = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo) as connection:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS bare_predictions (model text, customer_id bigint, "
            "as_of_date date, prediction double precision)"
        )
        connection.execute("DELETE FROM bare_predictions WHERE as_of_date = %s", [night])
        with connection.cursor().copy("COPY bare_predictions FROM STDIN (FORMAT csv)") as copy:
            copy.write(scored.to_csv(index=False, header=False))
    rows["scored"] = len(scored)
    stage("COPY predictions into PostgreSQL")
    return {"stages": stages, "rows": rows, "metrics": metrics}
