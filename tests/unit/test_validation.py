"""Raw validation: bad rows are quarantined with file, line, column and rule; nothing is lost.

Every field of a source counts: CSV or Parquet (the same rules, the same records), the time zone
naive times are written in (stored in UTC; the logical date is a local day), an optional id
column, and whether a day without rows is normal.
"""

from __future__ import annotations

import csv
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn_demo.project import crm
from churn_demo.project import events as SOURCE
from fti.errors import InputFileError
from fti.features.events import load_events, raw_file, staged_file
from fti.validation import empty_rows, read_raw_file, validate_file, validate_frame

DAY = date(2026, 3, 10)
EVENT_COLUMNS = SOURCE.columns
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
    from churn_demo.generate import generate

    paths = generate(tmp_path, DAY, DAY, customers=400, seed=1, bad_share=0.05)
    path = next(p for p in paths if p.parent.name == SOURCE.name)
    assert path == raw_file(tmp_path, SOURCE, DAY)
    result = validate_file(path, SOURCE, DAY)
    assert result.rows_read == len(pd.read_csv(path))
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert result.rows_quarantined > 0
    assert set(result.quarantined["row_number"]) <= set(range(2, result.rows_read + 2))
    assert result.accepted["event_id"].is_unique
    assert (result.accepted["amount"].dropna() >= 0).all()
    assert str(result.accepted["customer_id"].dtype) == "int64"


def test_a_generated_crm_day_is_read_in_new_york_time(tmp_path: Path) -> None:
    from churn_demo.generate import generate

    day = date(2026, 3, 8)  # New York moves its clocks forward that night
    paths = generate(tmp_path, day, day, customers=200, seed=2, bad_share=0.05)
    path = raw_file(tmp_path, crm, day)
    assert path in paths
    result = validate_file(path, crm, day)
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert result.rows_accepted >= 0.8 * result.rows_read  # the snapshot's clock is New York's
    local_days = result.accepted["as_of"].dt.tz_convert("America/New_York").dt.date
    assert set(local_days) == {day}


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
NEW_YORK_NO_ID = replace(SOURCE, timezone="America/New_York", id_column=None)


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
    for source in (SOURCE, NEW_YORK_NO_ID):
        result = validate_frame(raw, source, DAY, Path("generated.csv"))
        assert result.rows_read == len(raw) == result.rows_accepted + result.rows_quarantined
        assert result.quarantined["row_number"].is_unique
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
    "infinite amount": (
        with_row(amount="inf"),
        "amount: parse as float64 (got 'inf': not a finite number)",
    ),
    "infinite id": (
        with_row(customer_id="-inf"),
        "customer_id: parse as int64 (got '-inf': not a finite integer)",
    ),
    "id beyond int64": (with_row(customer_id="1e308"), "customer_id: parse as int64 (got '1e308'"),
    "cut-off time": (
        with_row(event_time="2026-03-10T11:5"),
        "event_time: parse as datetime64[ns, UTC] (got '2026-03-10T11:5': incomplete timestamp",
    ),
    "cut-off date": (with_row(signup_date="2023-09"), "(got '2023-09': incomplete timestamp"),
    "negative amount": (with_row(amount="-5"), "amount: in_range"),
    "duplicate id": (with_row(event_id="g0"), "unique id"),
    "out of window": (with_row(event_time="2026-03-11T08:00:00+00:00"), "inside logical date"),
    "unparseable time": (with_row(event_time="at noon"), "event_time: parse as datetime"),
    "unknown category": (with_row(plan="platinum"), "plan: isin"),
    "time beyond 2262": (with_row(signup_date="3000-01-01"), "signup_date: parse as datetime"),
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


# ---- Parquet sources: the same rules, the same records ------------------------------------------
PARQUET = replace(SOURCE, format="parquet")


def write_text_parquet(path: Path, rows: list[dict[str, str | None]]) -> Path:
    """The rows as a Parquet file of string columns (what a CSV holds, typed as text)."""
    table = pa.table({c: pa.array([r.get(c) for r in rows], pa.string()) for c in EVENT_COLUMNS})
    pq.write_table(table, path)
    return path


def test_raw_file_is_named_by_source_and_format(tmp_path: Path) -> None:
    assert raw_file(tmp_path, SOURCE, DAY) == tmp_path / "events" / "2026-03-10.csv"
    assert raw_file(tmp_path, PARQUET, DAY) == tmp_path / "events" / "2026-03-10.parquet"
    assert raw_file(tmp_path, crm, DAY) == tmp_path / "crm" / "2026-03-10.csv"


@pytest.mark.parametrize("column", sorted(BAD_VALUES))
def test_parquet_rows_meet_exactly_the_csv_rules(tmp_path: Path, column: str) -> None:
    rows = [dict(GOOD, event_id=f"g{i}") for i in range(3)]
    rows += [dict(GOOD, event_id=f"b{i}", **{column: v}) for i, v in enumerate(BAD_VALUES[column])]
    rows.append(dict(GOOD, event_id="g0"))  # a duplicate id
    from_csv = validate_file(write_csv(tmp_path / "day.csv", rows), SOURCE, DAY)
    from_parquet = validate_file(write_text_parquet(tmp_path / "day.parquet", rows), PARQUET, DAY)

    assert from_parquet.rows_read == len(rows)
    assert from_parquet.rows_read == from_parquet.rows_accepted + from_parquet.rows_quarantined
    pd.testing.assert_frame_equal(from_parquet.accepted, from_csv.accepted)
    # row_number: the 1-based row in the Parquet file, the line (after the header) in the CSV
    assert from_parquet.quarantined["row_number"].tolist() == list(
        range(4, 4 + len(BAD_VALUES[column]) + 1)
    )
    assert (from_parquet.quarantined["row_number"] + 1).tolist() == from_csv.quarantined[
        "row_number"
    ].tolist()
    for field in ("column", "rule", "raw_values"):
        assert from_parquet.quarantined[field].tolist() == from_csv.quarantined[field].tolist()
    assert "unique id" in from_parquet.quarantined["rule"].iloc[-1]


def test_typed_parquet_columns_are_read_as_their_text(tmp_path: Path) -> None:
    """Numbers, dates and typed times: aware times keep their instant, naive ones are clock
    times of the source's zone."""
    source = replace(PARQUET, timezone="America/New_York")
    utc, naive = pa.timestamp("us", "UTC"), pa.timestamp("us")
    when = pd.Timestamp("2026-03-10T13:00:00Z")  # 09:00 in New York
    table = pa.table(
        {
            "event_id": pa.array(["a", "b", "c", "d", "e"]),
            "customer_id": pa.array([7, 8, None, 10, 11], pa.int64()),
            "event_time": pa.array(
                [when, when, when, when, pd.Timestamp("2026-03-10T03:00:00Z")], utc
            ),
            "event_type": pa.array(["purchase", "login", "login", "purchase", "login"]),
            "amount": pa.array([19.9, None, None, -1.0, None], pa.float64()),
            "plan": pa.array(["standard", "basic", "basic", "basic", "basic"]).dictionary_encode(),
            "signup_date": pa.array([date(2025, 1, 1)] * 5, pa.date32()),
        }
    )
    path = tmp_path / "day.parquet"
    pq.write_table(table, path)
    result = validate_file(path, source, DAY)
    assert result.rows_read == 5 == result.rows_accepted + result.rows_quarantined
    assert result.accepted["event_id"].tolist() == ["a", "b"]
    assert result.accepted["event_time"].tolist() == [when, when]
    assert str(result.accepted["event_time"].dtype) == "datetime64[ns, UTC]"
    # a date without a time is its midnight in the source's zone
    assert result.accepted["signup_date"].iloc[0] == pd.Timestamp("2025-01-01T05:00:00Z")
    assert result.accepted["customer_id"].tolist() == [7, 8]
    assert result.accepted["amount"].iloc[0] == 19.9
    bad = result.quarantined.set_index("row_number")["rule"]
    assert bad.index.tolist() == [3, 4, 5]  # 1-based rows of the file
    assert bad[3] == "customer_id: not null"
    assert "amount: in_range" in bad[4]
    assert bad[5] == "event_time: inside logical date 2026-03-10"  # 22:00 on the 9th there

    # the same instants in a naive column are New York clock times; with a zone, kept
    for kind, values, expected in [
        (naive, [pd.Timestamp("2026-03-10T09:00:00")], when),
        (pa.timestamp("ns", "Asia/Kolkata"), [when], when),
    ]:
        pq.write_table(table.slice(0, 1).set_column(2, "event_time", pa.array(values, kind)), path)
        assert validate_file(path, source, DAY).accepted["event_time"].tolist() == [expected]


def test_parquet_without_a_column_or_unreadable_fails_naming_the_file(tmp_path: Path) -> None:
    path = write_text_parquet(tmp_path / "day.parquet", [GOOD])
    pq.write_table(pq.read_table(path).drop_columns(["plan"]), path)
    with pytest.raises(InputFileError, match=r"day\.parquet: missing required column\(s\) plan"):
        validate_file(path, PARQUET, DAY)
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"event_id,plan\n1,basic\n")
    with pytest.raises(InputFileError, match=r"garbage\.parquet: cannot be read as Parquet"):
        validate_file(garbage, PARQUET, DAY)
    nested = tmp_path / "nested.parquet"
    table = pq.read_table(write_text_parquet(tmp_path / "x.parquet", [GOOD]))
    pq.write_table(table.set_column(5, "plan", pa.array([[1, 2]])), nested)
    with pytest.raises(InputFileError, match=r"nested\.parquet: column 'plan' .* as text"):
        validate_file(nested, PARQUET, DAY)


# ---- time zones: naive times are the source's clock, stored in UTC -----------------------------
CRM = crm.columns
CRM_GOOD = {
    "customer_id": "7",
    "as_of": "2026-03-08T23:00:00",
    "plan": "standard",
    "monthly_fee": "49.0",
    "seats": "3",
    "region": "us",
    "signup_date": "2025-01-01",
    "plan_changed_at": "2025-06-01T12:00:00",
}


def crm_day(tmp_path: Path, times: list[str]) -> Path:
    return write_csv(
        tmp_path / "crm.csv",
        [dict(CRM_GOOD, customer_id=str(i + 1), as_of=t) for i, t in enumerate(times)],
        CRM,
    )


def test_naive_times_are_new_york_clock_times_stored_in_utc(tmp_path: Path) -> None:
    assert crm.timezone == "America/New_York" and crm.id_column is None
    result = validate_file(crm_day(tmp_path, ["2026-03-10T09:00:00"]), crm, DAY)
    row = result.accepted.iloc[0]
    assert row["as_of"] == pd.Timestamp("2026-03-10T13:00:00Z")  # EDT, UTC-4
    assert row["signup_date"] == pd.Timestamp("2025-01-01T05:00:00Z")  # EST, UTC-5
    assert row["plan_changed_at"] == pd.Timestamp("2025-06-01T16:00:00Z")  # EDT
    for column in ("as_of", "signup_date", "plan_changed_at"):
        assert str(result.accepted[column].dtype) == "datetime64[ns, UTC]"


@pytest.mark.parametrize(
    ("day", "inside", "outside", "unclear"),
    [
        (  # clocks go forward at 02:00: a 23-hour day, 02:30 never happens
            date(2026, 3, 8),
            {
                "2026-03-08T00:00:00": "2026-03-08T05:00:00Z",
                "2026-03-08T01:59:59": "2026-03-08T06:59:59Z",
                "2026-03-08T03:00:00": "2026-03-08T07:00:00Z",
                "2026-03-08T23:59:59": "2026-03-09T03:59:59Z",
                "2026-03-09T03:30:00+00:00": "2026-03-09T03:30:00Z",  # 23:30 EDT
            },
            ["2026-03-07T23:59:59", "2026-03-09T00:00:00", "2026-03-08T04:30:00Z"],
            ["2026-03-08T02:30:00"],
        ),
        (  # clocks go back at 02:00: a 25-hour day, 01:30 happens twice
            date(2026, 11, 1),
            {
                "2026-11-01T00:00:00": "2026-11-01T04:00:00Z",
                "2026-11-01T01:30:00-04:00": "2026-11-01T05:30:00Z",
                "2026-11-01T01:30:00-05:00": "2026-11-01T06:30:00Z",
                "2026-11-01T23:59:59": "2026-11-02T04:59:59Z",
                "2026-11-02T04:30:00Z": "2026-11-02T04:30:00Z",  # 23:30 EST
            },
            ["2026-10-31T23:59:59", "2026-11-02T00:00:00", "2026-11-01T03:59:59Z"],
            ["2026-11-01T01:30:00"],
        ),
    ],
)
def test_the_logical_date_is_the_local_day_across_a_clock_change(
    tmp_path: Path, day: date, inside: dict[str, str], outside: list[str], unclear: list[str]
) -> None:
    result = validate_file(crm_day(tmp_path, [*inside, *outside, *unclear]), crm, day)
    assert result.rows_read == len(inside) + len(outside) + len(unclear)
    assert result.accepted["as_of"].tolist() == [pd.Timestamp(t) for t in inside.values()]
    rules = result.quarantined["rule"].tolist()
    assert rules[: len(outside)] == [f"as_of: inside logical date {day}"] * len(outside)
    for rule in rules[len(outside) :]:
        assert rule.startswith("as_of: parse as datetime64[ns, UTC]")
        assert "a clock change skips or repeats it" in rule


def test_a_time_with_an_offset_keeps_it(tmp_path: Path) -> None:
    rows = [
        dict(GOOD, event_id="a", event_time="2026-03-10T08:00:00+05:30"),
        dict(GOOD, event_id="b", event_time="2026-03-10T01:00:00+05:30"),  # 19:30 on the 9th
        dict(GOOD, event_id="c", event_time="2026-03-10T20:00:00-0500"),  # 01:00 on the 11th
        dict(GOOD, event_id="d", event_time="2026-03-10T08:00:00Z"),
        dict(GOOD, event_id="e", event_time="2026-03-10T08:00:00"),  # UTC: the source's zone
    ]
    result = validate_file(write_csv(tmp_path / "day.csv", rows), SOURCE, DAY)
    assert result.accepted["event_id"].tolist() == ["a", "d", "e"]
    assert result.accepted["event_time"].tolist() == [
        pd.Timestamp("2026-03-10T02:30:00Z"),
        pd.Timestamp("2026-03-10T08:00:00Z"),
        pd.Timestamp("2026-03-10T08:00:00Z"),
    ]
    assert result.quarantined["row_number"].tolist() == [3, 4]
    # in a New York source, a time with an offset is not moved either (and its New York day
    # decides: 02:30 UTC is the 9th there)
    new_york = replace(SOURCE, timezone="America/New_York")
    rows = [rows[0], dict(GOOD, event_id="f", event_time="2026-03-10T20:00:00+05:30")]
    result = validate_file(write_csv(tmp_path / "day.csv", rows), new_york, DAY)
    assert result.accepted["event_time"].tolist() == [pd.Timestamp("2026-03-10T14:30:00Z")]
    assert result.quarantined["rule"].tolist() == ["event_time: inside logical date 2026-03-10"]


def test_an_offset_the_pattern_misses_is_still_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fti.validation._values

    rows = [
        dict(GOOD, event_id="a", event_time="2026-03-10T08:00:00+01:00"),
        dict(GOOD, event_id="b", event_time="2026-03-10T08:00:00"),
    ]
    path = write_csv(tmp_path / "day.csv", rows)
    expected = validate_file(path, crm_like := replace(SOURCE, timezone="Europe/Berlin"), DAY)
    monkeypatch.setattr(fti.validation._values, "OFFSET", r"(?!x)x")  # matches nothing
    again = validate_file(path, crm_like, DAY)
    pd.testing.assert_frame_equal(again.accepted, expected.accepted)
    assert again.accepted["event_time"].tolist() == [pd.Timestamp("2026-03-10T07:00:00Z")] * 2


# ---- id_column ---------------------------------------------------------------------------------
def test_without_an_id_column_duplicates_are_kept(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "day.csv", [GOOD, GOOD, dict(GOOD, amount="5.00")])
    result = validate_file(path, replace(SOURCE, id_column=None), DAY)
    assert (result.rows_accepted, result.rows_quarantined) == (3, 0)
    assert result.accepted["event_id"].tolist() == ["e1", "e1", "e1"]
    same = crm_day(tmp_path, ["2026-03-10T09:00:00"] * 2)
    result = validate_file(same, crm, DAY)
    assert (result.rows_accepted, result.rows_quarantined) == (2, 0)


# ---- missing_day -------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [SOURCE, PARQUET, crm], ids=lambda s: f"{s.name}-{s.format}")
def test_a_day_without_rows_fails_unless_the_source_says_empty(
    tmp_path: Path, source: object
) -> None:
    assert isinstance(source, type(SOURCE))
    missing = raw_file(tmp_path, source, DAY)
    with pytest.raises(InputFileError, match=rf"{missing.name}: raw file .* does not exist"):
        validate_file(missing, source, DAY)

    empty = replace(source, missing_day="empty")
    result = validate_file(missing, empty, DAY)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (0, 0, 0)
    assert result.file == missing
    pd.testing.assert_frame_equal(result.accepted, empty_rows(source))
    assert result.quarantined.empty

    no_rows = tmp_path / f"no_rows.{source.format}"  # a header (or a schema) alone
    if source.format == "csv":
        write_csv(no_rows, [], source.columns)
    else:
        write_text_parquet(no_rows, [])
    with pytest.raises(InputFileError, match=rf"{no_rows.name}: has .*no rows"):
        validate_file(no_rows, source, DAY)
    result = validate_file(no_rows, empty, DAY)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (0, 0, 0)
    pd.testing.assert_frame_equal(result.accepted, empty_rows(source))


def test_an_empty_file_fails_even_when_days_may_be_empty(tmp_path: Path) -> None:
    path = tmp_path / "day.csv"
    path.write_bytes(b"")
    with pytest.raises(InputFileError, match=r"day\.csv: is empty \(no header line\)"):
        validate_file(path, replace(SOURCE, missing_day="empty"), DAY)


def test_no_rows_are_typed_so_time_columns_work(tmp_path: Path) -> None:
    for source in (SOURCE, crm):
        rows = empty_rows(source)
        assert rows.empty and rows.columns.tolist() == source.columns
        for name, column in source.schema.columns.items():
            if column.coerce:
                assert str(rows[name].dtype) == str(column.dtype)
        assert rows[source.time_column].dt.tz_convert(source.timezone).dt.date.empty
        # nothing staged, or only empty days staged: the same typed frame
        assert load_events(tmp_path, source, DAY, DAY).dtypes.equals(rows.dtypes)
        staged = staged_file(tmp_path, source, DAY)
        staged.parent.mkdir(parents=True, exist_ok=True)
        rows.to_parquet(staged, index=False)
        loaded = load_events(tmp_path, source, DAY, DAY)
        assert loaded.empty and loaded.dtypes.equals(rows.dtypes)


def test_an_empty_day_beside_a_full_one_loads_the_full_one(tmp_path: Path) -> None:
    full = validate_file(write_csv(tmp_path / "day.csv", [GOOD]), SOURCE, DAY).accepted
    for day, frame in [(DAY, full), (date(2026, 3, 11), empty_rows(SOURCE))]:
        staged = staged_file(tmp_path, SOURCE, day)
        staged.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(staged, index=False)
    loaded = load_events(tmp_path, SOURCE, DAY, date(2026, 3, 12))
    pd.testing.assert_frame_equal(loaded, full)
