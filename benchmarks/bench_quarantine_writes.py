"""Writing 100,000 quarantine records (the table and the Parquet copy): one ORM object per row
(before) vs one bulk write (COPY on PostgreSQL, executemany on SQLite) and Core reads (now)."""

import json
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, select

from churn_demo.project import events
from fti.db.engine import get_engine, session_scope
from fti.db.migrate import upgrade
from fti.db.tables import QuarantinedRow, ValidationRun
from fti.features.events import Outcome, record_validation, write_copy

N = 100_000
TRACE = len(sys.argv) > 2
DAY = date(2026, 3, 10)
FRAME = pd.DataFrame(
    {
        "row_number": range(2, N + 2),
        "column": "amount",
        "rule": "amount: in_range(0, 10000) (got '-1')",
        "raw_values": [
            json.dumps({"event_id": f"e{i}", "customer_id": "7", "amount": "-1", "plan": "basic"})
            for i in range(N)
        ],
    }
)


def before(url: str, root: Path) -> None:
    with session_scope(url, write=True) as session:
        session.execute(delete(ValidationRun))
        run = ValidationRun(
            source="events",
            file="f.csv",
            logical_date=DAY,
            rows_read=N,
            rows_accepted=0,
            rows_quarantined=N,
            run_id="r",
            created_at=datetime.now(UTC),
            status="accepted",
            rows_readmitted=0,
        )
        session.add(run)
        session.flush()
        session.add_all(
            QuarantinedRow(
                validation_run_id=run.id,
                file="f.csv",
                row_number=int(q.row_number),
                column=str(q.column),
                rule=str(q.rule),
                raw_values=json.loads(q.raw_values),
            )
            for q in FRAME.itertuples()
        )
        session.flush()
        rows = session.scalars(
            select(QuarantinedRow)
            .where(QuarantinedRow.validation_run_id == run.id)
            .order_by(QuarantinedRow.row_number)
        ).all()
        table = pa.table(
            {
                "id": [r.id for r in rows],
                "file": [r.file for r in rows],
                "row_number": [r.row_number for r in rows],
                "column": [r.column for r in rows],
                "rule": [r.rule for r in rows],
                "raw_values": [json.dumps(r.raw_values) for r in rows],
            }
        )
        pq.write_table(table, root / "before.parquet")


def now(url: str, root: Path) -> None:
    with session_scope(url, write=True) as session:
        run = record_validation(
            session, events, DAY, Path("f.csv"), Outcome("accepted", N, 0, N, FRAME), "r"
        )
        write_copy(session, run, root)


def main(url: str) -> None:
    upgrade(url)
    root = Path(tempfile.mkdtemp(prefix="fti-bench-quarantine-"))
    root.mkdir(exist_ok=True)
    for name, step in (
        ("before (ORM)", before),
        ("now (bulk)", now),
        ("before (ORM)", before),
        ("now (bulk)", now),
    ):
        if TRACE:
            tracemalloc.start()
        clock = time.perf_counter()
        step(url, root)
        seconds = time.perf_counter() - clock
        peak = tracemalloc.get_traced_memory()[1] / 2**20 if TRACE else float("nan")
        if TRACE:
            tracemalloc.stop()
        print(
            f"{get_engine(url).dialect.name}: {name}: {N:,} records in {seconds:.2f} s, peak Python memory {peak:.0f} MiB"
        )


if __name__ == "__main__":
    main(sys.argv[1])
