"""Deterministic raw files for the churn demo, with malformed rows and optional drift.

Two sources, one CSV a day each:

- ``<raw>/events/<date>.csv``: logins, purchases, support tickets and cancellations, in UTC.
- ``<raw>/crm/<date>.csv``: the CRM's evening snapshot of every active customer (plan, fee,
  seats, region, sign-up and last plan change), its ``as_of`` written in New York time without
  an offset.

Each customer carries a hidden risk that slowly rises for some of them; risk lowers activity,
raises support tickets, makes a downgrade more likely and drives cancellation, so the features
of both sources carry real signal. The CRM draws its randomness from its own generator (seeded
from ``seed``), so adding it left the events' random stream untouched.

``generate`` writes row by row (its bytes are what the tests pin); ``generate_at_scale`` runs
the same customer process on whole days at once with numpy and writes each day's file with
pyarrow, for 1e5 to 1e6 customers (a benchmark's data, not byte-equal to ``generate``'s).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

PLANS = np.array(["basic", "standard", "premium"])
PLAN_PRICE = {"basic": 9.0, "standard": 19.0, "premium": 39.0}
PRICES = np.array([PLAN_PRICE[p] for p in PLANS])
REGIONS = np.array(["eu", "us", "apac"])
EVENT_COLUMNS = [
    "event_id",
    "customer_id",
    "event_time",
    "event_type",
    "amount",
    "plan",
    "signup_date",
]
CRM_COLUMNS = [
    "customer_id",
    "as_of",
    "plan",
    "monthly_fee",
    "seats",
    "region",
    "signup_date",
    "plan_changed_at",
]
SOURCE = "events"
CRM_SOURCE = "crm"
# The CRM export starts between 17:30 and 18:00 New York time and takes up to 15 minutes, so
# every snapshot falls inside its New York date and before 23:59:59 UTC (18:59:59 EST), when the
# day's cancellations happen: a customer who cancels that day is still in that day's snapshot.
CRM_EXPORT_START = (17 * 3600 + 1800, 18 * 3600)
CRM_EXPORT_SECONDS = 900
DISCOUNTS = np.array([0.0, 0.05, 0.10, 0.15, 0.20])


def day_range(start: date, end: date) -> Iterator[date]:
    for offset in range((end - start).days + 1):
        yield start + timedelta(days=offset)


def raw_path(raw_dir: Path, source: str, day: date) -> Path:
    """``<raw>/<source>/<YYYY-MM-DD>.csv``."""
    return raw_dir / source / f"{day.isoformat()}.csv"


class _Crm:
    """What the CRM knows per customer beyond the events' state: seats, region, discount and
    the date of the last plan change. All of its randomness comes from its own generator."""

    def __init__(self, rng: np.random.Generator, signup: np.ndarray, start: date) -> None:
        self.rng = rng
        self.seats = np.empty(0, dtype=np.int64)
        self.region = np.empty(0, dtype=REGIONS.dtype)
        self.discount = np.empty(0)
        self.changed: list[str] = []
        self.add(signup, start)

    def add(self, signup: np.ndarray, today: date) -> None:
        """New customers: seats, region and discount once; a plan last changed at sign-up or,
        for some who signed up before ``today``, on a day since."""
        moved, since = self._draw(len(signup))
        for joined, did, share in zip(signup, moved, since, strict=True):
            days = (today - joined).days
            changed = joined + timedelta(days=int(share * days)) if did and days > 0 else joined
            self.changed.append(changed.isoformat())

    def _draw(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Seats, region and discount of ``k`` new customers (appended); returns whether each
        changed plan since signing up, and when (a share of the days since)."""
        rng = self.rng
        few = rng.integers(1, 6, k)  # most accounts have one to five seats
        many = np.clip(np.round(rng.lognormal(2.5, 0.8, k)), 6, 250).astype(np.int64)
        self.seats = np.concatenate([self.seats, np.where(rng.random(k) < 0.85, few, many)])
        region = REGIONS[rng.choice(3, k, p=[0.4, 0.4, 0.2])]
        self.region = np.concatenate([self.region, region])
        discount = DISCOUNTS[rng.choice(len(DISCOUNTS), k, p=[0.6, 0.15, 0.12, 0.08, 0.05])]
        self.discount = np.concatenate([self.discount, discount])
        moved = rng.random(k) < 0.35
        return moved, rng.random(k)

    def change_plans(
        self,
        plan: np.ndarray,
        risk: np.ndarray,
        rising: np.ndarray,
        active: np.ndarray,
        day: date,
    ) -> None:
        """Customers whose risk keeps rising sometimes step down a plan; a few others move up
        or down for reasons of their own. Changes ``plan`` in place and dates the change."""
        self._stamp(self._change(plan, risk, rising, active), day)

    def _change(
        self, plan: np.ndarray, risk: np.ndarray, rising: np.ndarray, active: np.ndarray
    ) -> np.ndarray:
        """Draw the day's plan changes into ``plan``; returns the customers who moved."""
        n = len(plan)
        level = _level(plan)
        draw = self.rng.random(n)
        down = active & rising & (level > 0) & (draw < 0.03 * risk**2)
        other = active & ~down & (self.rng.random(n) < 0.0004)
        step = np.where(self.rng.random(n) < 0.6, 1, -1)
        new = level.copy()
        new[down] -= 1
        new[other] = np.clip(level[other] + step[other], 0, 2)
        moved = np.flatnonzero(new != level)
        if len(moved):
            plan[moved] = PLANS[new[moved]]
        return moved

    def _stamp(self, moved: np.ndarray, day: date) -> None:
        """The customers who moved changed plan on ``day``."""
        stamp = day.isoformat()
        for idx in moved:
            self.changed[idx] = stamp

    def _export_seconds(self, k: int) -> np.ndarray:
        """When (seconds after midnight, New York) the export wrote each of ``k`` rows."""
        begin = int(self.rng.integers(*CRM_EXPORT_START))
        return begin + np.sort(self.rng.integers(0, CRM_EXPORT_SECONDS, k))

    def _fees(self, plan: np.ndarray, at: np.ndarray) -> np.ndarray:
        """The monthly fee of customers ``at``: plan price x seats, less their discount."""
        return np.round(PRICES[_level(plan[at])] * self.seats[at] * (1.0 - self.discount[at]), 2)

    def snapshot(
        self,
        ids: np.ndarray,
        plan: np.ndarray,
        signup_text: list[str],
        active: np.ndarray,
        day: date,
        bad_share: float,
    ) -> list[list]:
        """One row per active customer, ordered by id, stamped with New York local time."""
        at = np.flatnonzero(active)
        seconds = self._export_seconds(len(at)).tolist()
        clock = {
            s: f"{day.isoformat()}T{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}"
            for s in set(seconds)
        }
        fee = self._fees(plan, at)
        rows = [
            [customer, clock[s], p, f"{f:.2f}", n, r, signup_text[i], self.changed[i]]
            for customer, s, p, f, n, r, i in zip(
                ids[at].tolist(),
                seconds,
                plan[at].tolist(),
                fee.tolist(),
                self.seats[at].tolist(),
                self.region[at].tolist(),
                at.tolist(),
                strict=True,
            )
        ]
        _corrupt_crm(rows, self.rng, bad_share, day)
        return rows


def _level(plan: np.ndarray) -> np.ndarray:
    """0 for basic, 1 for standard, 2 for premium."""
    return np.select([plan == p for p in PLANS], range(len(PLANS)), default=0)


def generate(
    raw_dir: Path,
    start: date,
    end: date,
    customers: int = 2000,
    seed: int = 7,
    bad_share: float = 0.01,
    drift_after: date | None = None,
) -> list[Path]:
    """Write one CSV of events and one CRM snapshot per day in [start, end]; the same arguments
    give the same bytes. Returns the events files, then the CRM files, in date order."""
    rng = np.random.default_rng(seed)
    n = customers
    ids = np.arange(1, n + 1)
    signup = np.array([start - timedelta(days=int(d)) for d in rng.integers(30, 900, n)])
    plan = PLANS[rng.choice(3, n, p=[0.5, 0.35, 0.15])]
    risk = rng.beta(1.2, 6.0, n)
    rising = rng.random(n) < 0.25
    active = np.ones(n, dtype=bool)
    next_id = n + 1
    crm = _Crm(np.random.default_rng([seed, 1]), signup, start)
    signup_text = [d.isoformat() for d in signup]
    paths: list[Path] = []
    crm_paths: list[Path] = []
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
            crm.add(signup[-k:], day)
            signup_text.extend([day.isoformat()] * k)
        risk = np.clip(risk + rising * rng.uniform(0.0, 0.012, len(risk)), 0.0, 1.0)
        # Plan changes happen before the day's events, which then carry the new plan.
        crm.change_plans(plan, risk, rising, active, day)
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
                        signup_text[idx],
                    ]
                )
        # The snapshot is taken in the evening, before the day's cancellations (23:59:59 UTC).
        snapshot = crm.snapshot(ids, plan, signup_text, active, day, bad_share)
        active &= ~cancels
        rows.sort(key=lambda r: r[2])
        for number, row in enumerate(rows):
            row[0] = f"{day:%Y%m%d}-{number:06d}"
        _corrupt(rows, rng, bad_share, day)
        paths.append(_write(raw_path(raw_dir, SOURCE, day), EVENT_COLUMNS, rows))
        crm_paths.append(_write(raw_path(raw_dir, CRM_SOURCE, day), CRM_COLUMNS, snapshot))
    return paths + crm_paths


def _write(path: Path, columns: list[str], rows: list[list]) -> Path:
    """Write a CSV atomically: a temporary file, then a rename."""
    with _replacing(path) as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


@contextmanager
def _replacing(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` to write, which replaces ``path`` once written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.tmp")
    yield tmp
    tmp.replace(path)


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


def _corrupt_crm(rows: list[list], rng: np.random.Generator, share: float, day: date) -> None:
    """Break a share of CRM rows the way real exports break: each one fails one rule."""
    if not rows or share <= 0:
        return
    count = int(rng.binomial(len(rows), share))
    for idx in rng.choice(len(rows), size=min(count, len(rows)), replace=False):
        row = rows[idx]
        kind = int(rng.integers(0, 4))
        if kind == 0:
            row[2] = str(rng.choice(["enterprise", "Premium ", "trial"]))  # unknown plan
        elif kind == 1:
            row[3] = f"-{row[3]}"  # negative fee (a refund sign slipped in)
        elif kind == 2:
            row[0] = ""  # missing customer id
        else:
            row[1] = f"{day:%m/%d/%Y} 6:00 PM"  # unparseable: a spreadsheet's local format


# ---- at scale: the same customers, a whole day at a time -----------------------------------------
DAY_SECONDS = 86_400
EVENT_KINDS = np.array(["login", "purchase", "support_ticket", "cancel"])
CANCEL = 3  # EVENT_KINDS.index("cancel")
BAD_PLANS = ["enterprise", "Premium ", "trial"]  # what _corrupt_crm writes as a plan
CSV_OPTIONS = pacsv.WriteOptions(include_header=False, quoting_style="none", eol="\r\n")


class _ScaleCrm(_Crm):
    """``_Crm`` with its plan-change dates in a ``datetime64[D]`` array and its snapshot as one
    Arrow table: the same draws, no Python loop over customers or rows."""

    changed: Any

    def add(self, signup: np.ndarray, today: date) -> None:
        """As ``_Crm.add``, for ``signup`` dates as ``datetime64[D]``."""
        moved, since = self._draw(len(signup))
        days = (np.datetime64(today, "D") - signup).astype(np.int64)
        shift = np.where(moved & (days > 0), (since * days).astype(np.int64), 0)
        self.changed = np.concatenate(
            [np.asarray(self.changed, dtype="datetime64[D]"), signup + shift]
        )

    def _stamp(self, moved: np.ndarray, day: date) -> None:
        self.changed[moved] = np.datetime64(day, "D")

    def table(
        self,
        ids: np.ndarray,
        plan: np.ndarray,
        signup: np.ndarray,
        active: np.ndarray,
        day: date,
        bad_share: float,
    ) -> pa.Table:
        """``_Crm.snapshot`` as a table, with the same kinds of broken rows."""
        at = np.flatnonzero(active)
        seconds = self._export_seconds(len(at))
        fee = self._fees(plan, at)
        level = _level(plan[at])
        missing = np.zeros(len(at), dtype=bool)
        rows, how = _pick_bad(self.rng, len(at), bad_share, 4)
        level[rows[how == 0]] = len(PLANS) + self.rng.integers(0, 3, np.sum(how == 0))
        fee[rows[how == 1]] *= -1.0  # a refund sign slipped in
        missing[rows[how == 2]] = True
        seconds[rows[how == 3]] = DAY_SECONDS  # the spreadsheet's local format, below
        as_of = _day_times(day, "", [f"{day:%m/%d/%Y} 6:00 PM"])
        return pa.table(
            {
                "customer_id": pa.array(ids[at], mask=missing),
                "as_of": as_of.take(seconds),
                "plan": pa.array([*PLANS, *BAD_PLANS]).take(level),
                "monthly_fee": fee,
                "seats": self.seats[at],
                "region": pa.array(REGIONS).take(_index(self.region[at], REGIONS)),
                "signup_date": pa.array(signup[at]),
                "plan_changed_at": pa.array(self.changed[at]),
            }
        )


def generate_at_scale(
    raw_dir: Path,
    start: date,
    end: date,
    customers: int = 100_000,
    seed: int = 7,
    bad_share: float = 0.01,
    drift_after: date | None = None,
) -> list[Path]:
    """``generate``'s customer process and files, numpy over whole days: 1e6 customers take
    seconds a day. The same arguments give the same bytes (not ``generate``'s: the draws come
    in another order). Returns the events files, then the CRM files, in date order."""
    rng = np.random.default_rng(seed)
    n = customers
    ids = np.arange(1, n + 1)
    signup = np.datetime64(start, "D") - rng.integers(30, 900, n)
    plan, risk, rising = _newcomers(rng, n)
    active = np.ones(n, dtype=bool)
    next_id = n + 1
    crm = _ScaleCrm(np.random.default_rng([seed, 1]), signup, start)
    paths: list[Path] = []
    crm_paths: list[Path] = []
    for day in day_range(start, end):
        drift = drift_after is not None and day > drift_after
        k = int(rng.poisson(n * 0.0025))  # new sign-ups keep the population steady
        if k:
            ids = np.concatenate([ids, np.arange(next_id, next_id + k)])
            next_id += k
            signup = np.concatenate([signup, np.full(k, np.datetime64(day, "D"))])
            more_plan, more_risk, more_rising = _newcomers(rng, k)
            plan = np.concatenate([plan, more_plan])
            risk = np.concatenate([risk, more_risk])
            rising = np.concatenate([rising, more_rising])
            active = np.concatenate([active, np.ones(k, dtype=bool)])
            crm.add(signup[-k:], day)
        risk = np.clip(risk + rising * rng.uniform(0.0, 0.012, len(risk)), 0.0, 1.0)
        crm.change_plans(plan, risk, rising, active, day)  # the day's events carry the new plan
        counts = _activity(rng, risk, active, drift)
        snapshot = crm.table(ids, plan, signup, active, day, bad_share)  # before the cancels
        active &= ~counts[CANCEL].astype(bool)
        events = _events(rng, day, ids, _level(plan), signup, counts, drift, bad_share)
        paths.append(_write_table(raw_path(raw_dir, SOURCE, day), EVENT_COLUMNS, events))
        crm_paths.append(_write_table(raw_path(raw_dir, CRM_SOURCE, day), CRM_COLUMNS, snapshot))
    return paths + crm_paths


def _newcomers(rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plan, hidden risk and whether it rises, of ``k`` new customers."""
    plan = PLANS[rng.choice(3, k, p=[0.5, 0.35, 0.15])]
    return plan, rng.beta(1.2, 6.0, k), rng.random(k) < 0.25


def _activity(
    rng: np.random.Generator, risk: np.ndarray, active: np.ndarray, drift: bool
) -> list[np.ndarray]:
    """The day's logins, purchases, support tickets and cancellations (0 or 1) per customer:
    risk lowers activity and raises tickets and cancellations (``generate``'s rates)."""
    login_rate = 1.2 * (1.0 - 0.85 * risk) * (0.6 if drift else 1.0)
    logins = rng.poisson(login_rate) * active
    purchases = rng.poisson(0.12 * (1.0 - 0.7 * risk)) * active
    tickets = rng.poisson(0.01 + 0.12 * risk**2) * active
    cancels = (rng.random(len(risk)) < 0.0005 + 0.02 * risk**3) & active
    return [logins, purchases, tickets, cancels.astype(np.int64)]


def _events(
    rng: np.random.Generator,
    day: date,
    ids: np.ndarray,
    level: np.ndarray,
    signup: np.ndarray,
    counts: list[np.ndarray],
    drift: bool,
    bad_share: float,
) -> pa.Table:
    """The day's events as a table in time order (``counts`` per kind and customer), with
    ``_corrupt``'s kinds of broken rows."""
    who = np.concatenate([np.repeat(np.arange(len(ids)), c) for c in counts])
    kind = np.repeat(np.arange(len(EVENT_KINDS)), [int(c.sum()) for c in counts])
    seconds = rng.integers(0, DAY_SECONDS - 1, len(who))
    seconds[kind == CANCEL] = DAY_SECONDS - 1  # the last thing a customer does that day
    bought = np.flatnonzero(kind == 1)
    base = PRICES[level[who[bought]]] * (1.5 if drift else 1.0)
    amount = np.full(len(who), np.nan)
    amount[bought] = np.round(base * rng.lognormal(0.0, 0.35, len(bought)), 2)
    order = np.argsort(seconds, kind="stable")
    who, kind, seconds, amount = who[order], kind[order], seconds[order], amount[order]
    number = np.arange(len(who))
    missing = np.zeros(len(who), dtype=bool)
    rows, how = _pick_bad(rng, len(who), bad_share, 6)
    amount[rows[how == 0]] = -np.round(rng.uniform(1, 50, np.sum(how == 0)), 2)
    kind[rows[how == 1]] = len(EVENT_KINDS)  # page_view, below
    missing[rows[how == 2]] = True
    seconds[rows[how == 3]] = DAY_SECONDS  # unparseable, below
    seconds[rows[how == 4]] = DAY_SECONDS + 1  # outside the logical date, below
    twin = rows[how == 5]
    number[twin] = number[(twin + 1) % len(number)]  # a duplicate event id
    midnight = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    times = _day_times(
        day, "+00:00", ["yesterday-ish", (midnight - timedelta(hours=3)).isoformat()]
    )
    digits = pc.utf8_lpad(pc.cast(pa.array(number), pa.string()), width=6, padding="0")
    return pa.table(
        {
            "event_id": pc.binary_join_element_wise(f"{day:%Y%m%d}-", digits, ""),
            "customer_id": pa.array(ids[who], mask=missing),
            "event_time": times.take(seconds),
            "event_type": pa.array([*EVENT_KINDS, "page_view"]).take(kind),
            "amount": pa.array(amount, from_pandas=True),  # NaN: no amount
            "plan": pa.array(PLANS).take(level[who]),
            "signup_date": pa.array(signup[who]),
        }
    )


def _pick_bad(
    rng: np.random.Generator, n: int, share: float, kinds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Which of ``n`` rows to break (a binomial ``share``, none twice) and how (0..kinds-1)."""
    if n == 0 or share <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    rows = rng.choice(n, size=min(int(rng.binomial(n, share)), n), replace=False)
    return rows, rng.integers(0, kinds, len(rows))


def _index(values: np.ndarray, names: np.ndarray) -> np.ndarray:
    """Where each value is in ``names`` (Arrow takes strings by index far faster than it
    converts numpy's)."""
    return np.select([values == name for name in names], range(len(names)), default=0)


@cache
def _clock() -> pa.Array:
    """``HH:MM:SS`` of every second of a day (index: the second)."""
    return pa.array(
        [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(DAY_SECONDS)]
    )


def _day_times(day: date, suffix: str, specials: list[str]) -> pa.Array:
    """``<day>THH:MM:SS<suffix>`` of every second of ``day`` (index: the second), then
    ``specials`` (indices ``DAY_SECONDS``, ``DAY_SECONDS + 1``, ...)."""
    times = pc.binary_join_element_wise(f"{day.isoformat()}T", _clock(), suffix, "")
    return pa.concat_arrays([times, pa.array(specials, pa.string())])


def _write_table(path: Path, columns: list[str], table: pa.Table) -> Path:
    """Write a table as CSV atomically, laid out as ``_write`` lays out rows."""
    with _replacing(path) as tmp, pa.OSFile(str(tmp), "wb") as sink:
        sink.write((",".join(columns) + "\r\n").encode())
        pacsv.write_csv(table.select(columns), sink, CSV_OPTIONS)
    return path


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
    parser.add_argument(
        "--scale",
        action="store_true",
        help="numpy over whole days (generate_at_scale): for 1e5-1e6 customers",
    )
    args = parser.parse_args(argv)
    write = generate_at_scale if args.scale else generate
    paths = write(
        args.out, args.start, args.end, args.customers, args.seed, drift_after=args.drift_after
    )
    for source in (SOURCE, CRM_SOURCE):
        written = [p for p in paths if p.parent.name == source]
        print(f"wrote {len(written)} {source} files to {args.out / source}")


if __name__ == "__main__":
    main()
