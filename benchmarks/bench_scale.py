"""Time and peak memory per task of a sharded history load and one night, against a bare script.

For each customer count N (``--customers``), on a fresh FTI home and raw folder:

1. raw data: ``--days`` days of history and one more day (the night) written by
   ``churn_demo.generate.generate_at_scale`` (shown for information, not counted);
2. the PLATFORM, every task in its own fresh process as a Celery worker runs it:
   - history: ``validate_raw_events`` over the history; per group ``plan_group``, then
     ``build_group`` of each shard (one process per shard), then ``publish_group``;
   - training, per model (churn, spend): ``build_training_set``, ``train_model``,
     ``promote_if_better``;
   - one night (the day after the history): ``validate_raw_events``, per group plan / build
     each shard / publish, then ``score_batch`` of both models into PostgreSQL;
3. the BARE script, one process, no platform: pandas reads every raw CSV (types parsed, bad
   rows dropped), the churn demo's build functions compute features and labels over all of
   it, ``pandas.merge_asof`` joins the training frames, the same estimators (params.yaml's
   ``train`` section) are fitted and predict the night, and the predictions are COPYed into a
   PostgreSQL table.

fti's tables live in a fresh PostgreSQL database ``fti_bench_scale_<pid>`` (the bare
predictions in a table of it), dropped after each size. The run reads a copy of params.yaml
whose ``shards.rows_per_shard`` is ``--rows-per-shard`` (default: params.yaml's, 4,000,000
validated events a shard may load at once; the table shows each group's shard count).

Each process times its call with ``time.perf_counter`` once its code is imported (a warm
worker) and reports its own peak RSS, ``resource.getrusage(RUSAGE_SELF).ru_maxrss``, which
includes the interpreter and imports (the ``baseline`` rows: a worker that only imports); git
child processes are not included (small). Every process gets ``--threads`` OpenMP/BLAS threads
(default 1): on a busy 2-core machine, scikit-learn's OpenMP threads spinning against other
work made a 2,000-row fit 30x slower. Run from the repository root; not run by pytest::

    .venv/bin/python benchmarks/bench_scale.py --quick                # 2,000 customers, 70 days
    .venv/bin/python benchmarks/bench_scale.py                        # 20,000 and 100,000, 75 days
    .venv/bin/python benchmarks/bench_scale.py --customers 100000 1000000
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench_pipelines import PG_SERVER, START, create_pg_database, drop_pg_database
from workers import _baseline, _in_worker, _measured, _peak_rss_mib, log

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
MODELS = ("churn", "spend")
RESULTS = REPO / "benchmarks" / ".work" / "bench_scale_results.json"  # git-ignored
QUICK = {"customers": [2000], "days": 70, "rows_per_shard": 60_000}  # a few shards a group


@dataclass
class Step:
    size: int
    phase: str  # history, training, night, bare, info
    name: str  # what the table groups by: a task and its group or model
    seconds: float
    rss_mib: float
    shard: int = 0
    shards: int = 1
    note: str = ""


@dataclass(frozen=True)
class Where:
    """Everything a task process needs to find its settings (picklable)."""

    home: str
    raw: str
    params: str
    db_url: str


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
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context, initializer=_start_bare) as pool:
        return pool.submit(_measured, task, *args).result()


def _settings(where: Where) -> Any:
    from fti.settings import Settings

    return Settings(
        home=where.home, raw_path=where.raw, params_file=where.params, db_url=where.db_url
    )


def _generate(raw: str, start: date, end: date, customers: int) -> int:
    from churn_demo.generate import generate_at_scale

    return len(generate_at_scale(Path(raw), start, end, customers))


def _initialise(where: Where) -> None:
    from fti.setup import initialise

    initialise(_settings(where))


def _groups(where: Where) -> list[str]:
    from fti.pipelines.runs import setup

    return [g.name for g in setup(_settings(where))[1].groups]


def _validate(where: Where, start: date, end: date, run_id: str) -> dict[str, Any]:
    from fti.pipelines.features import validate_raw_events

    return validate_raw_events(start, end, run_id, _settings(where))


def _plan(where: Where, group: str, start: date, end: date, run_id: str) -> int:
    from fti.pipelines.features import plan_group

    return plan_group(group, start, end, run_id, _settings(where))


def _build(
    where: Where, group: str, start: date, end: date, run_id: str, shard: int, shards: int
) -> str | None:
    from fti.pipelines.features import build_group

    return build_group(group, start, end, run_id, _settings(where), shard=shard, shards=shards)


def _publish(where: Where, group: str, path: str, run_id: str, shards: int) -> dict[str, Any]:
    from fti.pipelines.features import publish_group

    return publish_group(group, path, run_id, _settings(where), shards=shards)


def _training_set(where: Where, model: str, run_id: str) -> str:
    from fti.pipelines.training import build_training_set

    return build_training_set(model, None, None, run_id, _settings(where))


def _train(where: Where, path: str, run_id: str) -> int:
    from fti.pipelines.training import train_model

    return train_model(path, run_id, settings=_settings(where))


def _promote(where: Where, path: str, version: int, run_id: str) -> dict[str, Any]:
    from fti.pipelines.training import promote_if_better

    return promote_if_better(path, version, run_id, _settings(where))


def _score(where: Where, model: str, as_of: date, run_id: str) -> dict[str, Any]:
    from fti.pipelines.inference import score_batch

    return score_batch(model, as_of, run_id, settings=_settings(where))


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


# ---- the run -----------------------------------------------------------------------------------
class Runner:
    """Runs and records the tasks of one size, one process each, logging a line per task."""

    def __init__(self, size: int, where: Where) -> None:
        self.size, self.where, self.steps = size, where, []

    def run(self, phase: str, name: str, task: Callable[..., Any], *args: Any, **how: Any) -> Any:
        result, seconds, rss = _in_worker(_measured, task, self.where, *args)
        step = Step(self.size, phase, name, seconds, rss, **how)
        self.steps.append(step)
        shard = f" shard {step.shard + 1}/{step.shards}" if "shard" in how else ""
        log(f"N={self.size:,} {phase}: {name}{shard}: {seconds:.1f}s, {rss:.0f} MiB")
        return result

    def group(self, phase: str, group: str, start: date, end: date, run_id: str) -> None:
        """plan, each shard's build, publish: as the feature DAG's mapped tasks run them."""
        count = self.run(phase, f"plan_group {group}", _plan, group, start, end, run_id)
        paths = [
            self.run(
                phase,
                f"build_group {group}",
                _build,
                group,
                start,
                end,
                run_id,
                shard,
                count,
                shard=shard,
                shards=count,
            )
            for shard in range(count)
        ]
        built = sorted({p for p in paths if p})
        if built:
            self.run(phase, f"publish_group {group}", _publish, group, built[0], run_id, count)


def run_size(size: int, args: argparse.Namespace, params: Path) -> list[Step]:
    root = args.workdir / str(size)
    shutil.rmtree(root, ignore_errors=True)
    end = START + timedelta(days=args.days - 1)
    night = end + timedelta(days=1)
    raw = root / "raw"
    log(f"N={size:,}: generating {args.days + 1} days ({START}..{night}) into {raw}")
    files, gen_s, gen_rss = _in_worker(_measured, _generate, str(raw), START, night, size)
    info = [Step(size, "info", f"generate_at_scale ({files} files)", gen_s, gen_rss)]
    log(f"N={size:,}: generated in {gen_s:.1f}s ({gen_s / (args.days + 1):.2f}s a day)")
    pg_name = f"fti_bench_scale_{os.getpid()}" + (f"_{size}" if args.keep else "")
    pg_url = create_pg_database(args.pg_url, pg_name)
    where = Where(str(root / "home"), str(raw), str(params), pg_url)
    runner = Runner(size, where)
    try:
        _in_worker(_initialise, where)
        groups = _in_worker(_groups, where)
        summary = runner.run("history", "validate_raw_events", _validate, START, end, "history")
        log(f"N={size:,}: {summary['rows_read']:,} raw rows, {summary['rows_quarantined']:,} bad")
        for group in groups:
            runner.group("history", group, START, end, "history")
        for model in MODELS:
            run_id = f"training_{model}"
            path = runner.run(
                "training", f"build_training_set {model}", _training_set, model, run_id
            )
            version = runner.run("training", f"train_model {model}", _train, path, run_id)
            decision = runner.run(
                "training", f"promote_if_better {model}", _promote, path, version, run_id
            )
            runner.steps[-1].note = f"holdout {decision.get('candidate')}"
            log(f"N={size:,}: {model} v{version}: {decision['reason']}")
        runner.run("night", "validate_raw_events", _validate, night, night, "night")
        for group in groups:
            runner.group("night", group, night, night, "night")
        for model in MODELS:
            scored = runner.run(
                "night", f"score_batch {model}", _score, model, night, f"night_{model}"
            )
            runner.steps[-1].note = f"{scored['rows']:,} rows"
        log(f"N={size:,} bare: reading, building, training, scoring in one process")
        train = _train_params(params)
        bare, bare_s, bare_rss = _in_bare_process(_bare, str(raw), pg_url, START, end, night, train)
        log(f"N={size:,} bare: {bare_s:.1f}s, {bare_rss:.0f} MiB, {bare['metrics']}")
        steps = [
            Step(size, "bare", f"  {name}", s, rss) for name, (s, rss) in bare["stages"].items()
        ]
        steps.append(
            Step(size, "bare", "bare script total", bare_s, bare_rss, note=str(bare["metrics"]))
        )
    finally:
        if args.keep:
            log(f"N={size:,}: kept {root} and the database {pg_url}")
        else:
            drop_pg_database(args.pg_url, pg_name)
            shutil.rmtree(root, ignore_errors=True)
    return info + runner.steps + steps


def _train_params(params: Path) -> dict[str, Any]:
    import yaml

    return dict(yaml.safe_load(params.read_text())["train"])


def write_params(path: Path, rows_per_shard: int | None) -> Path:
    """params.yaml with ``shards.rows_per_shard`` set when given (the rest as in the
    repository)."""
    import yaml

    values = yaml.safe_load(PARAMS_FILE.read_text())
    if rows_per_shard is not None:
        values.setdefault("shards", {})["rows_per_shard"] = rows_per_shard
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    return path


# ---- the table ---------------------------------------------------------------------------------
def _rows(steps: list[Step], size: int) -> dict[str, dict[str, Any]]:
    """Per table row name: seconds (summed over shards), peak RSS (max), shard count."""
    rows: dict[str, dict[str, Any]] = {}
    for s in (s for s in steps if s.size == size):
        key = f"{s.phase}: {s.name}" if s.phase in ("history", "night") else s.name
        row = rows.setdefault(key, {"s": 0.0, "mib": 0.0, "n": 0, "note": s.note})
        row["s"] += s.seconds
        row["mib"] = max(row["mib"], s.rss_mib)
        row["n"] += 1
    platform = [s for s in steps if s.size == size and s.phase in ("history", "training", "night")]
    for phase in ("history", "training", "night"):
        part = [s for s in platform if s.phase == phase]
        rows[f"{phase} subtotal"] = {
            "s": sum(s.seconds for s in part),
            "mib": max(s.rss_mib for s in part),
            "n": len(part),
        }
    rows["PLATFORM total (tasks one after another)"] = {
        "s": sum(s.seconds for s in platform),
        "mib": max(s.rss_mib for s in platform),
        "n": len(platform),
    }
    # With every group's shards side by side (as Celery workers run mapped tasks): per build,
    # the slowest shard only.
    slowest: dict[tuple[str, str], float] = {}
    for s in platform:
        if s.name.startswith("build_group"):
            slowest[s.phase, s.name] = max(slowest.get((s.phase, s.name), 0.0), s.seconds)
    side_by_side = sum(s.seconds for s in platform if not s.name.startswith("build_group"))
    rows["platform total, shards side by side"] = {
        "s": side_by_side + sum(slowest.values()),
        "mib": max(s.rss_mib for s in platform),
        "n": 0,
    }
    bare = next(s for s in steps if s.size == size and s.name == "bare script total")
    rows["BARE total"] = {"s": bare.seconds, "mib": bare.rss_mib, "n": 1}
    total = rows["PLATFORM total (tasks one after another)"]
    rows["platform / bare"] = {
        "s": total["s"] / bare.seconds,
        "mib": total["mib"] / bare.rss_mib,
        "n": 0,
        "ratio": True,
    }
    return rows


def markdown(steps: list[Step], sizes: list[int], baseline: dict[str, float]) -> str:
    per_size = [_rows(steps, size) for size in sizes]
    names = list(dict.fromkeys(name for rows in per_size for name in rows))
    head = ["step"]
    for size in sizes:
        head += [f"N={size:,} s", "MiB", "tasks"]
    for a, b in zip(sizes, sizes[1:], strict=False):
        head += [f"x s {b // a if b % a == 0 else round(b / a, 1)}x N", "x MiB"]
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for label, mib in baseline.items():
        cells = [label] + ["-", f"{mib:.0f}", "-"] * len(sizes) + ["", ""] * (len(sizes) - 1)
        lines.append("| " + " | ".join(cells) + " |")
    for name in names:
        cells, values = [name], []
        for rows in per_size:
            row = rows.get(name)
            values.append(row)
            if row is None:
                cells += ["", "", ""]
            elif row.get("ratio"):
                cells += [f"{row['s']:.2f}x", f"{row['mib']:.2f}x", ""]
            else:
                cells += [f"{row['s']:.1f}", f"{row['mib']:.0f}", str(row["n"] or "")]
        for a, b in zip(values, values[1:], strict=False):
            if a and b and not a.get("ratio") and a["s"] > 0 and a["mib"] > 0:
                cells += [f"{b['s'] / a['s']:.2f}", f"{b['mib'] / a['mib']:.2f}"]
            else:
                cells += ["", ""]
        lines.append("| " + " | ".join(cells) + " |")
    notes = [
        f"- N={s.size:,} {s.name}: {s.note}"
        for s in steps
        if s.note and (s.name.startswith("promote") or s.phase == "bare" or "score" in s.name)
    ]
    return "\n".join([*lines, "", *notes])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--customers",
        nargs="+",
        type=lambda text: int(float(text)),
        help="customer counts (default 20000 100000; --quick: 2000)",
    )
    parser.add_argument("--days", type=int, help="days of history (default 75; --quick: 70)")
    parser.add_argument(
        "--rows-per-shard",
        type=int,
        help="params.yaml shards.rows_per_shard (default: params.yaml's)",
    )
    parser.add_argument("--quick", action="store_true", help="2,000 customers, 70 days")
    parser.add_argument("--workdir", type=Path, help="where the homes go (default: a tmp folder)")
    parser.add_argument(
        "--keep", action="store_true", help="keep each size's home, raw files and database"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="OpenMP/BLAS threads per process (default 1, as on a worker box running "
        "several task processes; more oversubscribes a shared machine's cores)",
    )
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server, no database")
    args = parser.parse_args(argv)
    args.customers = sorted(
        args.customers or (QUICK["customers"] if args.quick else [20000, 100000])
    )
    args.days = args.days or (QUICK["days"] if args.quick else 75)
    if args.quick and args.rows_per_shard is None:
        args.rows_per_shard = QUICK["rows_per_shard"]
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)  # every process below inherits it
    temporary = args.workdir is None
    args.workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fti-bench-scale-")).resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    params = write_params(args.workdir / "params.yaml", args.rows_per_shard)
    log(
        f"customers {args.customers}, {args.days} days + 1 night, rows_per_shard "
        f"{args.rows_per_shard or 'as params.yaml'}, work in {args.workdir}"
    )
    clock = time.perf_counter()
    baseline = {
        "baseline: a worker with fti.pipelines imported": _in_worker(_measured, _baseline)[2],
        "baseline: the bare process, imports only": _in_bare_process(_baseline)[2],
    }
    steps: list[Step] = []
    try:
        for size in args.customers:
            steps += run_size(size, args, params)
    finally:
        elapsed = time.perf_counter() - clock
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {"args": vars(args) | {"workdir": str(args.workdir)}, "elapsed_s": elapsed}
                | {"baseline": baseline, "steps": [asdict(s) for s in steps]},
                indent=2,
                default=str,
            )
        )
        if temporary and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    print(markdown(steps, args.customers, baseline))
    print(f"\nentities_per_shard {args.entities_per_shard}; benchmark wall time {elapsed:.0f}s")


if __name__ == "__main__":
    main()
