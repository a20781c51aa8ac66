"""A day with no rows, or a column with no values, publishes under the group's own types."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from fti.errors import StoreError
from fti.store.registry_repo import init_store
from fti.store.versions import FeatureStore

DAY = date(2026, 2, 1)


def frame_table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def test_an_empty_day_and_an_all_null_column_keep_the_versions_types(tmp_path: Path) -> None:
    init_store(tmp_path / "store", str(tmp_path / "remote"))
    store = FeatureStore(tmp_path / "store")
    first = pd.DataFrame({"station_id": ["a", "b"], "feature_date": [DAY, DAY], "rain": [0.5, 1.0]})
    store.publish("weather", {DAY: frame_table(first)}, "v1")
    # What a build returns for a day without data: no rows, columns without a type.
    empty = pd.DataFrame({"station_id": [], "feature_date": [], "rain": []})
    later = DAY + timedelta(days=1)
    assert store.publish("weather", {later: frame_table(empty)}, "v2").version == 2
    # A day whose column has no value at all (all null).
    nulls = pd.DataFrame(
        {"station_id": ["a"], "feature_date": [later + timedelta(days=1)], "rain": [None]}
    )
    assert (
        store.publish("weather", {later + timedelta(days=1): frame_table(nulls)}, "v3").version == 3
    )
    table = store.read("weather", 3)
    assert table.schema.field("rain").type == pa.float64()
    assert table.column("rain").to_pylist() == [0.5, 1.0, None]
    assert store.read("weather", 3, dates=[later]).num_rows == 0
    # A real change of type is still refused.
    text = pd.DataFrame({"station_id": ["a"], "feature_date": [DAY], "rain": ["wet"]})
    with pytest.raises(StoreError, match="changes type from double to large_string"):
        store.publish("weather", {DAY: frame_table(text)}, "v4")
