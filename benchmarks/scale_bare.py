"""The bare script ``bench_scale.py`` runs beside the platform, in one process of its own, with
no fti platform code: plain pandas, the churn demo's build functions and estimators, psycopg.

What a competent engineer writes by hand when the whole data does not fit one process (at 1e6
customers and 75 days the earlier all-at-once version would need about 35 GB, more than this
machine's 24 GiB; at 1e5 it held 3.95 GB):

1. **split**: read each day's raw CSV once (types parsed, rows breaking the sources' rules
   dropped, duplicate event ids of the day dropped), give every row the hash bucket of its
   customer, and write it to a Parquet file per (bucket, day);
2. **per bucket** (a plain loop; a customer's every event and CRM row is in one bucket, so the
   build functions see whole customers, as the platform's shards do): the churn demo's
   ``build_customer_activity``, ``build_customer_profile`` and both label builds over every
   date of the bucket's data, ``pandas.merge_asof`` joins the label rows of the training dates
   and the night's spine; the training rows go to Parquet, the night's rows stay in memory;
3. **sample**: past a model's ``max_training_rows`` label rows, the platform trains on a stable
   hash sample of the entities (``fti/training/dataset.py``: the entities whose slot is below
   ``1024 * max_training_rows // label rows``); the bare script keeps the same entities, so
   both fit the same rows and their holdout figures compare;
4. fit the same estimators (params.yaml's ``train`` section), score the holdout, predict the
   night, and COPY the predictions into a PostgreSQL table.

The hash is written here by hand: ``pandas.util.hash_array`` of the int64 key modulo 1024 (the
slot); bucket ``b`` of ``n`` holds the slots ``[b * 1024 // n, (b + 1) * 1024 // n)``. Memory
follows one bucket (``customers_per_bucket``, default 50,000) plus the training sample and the
night's rows, not the customer base.
"""

from __future__ import annotations

import math
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from workers import _in_worker, _measured, _peak_rss_mib

MODELS = ("churn", "spend")
SLOTS = 1024  # the hash buckets' resolution, as the platform's entity slots
CUSTOMERS_PER_BUCKET = 50_000


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
            "event_type": kind[good],
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


def _slots(keys: Any) -> Any:
    """The hash slot (0..1023) of each int64 customer key: the same on every machine and run."""
    import numpy as np
    import pandas as pd

    hashed = pd.util.hash_array(np.asarray(keys, dtype="int64"), categorize=False)
    return (hashed % np.uint64(SLOTS)).astype("int16")


def _label_dates(model: Any, start: date, end: date, lookback: int) -> tuple[list, list]:
    """The platform's label dates (every ``label_every_days`` back from the newest matured by
    the end of the history, none in the spine's first look-back window) and its holdout."""
    newest = end - timedelta(days=model.label.horizon_days)
    oldest = max(newest - timedelta(days=model.training_days), start + timedelta(days=lookback))
    dates = []
    while newest >= oldest:
        dates.append(newest)
        newest -= timedelta(days=model.label_every_days)
    dates.sort()
    return dates, dates[-max(1, math.ceil(len(dates) * model.holdout_share)) :]


def _split(raw: Path, work: Path, days: list[date], buckets: int) -> dict[str, int]:
    """Each day's raw files read once, typed and checked, written per hash bucket to Parquet."""
    rows = {"events": 0, "crm": 0}
    for day in days:
        for source, read in (("events", _read_events), ("crm", _read_crm)):
            frame = read(raw, day)
            rows[source] += len(frame)
            bucket = _slots(frame["customer_id"]).astype("int64") * buckets // SLOTS
            for number, part in frame.groupby(bucket, sort=False):
                folder = work / source / f"bucket={number}"
                folder.mkdir(parents=True, exist_ok=True)
                part.to_parquet(folder / f"{day}.parquet", index=False)
    return rows


def _read_bucket(work: Path, source: str, number: int) -> Any:
    import pandas as pd

    from churn_demo import project as demo

    folder = work / source / f"bucket={number}"
    files = sorted(folder.glob("*.parquet")) if folder.exists() else []
    if not files:
        return None
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if source == "events":
        frame["event_type"] = frame["event_type"].astype(pd.CategoricalDtype(demo.EVENT_TYPES))
    return frame


def _bare(
    raw: str,
    work: str,
    pg_url: str,
    start: date,
    end: date,
    night: date,
    train: dict[str, Any],
    customers_per_bucket: int = CUSTOMERS_PER_BUCKET,
) -> dict[str, Any]:
    """Split the raw files by hash bucket, build and join bucket by bucket, sample as the
    platform does, train both models on the history, score the night, COPY it."""
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

    scratch = Path(work)
    shutil.rmtree(scratch, ignore_errors=True)
    days = [start + timedelta(days=i) for i in range((night - start).days + 1)]
    # Customers of the first day's CRM snapshot size the buckets (no second read of the data).
    first_crm = pd.read_csv(Path(raw) / "crm" / f"{start}.csv", usecols=["customer_id"])
    buckets = max(1, math.ceil(first_crm["customer_id"].nunique() / customers_per_bucket))
    del first_crm
    rows: dict[str, Any] = {"buckets": buckets} | _split(Path(raw), scratch, days, buckets)
    stage(f"split raw CSVs into {buckets} hash buckets (pandas -> Parquet)")

    groups = {g.name: list(g.features) for g in demo.project.feature_groups}
    models = {name: demo.project.model(name) for name in MODELS}
    lookback = demo.activity.lookback_days
    dates = {name: _label_dates(m, start, end, lookback) for name, m in models.items()}
    matured = [d for d in days if d <= night - timedelta(days=demo.WINDOW)]
    label_rows = dict.fromkeys(MODELS, 0)
    nights, counted = [], dict.fromkeys(("activity", "profile"), 0)
    for number in range(buckets):
        events, crm = _read_bucket(scratch, "events", number), _read_bucket(scratch, "crm", number)
        if events is None or crm is None:
            continue
        activity = demo.build_customer_activity({"events": events}, days)
        profile = demo.build_customer_profile({"crm": crm}, days)
        labels = {
            "churn": demo.churned_within_30_days({"events": events}, matured),
            "spend": demo.spend_in_next_30_days({"events": events}, matured),
        }
        del events, crm
        counted["activity"] += len(activity)
        counted["profile"] += len(profile)
        activity["date"] = pd.to_datetime(activity.pop("feature_date"))
        profile["date"] = pd.to_datetime(profile.pop("feature_date"))
        activity, profile = activity.sort_values("date"), profile.sort_values("date")
        for name, model in models.items():
            every, holdout = dates[name]
            picked = labels[name][labels[name][demo.LABEL_DATE].isin(every)]
            label_rows[name] += len(picked)  # what the platform's sample rule counts
            left = picked.assign(date=pd.to_datetime(picked[demo.LABEL_DATE]))
            left = left[["customer_id", "date", demo.LABEL]]
            ttl = model.ttl.get("customer_profile", 0)
            frame = _as_of_join(left, activity, profile, ttl)
            frame["holdout"] = frame["date"].isin(pd.to_datetime(holdout))
            frame["slot"] = _slots(frame["customer_id"])
            folder = scratch / "training" / name
            folder.mkdir(parents=True, exist_ok=True)
            frame.to_parquet(folder / f"{number}.parquet", index=False)
        tonight = activity[activity["date"] == pd.Timestamp(night)][["customer_id", "date"]]
        nights.append(_as_of_join(tonight, activity, profile, 7))
        del activity, profile, labels
    spine = pd.concat(nights, ignore_index=True)
    del nights
    rows |= counted
    stage("per bucket: build features + labels (churn_demo.project), merge_asof joins")

    frames = {}
    for name, model in models.items():
        limit = model.max_training_rows
        kept = (
            SLOTS
            if limit is None or label_rows[name] <= limit
            else max(1, SLOTS * limit // label_rows[name])
        )
        frames[name] = pd.read_parquet(scratch / "training" / name, filters=[("slot", "<", kept)])
        rows[f"sample {name}"] = f"{kept}/{SLOTS} slots of {label_rows[name]:,} label rows"
    stage("training sample (slots as the platform's) read back")

    metrics, fitted = {}, {}
    for name, model in models.items():
        names = _features_of(model, groups)
        frame = frames.pop(name)
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
        del frame, fit, check
    stage("fit + holdout metric x2")
    predictions = []
    for name, (estimator, names) in fitted.items():
        task = models[name].task
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
    shutil.rmtree(scratch, ignore_errors=True)
    return {"stages": stages, "rows": rows, "metrics": metrics}
