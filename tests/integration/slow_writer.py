"""A prediction write that stalls mid-load: ``python -m tests.integration.slow_writer DB_URL MARKER``.

It writes 20 batches of a new version of the slice, touches MARKER after the fifth batch has
been handed to the database, and then stalls for STALL_SECONDS before the sixth, so a test can kill it (or cut
its connection) while the write transaction is open.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pyarrow as pa

from fti.inference.write import write_slice
from tests.integration.slices import a_slice, scores

DAY = date(2026, 3, 1)
ROWS, BATCH = 20_000, 1_000
STALL_SECONDS = 5  # the test acts within this window; then the write carries on


def stalling(marker: Path) -> Iterator[pa.RecordBatch]:
    for number, batch in enumerate(scores(ROWS, BATCH, salt=1)):
        if number == 5:
            marker.touch()
            time.sleep(STALL_SECONDS)
        yield batch


if __name__ == "__main__":
    write_slice(sys.argv[1], a_slice(DAY, version=2), stalling(Path(sys.argv[2])))
