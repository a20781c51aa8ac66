"""What a value must look like to be read: exact integers, finite numbers, complete timestamps;
files with a byte-order mark or a very long cell; and the cost of a file of bad rows (stop at
the quarantine share and count, records built column-wise but the same as one by one)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churn_demo.project import crm
from churn_demo.project import events as SOURCE
from fti.errors import InputFileError
from fti.validation import (
    QUARANTINE_COLUMNS,
    QUARANTINE_SAMPLE,
    ValidationResult,
    empty_rows,
    is_over_threshold,
    validate_file,
    validate_frame,
)

DAY = date(2026, 3, 10)
GOOD = {
    "event_id": "e1",
    "customer_id": "7",
    "event_time": "2026-03-10T08:00:00+00:00",
    "event_type": "purchase",
    "amount": "19.90",
    "plan": "standard",
    "signup_date": "2025-01-01",
}
COLUMNS = SOURCE.columns


def frame(rows: list[dict[str, str | None]], columns: list[str] = COLUMNS) -> pd.DataFrame:
    """Text rows as read from a CSV: index = line (the header is line 1)."""
    raw = pd.DataFrame(rows, columns=columns, dtype="str")
    raw.index = pd.RangeIndex(2, len(raw) + 2, name="line")
    return raw


def one_bad(column: str, value: str, source: object = SOURCE) -> tuple[pd.DataFrame, str]:
    """Two good rows and one with ``column`` set to ``value``: (accepted, the bad row's rule)."""
    rows = [dict(GOOD, event_id="g1"), dict(GOOD, event_id="g2")]
    rows.append(dict(GOOD, event_id="bad", **{column: value}))
    result = validate_frame(frame(rows), source, DAY, Path("day.csv"))  # type: ignore[arg-type]
    assert result.rows_read == 3 == result.rows_accepted + result.rows_quarantined
    assert result.accepted["event_id"].tolist()[:2] == ["g1", "g2"]
    if result.rows_quarantined == 0:
        return result.accepted, ""
    (bad,) = result.quarantined.itertuples()
    assert bad.row_number == 4
    return result.accepted, str(bad.rule)


# ---- integers ----------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "Infinity", "nan", "NaN", "1e308", "-1e308"])
def test_a_non_finite_integer_is_a_bad_row_not_a_crash(value: str) -> None:
    _, rule = one_bad("customer_id", value)
    assert rule == f"customer_id: parse as int64 (got {value!r}: not a finite integer)"


def test_integers_are_exact_whatever_the_other_rows_hold() -> None:
    ids = ["9007199254740993", "2.0", "9223372036854775807", " 42 ", "+5", "007", "3.", "8.000"]
    rows = [dict(GOOD, event_id=f"e{i}", customer_id=v) for i, v in enumerate(ids)]
    result = validate_frame(frame(rows), SOURCE, DAY, Path("day.csv"))
    assert result.rows_quarantined == 0
    assert result.accepted["customer_id"].tolist() == [
        9007199254740993,
        2,
        9223372036854775807,
        42,
        5,
        7,
        3,
        8,
    ]
    assert str(result.accepted["customer_id"].dtype) == "int64"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("1e3", ": an exponent; write the integer's digits"),
        ("2.5", ": not a whole number"),
        ("2.50", ": not a whole number"),
        ("9223372036854775808", ": outside the int64 range"),
        ("-9223372036854775809", ": outside the int64 range"),
        ("123456789012345678901234567890", ": outside the int64 range"),
        ("1e19", ": not a finite integer"),
        ("seven", ""),
        ("4 2", ""),
        ("0x10", ""),
    ],
)
def test_an_integer_that_is_not_exactly_one_is_quarantined_saying_why(value: str, why: str) -> None:
    _, rule = one_bad("customer_id", value)
    assert rule == f"customer_id: parse as int64 (got {value!r}{why})"


def test_the_int64_limits_hold_both_ways() -> None:
    schema = SOURCE.schema.update_column("customer_id", checks=[])
    source = replace(SOURCE, schema=schema)
    rows = [
        dict(GOOD, event_id="min", customer_id="-9223372036854775808"),
        dict(GOOD, event_id="max", customer_id="9223372036854775807"),
        dict(GOOD, event_id="zero", customer_id="-0"),
    ]
    result = validate_frame(frame(rows), source, DAY, Path("day.csv"))
    assert result.accepted["customer_id"].tolist() == [-(2**63), 2**63 - 1, 0]


# ---- floats ------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "Infinity", "1e999"])
def test_a_non_finite_number_is_a_bad_row(value: str) -> None:
    _, rule = one_bad("amount", value)
    assert rule == f"amount: parse as float64 (got {value!r}: not a finite number)"


@pytest.mark.parametrize(
    ("value", "expected"),
    [(" 1.5 ", 1.5), ("1e2", 100.0), (".5", 0.5), ("+2", 2.0), ("0.1", 0.1), ("7.", 7.0)],
)
def test_decimal_text_is_read_to_the_nearest_float(value: str, expected: float) -> None:
    accepted, rule = one_bad("amount", value)
    assert rule == ""
    assert accepted["amount"].iloc[2] == expected


@pytest.mark.parametrize("value", ["1,5", "1.2.3", "€5", "--1"])
def test_other_number_text_does_not_parse(value: str) -> None:
    _, rule = one_bad("amount", value)
    assert rule == f"amount: parse as float64 (got {value!r})"


# ---- timestamps --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("event_time", "2026-03-10T11:5"),
        ("event_time", "2026-03-10T11"),
        ("event_time", "2026-03-10T8:00"),
        ("event_time", "2026-03-10T11:05:0"),
        ("event_time", "2026-03-10T11:05:00+5"),
        ("event_time", "2026-03-10T"),
        ("signup_date", "2023-09"),
        ("signup_date", "2023-09-0"),
        ("signup_date", "2023"),
        ("signup_date", "20230901"),
    ],
)
def test_an_incomplete_timestamp_is_quarantined_not_read_as_another_instant(
    column: str, value: str
) -> None:
    _, rule = one_bad(column, value)
    assert rule.startswith(f"{column}: parse as datetime64[ns, UTC] (got {value!r}: incomplete")


@pytest.mark.parametrize(
    ("value", "instant"),
    [
        ("2026-03-10", "2026-03-10T00:00:00Z"),
        ("2026-03-10 11:05", "2026-03-10T11:05:00Z"),
        ("2026-03-10T11:05Z", "2026-03-10T11:05:00Z"),
        ("2026-03-10T11:05:07.25+01", "2026-03-10T10:05:07.25Z"),
        ("2026-03-10T11:05:07.5+0100", "2026-03-10T10:05:07.5Z"),
        ("2026-03-10T11:05:07-01:30", "2026-03-10T12:35:07Z"),
        (" 2026-03-10T11:05:07 ", "2026-03-10T11:05:07Z"),
    ],
)
def test_a_complete_timestamp_is_read(value: str, instant: str) -> None:
    accepted, rule = one_bad("event_time", value)
    assert rule == ""
    assert accepted["event_time"].iloc[2] == pd.Timestamp(instant)


def test_a_truncated_last_line_with_every_field_is_quarantined(tmp_path: Path) -> None:
    lines = [",".join(COLUMNS), ",".join(GOOD.values())]
    cut = ",".join(dict(GOOD, event_id="e2").values())[:-4]  # "2025-01-01" cut to "2025-0"
    path = tmp_path / "day.csv"
    path.write_text("\n".join([*lines, cut]))
    result = validate_file(path, SOURCE, DAY)
    assert (result.rows_accepted, result.rows_quarantined) == (1, 1)
    assert (
        result.quarantined["rule"]
        .iloc[0]
        .startswith("signup_date: parse as datetime64[ns, UTC] (got '2025-0': incomplete timestamp")
    )


def test_crm_times_must_be_complete_too(tmp_path: Path) -> None:
    good = {
        "customer_id": "7",
        "as_of": "2026-03-10T18:00:00",
        "plan": "standard",
        "monthly_fee": "49.0",
        "seats": "3",
        "region": "us",
        "signup_date": "2025-01-01",
        "plan_changed_at": "2025-06-01T12:00:00",
    }
    rows = [good, dict(good, customer_id="8", as_of="2026-03-10T18:0")]
    result = validate_frame(frame(rows, crm.columns), crm, DAY, Path("crm.csv"))
    assert result.accepted["customer_id"].tolist() == [7]
    assert (
        "as_of: parse as datetime64[ns, UTC] (got '2026-03-10T18:0': incomplete"
        in (result.quarantined["rule"].iloc[0])
    )


# ---- the demo's cross-column rule --------------------------------------------------------------
def test_a_signup_after_the_event_is_quarantined_as_a_whole_row() -> None:
    _, rule = one_bad("signup_date", "2030-01-01")
    assert rule == "(row): signup_date after the event"
    _, rule = one_bad("signup_date", "2026-03-10T08:00:01+00:00")  # a second after the event
    assert rule == "(row): signup_date after the event"
    accepted, rule = one_bad("signup_date", "2026-03-10T08:00:00+00:00")  # the same instant
    assert rule == "" and len(accepted) == 3


def test_the_generator_never_writes_a_signup_after_the_event(tmp_path: Path) -> None:
    from churn_demo.generate import generate

    paths = generate(tmp_path, date(2026, 1, 1), date(2026, 1, 20), customers=300, bad_share=0.05)
    for path in paths:
        source = SOURCE if path.parent.name == "events" else crm
        result = validate_file(path, source, date.fromisoformat(path.stem))
        assert not result.quarantined["rule"].str.contains("signup_date after").any(), path


# ---- files: byte-order mark, line ends, very long cells ----------------------------------------
def write_lines(path: Path, lines: list[str], *, bom: bool = False, end: str = "\n") -> Path:
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + (end.join(lines) + end).encode())
    return path


GOOD_LINES = (
    [",".join(COLUMNS)]
    + [",".join(dict(GOOD, event_id=f"g{i}", customer_id=str(i + 1)).values()) for i in range(5)]
    + [",".join(dict(GOOD, event_id="bad", plan="gold").values())]
)


@pytest.mark.parametrize("end", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_a_byte_order_mark_changes_nothing(tmp_path: Path, end: str) -> None:
    plain = validate_file(write_lines(tmp_path / "plain.csv", GOOD_LINES), SOURCE, DAY)
    marked = validate_file(
        write_lines(tmp_path / "bom.csv", GOOD_LINES, bom=True, end=end), SOURCE, DAY
    )
    assert (marked.rows_read, marked.rows_accepted, marked.rows_quarantined) == (6, 5, 1)
    pd.testing.assert_frame_equal(marked.accepted, plain.accepted)
    pd.testing.assert_frame_equal(marked.quarantined, plain.quarantined)


@pytest.mark.parametrize("cell", ["x" * 3_000_000, "é" * 1_500_000], ids=["ascii", "two-byte"])
def test_a_very_long_cell_is_read_and_judged_by_the_rules(tmp_path: Path, cell: str) -> None:
    long_row = ",".join(dict(GOOD, event_id="long", plan=cell).values())
    lines = [*GOOD_LINES[:3], long_row, *GOOD_LINES[3:6]]
    result = validate_file(write_lines(tmp_path / "day.csv", lines), SOURCE, DAY)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (6, 5, 1)
    (bad,) = result.quarantined.itertuples()
    assert bad.row_number == 4 and bad.rule.startswith("plan: isin(")
    assert json.loads(bad.raw_values)["plan"] == cell
    assert result.accepted["event_id"].tolist() == ["g0", "g1", "g2", "g3", "g4"]


def test_a_long_valid_id_is_accepted(tmp_path: Path) -> None:
    long_row = ",".join(dict(GOOD, event_id="é" * 2_000_000).values())
    result = validate_file(
        write_lines(tmp_path / "day.csv", [*GOOD_LINES[:2], long_row]), SOURCE, DAY
    )
    assert result.rows_accepted == 2 and len(result.accepted["event_id"].iloc[1]) == 2_000_000


def test_only_an_encoding_error_blames_the_encoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_lines(tmp_path / "day.csv", GOOD_LINES)
    latin = tmp_path / "latin.csv"
    latin.write_bytes(path.read_bytes().replace(b"standard", "standärd".encode("latin-1")))
    with pytest.raises(InputFileError, match=r"latin\.csv: cannot be read as UTF-8 CSV"):
        validate_file(latin, SOURCE, DAY)

    import fti.validation._files

    def broken(*args: object, **kwargs: object) -> None:
        raise pyarrow.ArrowInvalid("CSV parse error: something else")

    monkeypatch.setattr(fti.validation._files.pacsv, "read_csv", broken)
    with pytest.raises(InputFileError, match=r"day\.csv: cannot be read as CSV \(CSV parse") as e:
        validate_file(path, SOURCE, DAY)
    assert "UTF" not in str(e.value)


# ---- records: column-wise, the same text as one by one -----------------------------------------
odd_text = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.sampled_from(["'", '"', "\\", "a'b", 'a"b', "é", "\n", "\x00", "日本", "\U0001f600", "1e3"]),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.fixed_dictionaries({c: odd_text for c in COLUMNS}), max_size=12))
def test_records_hold_the_raw_values_and_rules_as_written_one_by_one(
    rows: list[dict[str, str | None]],
) -> None:
    raw = frame([dict(GOOD, event_id=f"g{i}") for i in range(2)] + rows)
    raw = raw.where(raw.notna() & (raw != ""), None)
    result = validate_frame(raw, SOURCE, DAY, Path("x.csv"))
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert list(result.quarantined.columns) == QUARANTINE_COLUMNS
    for record in result.quarantined.itertuples():
        values = raw.loc[record.row_number]
        expected = {k: (None if pd.isna(v) else v) for k, v in values.items()}
        assert record.raw_values == json.dumps(expected)
        for column in record.column.split(","):
            assert record.rule.startswith(f"{column}: ") or f"; {column}: " in record.rule
            if f"{column}: parse as" in record.rule:  # the value as repr writes it
                assert f"{column}: parse as " in record.rule
                assert f" (got {values[column]!r}" in record.rule


# ---- the quarantine share: stop once it is certainly exceeded ----------------------------------
def bad_file(tmp_path: Path, good: int, bad: int, **change: str) -> Path:
    rows = [dict(GOOD, event_id=f"g{i}") for i in range(good)]
    rows += [dict(GOOD, event_id=f"b{i}") | change for i in range(bad)]
    lines = [",".join(COLUMNS)] + [",".join(r.values()) for r in rows]
    return write_lines(tmp_path / "day.csv", lines)


@pytest.mark.parametrize(
    "change",
    [{"amount": "-5"}, {"event_time": "at noon"}, {"event_type": ""}, {"event_id": "g0"}],
    ids=["rule", "parse", "null", "duplicate"],
)
def test_over_the_share_validation_stops_with_a_sample(tmp_path: Path, change: dict) -> None:
    path = bad_file(tmp_path, 100, 2400, **change)
    full = validate_file(path, SOURCE, DAY)
    assert full.rows_quarantined == full.rows_bad == 2400 and not full.over_threshold

    result = validate_file(path, SOURCE, DAY, max_quarantine_share=0.2)
    assert result.over_threshold and result.rows_read == 2500
    assert 0.2 * 2500 < result.rows_bad <= 2400
    pd.testing.assert_frame_equal(result.accepted, empty_rows(SOURCE))
    assert len(result.quarantined) == QUARANTINE_SAMPLE
    pd.testing.assert_frame_equal(result.quarantined, full.quarantined.iloc[:QUARANTINE_SAMPLE])


def test_the_sample_counts_unsplittable_lines_by_their_number(tmp_path: Path) -> None:
    path = bad_file(tmp_path, 0, 1500, amount="-5")
    lines = path.read_text().splitlines()
    lines[5] = "too,few"  # line 6
    path.write_text("\n".join(lines) + "\n")
    result = validate_file(path, SOURCE, DAY, max_quarantine_share=0.5)
    assert result.over_threshold and result.rows_bad == 1500
    assert result.quarantined["row_number"].tolist() == list(range(2, 2 + QUARANTINE_SAMPLE))
    assert result.quarantined.set_index("row_number").loc[6, "column"] == "(row)"


@pytest.mark.parametrize(("bad", "over"), [(20, False), (21, True)])
def test_the_share_is_exceeded_only_above_it(tmp_path: Path, bad: int, over: bool) -> None:
    path = bad_file(tmp_path, 100 - bad, bad, plan="gold")
    full = validate_file(path, SOURCE, DAY)
    result = validate_file(path, SOURCE, DAY, max_quarantine_share=0.2)
    assert result.over_threshold is over and result.rows_bad == bad
    if not over:  # the whole answer, exactly as without a share
        assert result.rows_read == result.rows_accepted + result.rows_quarantined
        pd.testing.assert_frame_equal(result.accepted, full.accepted)
        pd.testing.assert_frame_equal(result.quarantined, full.quarantined)


@pytest.mark.parametrize(
    ("bad", "min_rows", "over"),
    [(11, 10, True), (10, 10, False), (2400, 2400, False), (2400, 2399, True), (1, 0, True)],
)
def test_the_count_is_exceeded_only_above_it(
    tmp_path: Path, bad: int, min_rows: int, over: bool
) -> None:
    """Every file here is mostly bad (far above the share): the count alone decides."""
    path = bad_file(tmp_path, bad // 10, bad, plan="gold")
    full = validate_file(path, SOURCE, DAY)
    result = validate_file(path, SOURCE, DAY, 0.2, quarantine_min_rows=min_rows)
    assert result.over_threshold is over
    if over:  # stopped at the first pass that found more than min_rows bad rows: all of them
        assert result.rows_bad == bad and result.rows_accepted == 0
    else:  # the whole answer, exactly as without a share
        assert result.rows_read == result.rows_accepted + result.rows_quarantined
        pd.testing.assert_frame_equal(result.accepted, full.accepted)
        pd.testing.assert_frame_equal(result.quarantined, full.quarantined)


def test_the_early_stop_waits_for_the_count(tmp_path: Path) -> None:
    """Parse failures alone are within the count, the rule failures after them are not: the
    stop comes at the later pass, not at the first one over the share."""
    rows = [dict(GOOD, event_id=f"p{i}", amount="x") for i in range(5)]  # pass 1: parse
    rows += [dict(GOOD, event_id=f"r{i}", plan="gold") for i in range(5)]  # pass 2: schema
    raw = frame(rows)

    def check(min_rows: int) -> ValidationResult:
        return validate_frame(raw, SOURCE, DAY, Path("x.csv"), (), 0.2, min_rows)

    assert check(4).over_threshold and check(4).rows_bad == 5  # stopped after pass 1
    assert check(5).over_threshold and check(5).rows_bad == 10  # not before pass 2
    full = check(10)
    assert not full.over_threshold and full.rows_quarantined == 10


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kinds=st.lists(
        st.sampled_from(["good", "amount", "time", "null", "twice", "unsplit"]), max_size=40
    ),
    share=st.floats(0.0, 1.0),
    min_rows=st.integers(0, 15),
)
def test_with_a_share_the_answer_is_complete_or_over_it(
    kinds: list[str], share: float, min_rows: int
) -> None:
    """Stopping early decides as the full validation would: more than the share and more than
    ``min_rows`` bad rows; otherwise the answer is the full one."""
    change = {
        "good": {},
        "amount": {"amount": "-1"},
        "time": {"event_time": "2026-03-10T8"},
        "null": {"plan": None},
        "twice": {"event_id": "g0"},
    }
    rows = [dict(GOOD, event_id=f"g{i}") | change.get(k, {}) for i, k in enumerate(kinds)]
    raw = frame(rows)
    unsplit = [i + 2 for i, k in enumerate(kinds) if k == "unsplit"]  # lines
    raw = raw.drop(index=unsplit)
    malformed = [(line, "2 field(s) where the header has 7", "a,b") for line in unsplit]
    full = validate_frame(raw, SOURCE, DAY, Path("x.csv"), malformed)
    assert full.rows_read == len(kinds) == full.rows_accepted + full.rows_quarantined
    assert not full.over_threshold and full.rows_bad == full.rows_quarantined
    expected = full.rows_bad > min_rows and full.rows_bad / full.rows_read > share
    assert is_over_threshold(full.rows_bad, full.rows_read, share, min_rows) is expected
    result = validate_frame(raw, SOURCE, DAY, Path("x.csv"), malformed, share, min_rows)
    assert result.over_threshold is expected
    if result.over_threshold:
        assert result.rows_bad / result.rows_read > share and result.rows_bad > min_rows
        assert result.rows_bad <= full.rows_bad and result.rows_accepted == 0
        numbers = result.quarantined["row_number"]
        assert len(numbers) == min(QUARANTINE_SAMPLE, result.rows_bad)
        assert numbers.is_monotonic_increasing
        assert set(numbers) <= set(full.quarantined["row_number"])
    else:
        assert result.rows_read == result.rows_accepted + result.rows_quarantined
        pd.testing.assert_frame_equal(result.accepted, full.accepted)
        pd.testing.assert_frame_equal(result.quarantined, full.quarantined)


def test_records_come_by_row_number_whatever_the_order_of_the_rows() -> None:
    """Re-admitted rows arrive in the order of the export, each at its own line."""
    rows = [dict(GOOD, event_id="a", plan="gold"), dict(GOOD, event_id="b"), dict(GOOD, amount="x")]
    raw = frame(rows)
    raw.index = pd.Index([9, 4, 6], name="line")
    result = validate_frame(raw, SOURCE, DAY, Path("day.csv"))
    assert result.quarantined["row_number"].tolist() == [6, 9]
    assert result.quarantined["rule"].tolist() == [
        "amount: parse as float64 (got 'x')",
        "plan: isin(['basic', 'standard', 'premium']) (got 'gold')",
    ]
    assert result.accepted["event_id"].tolist() == ["b"]
