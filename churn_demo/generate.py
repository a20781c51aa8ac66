"""Deterministic raw event files for the churn demo, with malformed rows and optional drift.

Each customer carries a hidden risk that slowly rises for some of them; risk lowers activity,
raises support tickets and drives cancellation, so the features carry real signal.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

from fti.features.events import raw_file

PLANS = np.array(["basic", "standard", "premium"])
PLAN_PRICE = {"basic": 9.0, "standard": 19.0, "premium": 39.0}
EVENT_COLUMNS = [
    "event_id",
    "customer_id",
    "event_time",
    "event_type",
    "amount",
    "plan",
    "signup_date",
]
SOURCE = "events"


def day_range(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def generate(
    raw_dir: Path,
    start: date,
    end: date,
    customers: int = 2000,
    seed: int = 7,
    bad_share: float = 0.01,
    drift_after: date | None = None,
) -> list[Path]:
    """Write one CSV of events per day in [start, end]; the same arguments give the same bytes."""
    rng = np.random.default_rng(seed)
    n = customers
    ids = np.arange(1, n + 1)
    signup = np.array([start - timedelta(days=int(d)) for d in rng.integers(30, 900, n)])
    plan = PLANS[rng.choice(3, n, p=[0.5, 0.35, 0.15])]
    risk = rng.beta(1.2, 6.0, n)
    rising = rng.random(n) < 0.25
    active = np.ones(n, dtype=bool)
    next_id = n + 1
    paths = []
    for day in day_range(start, end):
        drift = drift_after is not None and day > drift_after
        # New sign-ups keep the population steady.
        k = rng.poisson(n * 0.0025)
        if k:
            ids = np.concatenate([ids, np.arange(next_id, next_id + k)])
            next_id += k
            signup = np.concatenate([signup, np.array([day] * k)])
            plan = np.concatenate([plan, PLANS[rng.choice(3, k, p=[0.5, 0.35, 0.15])]])
            risk = np.concatenate([risk, rng.beta(1.2, 6.0, k)])
            rising = np.concatenate([rising, rng.random(k) < 0.25])
            active = np.concatenate([active, np.ones(k, dtype=bool)])
        risk = np.clip(risk + rising * rng.uniform(0.0, 0.012, len(risk)), 0.0, 1.0)
        login_rate = 1.2 * (1.0 - 0.85 * risk) * (0.6 if drift else 1.0)
        logins = rng.poisson(login_rate) * active
        purchases = rng.poisson(0.12 * (1.0 - 0.7 * risk)) * active
        tickets = rng.poisson(0.01 + 0.12 * risk**2) * active
        cancels = (rng.random(len(ids)) < 0.0005 + 0.02 * risk**3) & active
        rows = []
        for idx in np.flatnonzero(logins + purchases + tickets + cancels):
            customer = int(ids[idx])
            events = (
                ["login"] * int(logins[idx])
                + ["purchase"] * int(purchases[idx])
                + ["support_ticket"] * int(tickets[idx])
                + (["cancel"] if cancels[idx] else [])
            )
            for kind in events:
                seconds = int(rng.integers(0, 86_400 - 1))
                if kind == "cancel":
                    seconds = 86_399  # the last thing a customer does that day
                amount = ""
                if kind == "purchase":
                    base = PLAN_PRICE[str(plan[idx])] * (1.5 if drift else 1.0)
                    amount = f"{base * rng.lognormal(0.0, 0.35):.2f}"
                when = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
                rows.append(
                    [
                        "",
                        customer,
                        (when + timedelta(seconds=seconds)).isoformat(),
                        kind,
                        amount,
                        str(plan[idx]),
                        signup[idx].isoformat(),
                    ]
                )
        active &= ~cancels
        rows.sort(key=lambda r: r[2])
        for number, row in enumerate(rows):
            row[0] = f"{day:%Y%m%d}-{number:06d}"
        _corrupt(rows, rng, bad_share, day)
        path = raw_file(raw_dir, SOURCE, day)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(EVENT_COLUMNS)
            writer.writerows(rows)
        tmp.replace(path)
        paths.append(path)
    return paths


def _corrupt(rows: list[list], rng: np.random.Generator, share: float, day: date) -> None:
    """Break a share of rows the way real exports break: each one fails one validation rule."""
    if not rows or share <= 0:
        return
    count = int(rng.binomial(len(rows), share))
    for idx in rng.choice(len(rows), size=min(count, len(rows)), replace=False):
        row = rows[idx]
        kind = int(rng.integers(0, 6))
        if kind == 0:
            row[4] = f"-{rng.uniform(1, 50):.2f}"  # negative amount
        elif kind == 1:
            row[3] = "page_view"  # unknown event type
        elif kind == 2:
            row[1] = ""  # missing customer id
        elif kind == 3:
            row[2] = "yesterday-ish"  # unparseable timestamp
        elif kind == 4:
            row[2] = (
                datetime.combine(day, datetime.min.time(), tzinfo=UTC) - timedelta(hours=3)
            ).isoformat()  # outside the logical date
        else:
            row[0] = rows[(idx + 1) % len(rows)][0]  # duplicate event id


def main(argv: list[str] | None = None) -> None:
    """``python -m churn_demo.generate --out DIR --start D --end D``: the raw files for dvc.yaml."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--out", type=Path, required=True, help="raw folder (FTI_RAW_PATH)")
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drift-after", type=date.fromisoformat, default=None)
    args = parser.parse_args(argv)
    paths = generate(
        args.out, args.start, args.end, args.customers, args.seed, drift_after=args.drift_after
    )
    print(f"wrote {len(paths)} raw files to {args.out / SOURCE}")


if __name__ == "__main__":
    main()
