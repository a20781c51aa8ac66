"""Cost of the cross-day id check of one new day (its ids against every other accepted day's
id hashes, then its own hashes written), with 1 day against ``--days`` days held, and with a
``unique_within_days`` window, side by side; time and the check's peak memory (tracemalloc).

    .venv/bin/python benchmarks/bench_accepted_ids.py [--per-day 50000] [--days 100]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete

from churn_demo.project import events as EVENTS
from fti.db.engine import session_scope
from fti.db.migrate import upgrade
from fti.db.tables import ValidationRun
from fti.features.accepted_ids import id_holders, remember_ids
from fti.features.staged import staged_file

START = date(2026, 1, 1)
REPEATS = 500  # ids of the new day that the first day holds


def ids_of(day_no: int, per_day: int) -> pa.Array:
    return pa.array([f"{day_no:04d}-{i:07d}" for i in range(per_day)])


def hold(url: str, staging: Path, days: int, per_day: int) -> None:
    """``days`` accepted days of ``per_day`` ids each (staged ids, their hashes, their runs)."""
    with session_scope(url, write=True) as session:
        session.execute(delete(ValidationRun))
        for d in range(days):
            day = START + timedelta(days=d)
            staged = staged_file(staging, EVENTS, day)
            if not staged.exists():
                staged.parent.mkdir(parents=True, exist_ok=True)
                ids = ids_of(d, per_day)
                pq.write_table(pa.table({"event_id": ids}), staged)
                remember_ids(staged, ids)
            session.add(
                ValidationRun(
                    source="events",
                    file=f"{day}.csv",
                    logical_date=day,
                    rows_read=per_day,
                    rows_accepted=per_day,
                    rows_quarantined=0,
                    run_id="bench",
                    created_at=datetime.now(UTC),
                    status="accepted",
                )
            )


def one_day(
    url: str, staging: Path, days: int, per_day: int, window: int | None, trace: bool
) -> tuple[float, float]:
    """Check a new day's ids (``REPEATS`` of them held by an earlier day) and write its hashes:
    seconds, and with ``trace`` the peak MiB allocated (tracing slows it: timed apart)."""
    source = replace(EVENTS, unique_within_days=window)
    day = START + timedelta(days=days)
    fresh = ids_of(days, per_day - REPEATS).to_pylist()
    ids = pa.array(fresh + ids_of(days - 1 if window else 0, REPEATS).to_pylist())
    if trace:
        tracemalloc.start()
    clock = time.perf_counter()
    with session_scope(url) as session:
        held = id_holders(session, staging, source, day, ids)
    target = staged_file(staging, EVENTS, day)
    remember_ids(target, ids)
    seconds = time.perf_counter() - clock
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0.0
    tracemalloc.stop()
    assert len(held) == REPEATS, len(held)
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=50_000, help="ids a day")
    parser.add_argument("--days", type=int, default=100, help="days held in the long history")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        staging, url = Path(tmp) / "staging", f"sqlite:///{tmp}/ids.db"
        upgrade(url)
        rows = []
        for days, window in ((1, None), (args.days, None), (args.days, 7)):
            hold(url, staging, days, args.per_day)
            seconds = min(
                one_day(url, staging, days, args.per_day, window, False)[0] for _ in range(3)
            )
            peak = one_day(url, staging, days, args.per_day, window, True)[1]
            rows.append((days, window, seconds, peak))
    base = rows[0][2]
    print(f"\ncross-day id check of {args.per_day:,} new ids (best of 3)")
    print(f"{'days held':>10} {'window':>8} {'seconds':>9} {'x 1 day':>8} {'peak MiB':>9}")
    for days, window, seconds, peak in rows:
        shown = "-" if window is None else f"{window} d"
        print(f"{days:>10} {shown:>8} {seconds:>9.3f} {seconds / base:>8.1f} {peak:>9.1f}")


if __name__ == "__main__":
    main()
