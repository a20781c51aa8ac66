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
    raw.index = pd.RangeIndex(2, len(raw) + 2)  # each row's line in its file
    result = validate_frame(raw, SOURCE, DAY, Path("generated.csv"))
    assert result.rows_read == len(raw) == result.rows_accepted + result.rows_quarantined
    assert result.quarantined["row_number"].is_unique


# ---- a corpus of malformed raw files -----------------------------------------------------------
def good_lines(n: int = 6) -> list[str]:
    rows = [",".join(dict(GOOD, event_id=f"g{i}").values()) for i in range(n)]
    return [",".join(EVENT_COLUMNS), *rows]


def with_row(**values: str) -> bytes:
    """Six good rows, then one row with ``values`` changed (line 8)."""
    return (
        "\n".join([*good_lines(), ",".join((GOOD | {"event_id": "bad"} | values).values())]) + "\n"
    ).encode()


GOOD_FILE = ("\n".join(good_lines()) + "\n").encode()
REJECTED = {
    "empty file": (b"", "is empty"),
    "header only": (GOOD_FILE.split(b"\n")[0] + b"\n", "no rows"),
    "garbage bytes": (bytes(range(256)) * 4, "UTF-8"),
    "wrong encoding": (GOOD_FILE.replace(b"standard", "standärd".encode("latin-1")), "UTF-8"),
    "wrong delimiter": (GOOD_FILE.replace(b",", b";"), "missing required column.*delimiter"),
    "missing column": (
        b"\n".join(b",".join(line.split(b",")[:-1]) for line in GOOD_FILE.split(b"\n")),
        r"missing required column\(s\) signup_date",
    ),
    "renamed column": (
        GOOD_FILE.replace(b"amount", b"amt", 1),
        r"missing required column\(s\) amount",
    ),
}
QUARANTINED = {
    "truncated last line": (
        GOOD_FILE + b"g9,7,2026-03-10T08:00",
        "(row): 3 field(s) where the header has 7",
    ),
    "very wide row": (GOOD_FILE + b",".join([b"x"] * 500) + b"\n", "(row): 500 field(s)"),
    "wrong type": (with_row(customer_id="seven"), "parse as int64"),
    "null": (with_row(event_type=""), "event_type: not null"),
    "NaN amount": (with_row(amount="nan"), "amount: parse as float64"),
    "infinite amount": (with_row(amount="inf"), "amount: in_range"),
    "negative amount": (with_row(amount="-5"), "amount: in_range"),
    "duplicate id": (with_row(event_id="g0"), "unique id"),
    "out of window": (with_row(event_time="2026-03-11T08:00:00+00:00"), "inside logical date"),
    "unparseable time": (with_row(event_time="at noon"), "event_time: parse as datetime"),
    "unknown category": (with_row(plan="platinum"), "plan: isin"),
}


@pytest.mark.parametrize("case", sorted(REJECTED))
def test_an_unusable_file_is_rejected_naming_the_file_and_the_reason(
    tmp_path: Path, case: str
) -> None:
    content, reason = REJECTED[case]
    path = tmp_path / f"{case.replace(' ', '_')}.csv"
    path.write_bytes(content)
    with pytest.raises(InputFileError, match=rf"{path.name}.*{reason}"):
        validate_file(path, SOURCE, DAY)


@pytest.mark.parametrize("case", sorted(QUARANTINED))
def test_a_bad_row_is_quarantined_at_its_line_and_the_rest_accepted(
    tmp_path: Path, case: str
) -> None:
    content, rule = QUARANTINED[case]
    path = tmp_path / "day.csv"
    path.write_bytes(content)
    result = validate_file(path, SOURCE, DAY)
    lines = content.rstrip(b"\n").split(b"\n")
    assert result.rows_read == len(lines) - 1 == result.rows_accepted + result.rows_quarantined
    assert result.rows_accepted == 6 and result.rows_quarantined == 1
    (bad,) = result.quarantined.itertuples()
    assert bad.row_number == len(lines) and rule in bad.rule
    assert bad.raw_values  # the original values (or line) are kept


def test_an_extra_column_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(b"\n".join(line + b",extra" for line in GOOD_FILE.rstrip(b"\n").split(b"\n")))
    result = validate_file(path, SOURCE, DAY)
    assert (result.rows_accepted, result.rows_quarantined) == (6, 0)
