"""The quarantine gate on small files: a file is rejected only when its bad rows are more than
FTI_MAX_QUARANTINE_SHARE of the rows read *and* more than FTI_QUARANTINE_MIN_ROWS (issue 16).

Run the way the feature pipeline runs a day (``validate_raw_events``), on SQLite and
PostgreSQL; the decision's arithmetic and the early stop have property tests in
tests/unit/test_validation_values.py.
"""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from churn_demo.project import events as EVENTS
from fti.errors import QuarantineThresholdError
from fti.features.events import staged_file
from fti.pipelines.features import validate_raw_events
from tests.integration.test_validation_accounting import (
    DAY,
    NEXT,
    accounting,
    event,
    held_ids,
    quarantined,
    staged_ids,
    write_day,
)

runner = CliRunner()


def run_day(settings, day=DAY):  # type: ignore[no-untyped-def]
    return validate_raw_events(day, day, f"r-{day}", settings, sources=["events"])


def test_a_file_none_of_whose_rows_is_accepted_is_rejected_whatever_the_count(
    settings, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """One bad row of a one-row file is under FTI_QUARANTINE_MIN_ROWS, yet a day with rows and
    no good one is a bad file, not an empty day (issue 26): rejected, saying which rule."""
    assert settings.quarantine_min_rows == 10
    path = write_day(settings, DAY, [event("only", plan="platinum")])  # 1 of 1 rows bad: 100%

    with pytest.raises(QuarantineThresholdError) as raised:
        run_day(settings)
    message = str(raised.value)
    assert message.startswith(f"{path}: none of its 1 rows was accepted (the first, line 2, ")
    assert "broke plan: " in message and "platinum" in message
    assert f"`fti quarantine export --source events --date {DAY}`" in message
    run = accounting(settings, DAY)
    assert (run.status, run.reason, run.rows_read, run.rows_accepted) == ("rejected", message, 1, 0)
    [(_, name, line, rule)] = quarantined(settings)
    assert (name, line) == (f"{DAY}.csv", 2) and rule.startswith("plan: ")
    assert not staged_file(settings.staging_path, EVENTS, DAY).exists()

    # The file is fixed and the day run again: accepted.
    write_day(settings, DAY, [event("only")])
    assert run_day(settings)["rows_accepted"] == 1
    assert staged_ids(settings, DAY) == ["only"] and held_ids(settings) == {"only": DAY}


@pytest.mark.parametrize(
    ("good", "bad", "min_rows", "rejected"),
    [
        (2, 10, 10, False),  # share exceeded (83%), count not: accepted
        (1, 11, 10, True),  # both exceeded: rejected
        (50, 11, 10, False),  # count exceeded, share not (18%): accepted
        (0, 1, 0, True),  # 0: the share alone decides, as before the count existed
        (4, 1, 0, False),  # 0, and the share not exceeded (20% is not above 20%)
    ],
    ids=["share-only", "both", "count-only", "zero-rejects", "zero-at-share"],
)
def test_a_file_is_rejected_only_above_the_share_and_the_count(
    settings, good: int, bad: int, min_rows: int, rejected: bool
) -> None:  # type: ignore[no-untyped-def]
    settings = settings.model_copy(update={"quarantine_min_rows": min_rows})
    assert settings.max_quarantine_share == 0.2
    rows = [event(f"g{i}") for i in range(good)] + [event(f"b{i}", amount="-1") for i in range(bad)]
    path = write_day(settings, DAY, rows)

    if rejected:
        with pytest.raises(QuarantineThresholdError) as raised:
            run_day(settings)
        message = str(raised.value)
        assert message.startswith(f"{path}: ") and f" of {good + bad} rows (" in message
        assert (
            f"broke a rule, above FTI_MAX_QUARANTINE_SHARE=0.2 and more than "
            f"FTI_QUARANTINE_MIN_ROWS={min_rows}; see `fti quarantine list`" in message
        )
        run = accounting(settings, DAY)
        assert (run.status, run.reason, run.rows_read, run.rows_accepted) == (
            "rejected",
            message,
            good + bad,
            0,
        )
        assert min_rows < run.rows_quarantined <= bad
        assert not staged_file(settings.staging_path, EVENTS, DAY).exists()
        assert held_ids(settings) == {}
        return
    run_day(settings)
    run = accounting(settings, DAY)
    assert (run.status, run.reason) == ("accepted", None)
    assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (good + bad, good, bad)
    assert staged_ids(settings, DAY) == sorted(f"g{i}" for i in range(good))
    assert sorted(line for _, _, line, _ in quarantined(settings)) == list(
        range(good + 2, good + bad + 2)
    )


@pytest.mark.parametrize(("min_rows", "rejected"), [(2, True), (3, False)])
def test_ids_of_earlier_days_count_toward_the_gate(settings, min_rows: int, rejected: bool) -> None:  # type: ignore[no-untyped-def]
    """The file itself is clean; its repeats of yesterday's ids are found after validation and
    are bad rows all the same: three of four rows, rejected only when 3 > min_rows."""
    settings = settings.model_copy(update={"quarantine_min_rows": min_rows})
    write_day(settings, DAY, [event("a"), event("b"), event("c")])
    run_day(settings)
    write_day(settings, NEXT, [event(i, NEXT) for i in ("a", "b", "c", "d")])

    if rejected:
        with pytest.raises(QuarantineThresholdError, match=r"\.csv: 3 of 4 rows \("):
            run_day(settings, NEXT)
        assert accounting(settings, NEXT).status == "rejected"
        assert held_ids(settings) == {"a": DAY, "b": DAY, "c": DAY}
        return
    run_day(settings, NEXT)
    run = accounting(settings, NEXT)
    assert (run.status, run.rows_read, run.rows_accepted, run.rows_quarantined) == (
        "accepted",
        4,
        1,
        3,
    )
    assert staged_ids(settings, NEXT) == ["d"]
    assert [rule for *_, rule in quarantined(settings)] == [f"event_id: duplicate of {DAY}"] * 3
