"""Cost of the cross-day id check (forget the day's ids, look up its ids, record them) with
1 vs 100 days of 50,000 ids already held, on SQLite and PostgreSQL.

    python benchmarks/bench_accepted_ids.py sqlite:////tmp/x.db  |  python benchmarks/bench_accepted_ids.py postgresql+psycopg://...
"""

import sys
import time
from datetime import date, timedelta

from sqlalchemy import func, insert, select

from fti.db.engine import get_engine, session_scope
from fti.db.migrate import upgrade
from fti.db.tables import AcceptedId
from fti.features.events import ACCEPTED_IDS, forget_ids, id_holders, remember_ids

PER_DAY = 50_000
START = date(2026, 1, 1)


def ids_of(day_no: int) -> list[str]:
    return [f"evt-{day_no:04d}-{i:06d}" for i in range(PER_DAY)]


def fill(url: str, days: int) -> None:
    with session_scope(url, write=True) as session:
        have = session.scalar(select(func.count(func.distinct(AcceptedId.logical_date))))
        for d in range(have, days):
            session.execute(
                insert(ACCEPTED_IDS),
                [
                    {"source": "events", "id_value": i, "logical_date": START + timedelta(days=d)}
                    for i in ids_of(d)
                ],
            )


def one_day(url: str, day_no: int, repeats: int = 500) -> tuple[float, int]:
    """Validate-time work for one new day: 50,000 ids, ``repeats`` of them held by day 0."""
    day = START + timedelta(days=day_no)
    ids = ids_of(day_no)[: PER_DAY - repeats] + ids_of(0)[:repeats]
    clock = time.perf_counter()
    with session_scope(url, write=True) as session:
        forget_ids(session, "events", day)
        held = id_holders(session, "events", ids)
        remember_ids(session, "events", day, [i for i in ids if i not in held])
        session.rollback()  # keep the table as it was for the next measurement
    return time.perf_counter() - clock, len(held)


def main(url: str) -> None:
    upgrade(url)
    for days in (1, 100):
        fill(url, days)
        times = []
        for attempt in range(3):
            seconds, found = one_day(url, 5000 + attempt)
            assert found == 500
            times.append(seconds)
        print(
            f"{get_engine(url).dialect.name}: {days:>3} day(s) held ({days * PER_DAY:,} ids): "
            f"lookup + record of {PER_DAY:,} ids: best {min(times):.3f} s, runs {[round(t, 3) for t in times]}"
        )


if __name__ == "__main__":
    main(sys.argv[1])
