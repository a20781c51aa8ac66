"""Each entity's newest row over partitions read one at a time, newest first.

Memory follows one partition and the keys already found, not the partitions: an entity's
first row found is its newest. The online store's materialisation reads a version this way
(``fti.online.materialise``), and a training set its TTL windows (``fti.training.dataset``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from fti.store.layout import DATE_COLUMN


def days_of(table: pa.Table) -> np.ndarray:
    """The feature dates of ``table``'s rows, as ``datetime64[D]``."""
    return table.column(DATE_COLUMN).to_numpy().astype("datetime64[D]")


def newest_per_entity(table: pa.Table, key: str) -> pa.Table:
    """One row per entity: its newest by feature date (of equal dates, the last one)."""
    table = table.filter(pc.is_valid(table.column(key)))
    if table.num_rows == 0:
        return table
    keys = table.column(key).to_numpy(zero_copy_only=False)
    frame = pd.DataFrame({"k": keys, "d": days_of(table)})
    last = frame.sort_values("d", kind="stable").drop_duplicates("k", keep="last")
    return table.take(pa.array(np.sort(last.index.to_numpy())))


class Taken:
    """Entities that have their row already: their keys as one Arrow array."""

    def __init__(self) -> None:
        self.keys: pa.Array | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else len(self.keys)

    def newest_of_the_rest(self, rows: pa.Table, key: str) -> pa.Table:
        """The newest row of each entity of ``rows`` not taken yet; those entities are taken."""
        if self.keys is not None and len(self.keys) and rows.num_rows:
            rows = rows.filter(pc.invert(pc.is_in(rows.column(key), value_set=self.keys)))
        rows = newest_per_entity(rows, key)
        if rows.num_rows:
            found = [rows.column(key)] if self.keys is None else [self.keys, rows.column(key)]
            self.keys = pa.chunked_array(found, rows.schema.field(key).type).combine_chunks()
        return rows
