"""The quarantine gate on small files: a file is rejected only when its bad rows are more than
FTI_MAX_QUARANTINE_SHARE of the rows read *and* more than FTI_QUARANTINE_MIN_ROWS (issue 16).

Run the way the feature pipeline runs a day (``validate_raw_events``), on SQLite and
PostgreSQL; the decision's arithmetic and the early stop have property tests in
tests/unit/test_validation_values.py.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churn_demo.project import events as EVENTS
from fti.cli import app
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
    use_cli,
    write_day,
)

runner = CliRunner()


def run_day(settings, day=DAY):  # type: ignore[no-untyped-def]
    return validate_raw_events(day, day, f"r-{day}", settings, sources=["events"])


def test_one_bad_row_of_a_one_row_file_is_quarantined_and_the_day_accepted(
    settings, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    assert settings.quarantine_min_rows == 10  # the default decides here
    write_day(settings, DAY, [event("only", plan="platinum")])  # 1 of 1 rows bad: 100%

    totals = run_day(settings)

    assert (totals["rows_read"], totals["rows_accepted"], totals["rows_quarantined"]) == (1, 0, 1)
    run = accounting(settings, DAY)
    assert (run.status, run.reason) == ("accepted", None)
    assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (1, 0, 1)
    [(_, name, line, rule)] = quarantined(settings)
    assert (name, line) == (f"{DAY}.csv", 2) and rule.startswith("plan: ") and "platinum" in rule
    staged = staged_file(settings.staging_path, EVENTS, DAY)
    assert staged.exists() and len(pd.read_parquet(staged)) == 0  # a day of no good rows

    # The row is fixed by hand as any quarantined row is (the file was accepted, so it may be).
    use_cli(settings, monkeypatch)
    exported = tmp_path / "fix.csv"
    export = ["quarantine", "export", "--date", str(DAY), "--out", str(exported)]
    assert runner.invoke(app, export).exit_code == 0
    fix = pd.read_csv(exported, dtype=str, keep_default_na=False)
    fix["plan"] = "basic"
    fix.to_csv(exported, index=False)
    done = runner.invoke(app, ["quarantine", "readmit", str(exported)])
    assert done.exit_code == 0, done.output
    run = accounting(settings, DAY)
    assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (1, 1, 0)
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
