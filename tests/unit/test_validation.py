"""Raw validation: bad rows are quarantined with file, line, column and rule; nothing is lost."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn_demo.generate import EVENT_COLUMNS, generate
from churn_demo.project import project
from fti.errors import InputFileError
from fti.validation import read_raw_file, validate_file, validate_frame

DAY = date(2026, 3, 10)
SOURCE = project.source
GOOD = {
    "event_id": "e1",
    "customer_id": "7",
    "event_time": "2026-03-10T08:00:00+00:00",
    "event_type": "purchase",
    "amount": "19.90",
    "plan": "standard",
    "signup_date": "2025-01-01",
}
BAD_VALUES = {
    "customer_id": ["", "abc", "-3", "1.5"],
    "event_time": ["", "yesterday", "2026-03-09T23:59:59+00:00", "2026-03-11T00:00:00+00:00"],
    "event_type": ["page_view", ""],
    "amount": ["-1", "lots", "1e9"],
    "plan": ["gold", ""],
    "signup_date": ["soon", ""],
}


def write_csv(path: Path, rows: list[dict[str, str]], columns: list[str] = EVENT_COLUMNS) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_generated_day_is_split_and_accounted(tmp_path: Path) -> None:
    [path] = generate(tmp_path, DAY, DAY, customers=400, seed=1, bad_share=0.05)
    result = validate_file(path, SOURCE, DAY)
    assert result.rows_read == len(pd.read_csv(path))
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert result.rows_quarantined > 0
    assert set(result.quarantined["row_number"]) <= set(range(2, result.rows_read + 2))
    assert result.accepted["event_id"].is_unique
    assert (result.accepted["amount"].dropna() >= 0).all()
    assert str(result.accepted["customer_id"].dtype) == "int64"


@pytest.mark.parametrize("column", sorted(BAD_VALUES))
def test_each_bad_value_quarantines_its_row_with_the_rule(tmp_path: Path, column: str) -> None:
    rows = [dict(GOOD, event_id=f"g{i}") for i in range(3)]
    for i, value in enumerate(BAD_VALUES[column]):
        rows.append(dict(GOOD, event_id=f"b{i}", **{column: value}))
    path = write_csv(tmp_path / "day.csv", rows)
    result = validate_file(path, SOURCE, DAY)
    assert result.rows_accepted == 3
    assert result.rows_quarantined == len(BAD_VALUES[column])
    assert (result.quarantined["column"].str.contains(column)).all()
    assert result.quarantined["row_number"].tolist() == list(range(5, 5 + len(BAD_VALUES[column])))


def test_duplicate_event_id_keeps_the_first(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "day.csv", [GOOD, dict(GOOD, amount="5.00"), dict(GOOD, event_id="e2")]
    )
    result = validate_file(path, SOURCE, DAY)
    assert result.accepted["event_id"].tolist() == ["e1", "e2"]
    assert result.quarantined.iloc[0]["row_number"] == 3
    assert "unique" in result.quarantined.iloc[0]["rule"]


def test_purchase_without_amount_breaks_a_cross_column_rule(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "day.csv", [dict(GOOD, amount="")])
    result = validate_file(path, SOURCE, DAY)
    assert result.rows_quarantined == 1
    assert result.quarantined.iloc[0]["rule"] == "(row): a purchase needs an amount"


def test_missing_column_fails_the_file_naming_it(tmp_path: Path) -> None:
    columns = [c for c in EVENT_COLUMNS if c != "plan"]
    path = write_csv(tmp_path / "day.csv", [{c: GOOD[c] for c in columns}], columns)
    with pytest.raises(InputFileError, match=r"day\.csv.*plan"):
        read_raw_file(path, SOURCE)


def test_unreadable_file_fails_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes(",".join(EVENT_COLUMNS).encode() + b"\n\xff\xfe,\xe9\n")
    with pytest.raises(InputFileError, match="latin1.csv"):
        read_raw_file(path, SOURCE)


text_or_bad = st.one_of(st.none(), st.text(max_size=6))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(
        st.fixed_dictionaries(
            {
                column: st.one_of(
                    st.just(GOOD[column]),
                    st.sampled_from(BAD_VALUES.get(column, [""])),
                    text_or_bad,
                )
                for column in EVENT_COLUMNS
            }
        ),
        max_size=30,
    )
)
def test_accounting_identity_holds_for_any_mix(rows: list[dict[str, str | None]]) -> None:
    raw = pd.DataFrame(rows, columns=EVENT_COLUMNS, dtype="str")
    raw = raw.where(raw.notna() & (raw != ""), None)
    result = validate_frame(raw, SOURCE, DAY, Path("generated.csv"))
    assert result.rows_read == len(raw) == result.rows_accepted + result.rows_quarantined
    assert result.quarantined["row_number"].is_unique
