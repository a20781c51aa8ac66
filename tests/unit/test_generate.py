"""The demo's raw data generator: deterministic bytes, and CRM snapshots inside their New York
date that agree with the day's events."""

from __future__ import annotations

import csv
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from churn_demo.generate import CRM_COLUMNS, EVENT_COLUMNS, PLANS, REGIONS, generate

START, END = date(2026, 3, 5), date(2026, 3, 12)  # spans the switch to daylight saving time
NEW_YORK = ZoneInfo("America/New_York")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_same_arguments_give_the_same_bytes(tmp_path: Path) -> None:
    first = generate(tmp_path / "a", START, END, customers=150, seed=11, bad_share=0.05)
    second = generate(tmp_path / "b", START, END, customers=150, seed=11, bad_share=0.05)
    days = (END - START).days + 1
    assert [p.parent.name for p in first] == ["events"] * days + ["crm"] * days
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    other = generate(tmp_path / "c", START, START, customers=150, seed=12, bad_share=0.05)
    assert other[1].read_bytes() != first[days].read_bytes()
    assert not list(tmp_path.rglob("*.tmp"))


def test_crm_snapshot_is_inside_its_new_york_date_and_matches_the_events(tmp_path: Path) -> None:
    generate(tmp_path, START, END, customers=200, seed=3, bad_share=0.0)
    for path in sorted((tmp_path / "crm").glob("*.csv")):
        day = date.fromisoformat(path.stem)
        with path.open(newline="") as handle:
            assert next(csv.reader(handle)) == CRM_COLUMNS
        rows = _rows(path)
        assert rows
        plans = {}
        for row in rows:
            as_of = datetime.fromisoformat(row["as_of"])
            assert as_of.tzinfo is None
            assert as_of.replace(tzinfo=NEW_YORK).date() == day
            assert row["plan"] in PLANS and row["region"] in REGIONS
            assert 0 <= float(row["monthly_fee"]) <= 10_000
            assert 1 <= int(row["seats"]) <= 1000
            signup = date.fromisoformat(row["signup_date"])
            assert signup <= date.fromisoformat(row["plan_changed_at"]) <= day
            plans[row["customer_id"]] = row["plan"]
        assert len(plans) == len(rows)  # one row per customer
        events = _rows(tmp_path / "events" / path.name)
        assert list(events[0]) == EVENT_COLUMNS
        # Everyone with events that day is in the snapshot, on the same plan.
        assert all(plans[e["customer_id"]] == e["plan"] for e in events)


def test_bad_crm_rows_each_break_one_rule(tmp_path: Path) -> None:
    generate(tmp_path, START, END, customers=300, seed=5, bad_share=0.1)
    rows = [r for p in sorted((tmp_path / "crm").glob("*.csv")) for r in _rows(p)]
    broken = {
        "plan": sum(r["plan"] not in PLANS for r in rows),
        "monthly_fee": sum(float(r["monthly_fee"]) < 0 for r in rows),
        "customer_id": sum(r["customer_id"] == "" for r in rows),
        "as_of": sum(not r["as_of"].startswith("2026-03-") for r in rows),
    }
    assert all(count > 0 for count in broken.values()), broken
    assert 0.06 < sum(broken.values()) / len(rows) < 0.14
