"""Validation accounting that tells the truth across days, reruns and rejected files.

An id accepted on one day is a duplicate on any other; a rejected file is recorded as such
and its day unstaged; a re-admitted row survives reruns and reaches the next version; a
quarantine id is never handed out twice; migration 0008 keeps what 0007 held.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
from alembic import command
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from churn_demo.project import events as EVENTS
from fti.cli import app
from fti.db.engine import get_engine, session_scope
from fti.db.migrate import alembic_config, upgrade
from fti.db.tables import QuarantinedRow, Readmission, ValidationRun
from fti.definitions import Source
from fti.errors import InputFileError, QuarantineThresholdError
from fti.features.accepted_ids import day_hashes, id_hashes, id_texts
from fti.features.events import (
    load_events,
    quarantine_file,
    raw_file,
    staged_file,
    validate_and_stage,
)
from fti.features.quarantine import list_rows, show_row
from fti.pipelines.features import build_group, quarantine_root, run_features, validate_raw_events
from fti.pipelines.runs import setup
from fti.store.versions import FeatureStore
from fti.validation import QUARANTINE_SAMPLE
from tests.conftest import make_settings
from tests.unit.test_validation import CRM, CRM_GOOD, DAY, EVENT_COLUMNS, GOOD

runner = CliRunner()
NEXT = DAY + timedelta(days=1)
GROUP = "customer_activity"


def event(event_id: str, day: date = DAY, **values: str) -> dict[str, str]:
    return dict(GOOD, event_id=event_id, event_time=f"{day}T08:00:00+00:00") | values


def write_day(settings, day: date, rows: list[dict[str, str]], *extra_lines: str) -> Path:  # type: ignore[no-untyped-def]
    """The events file of ``day`` (and the lines of ``extra_lines`` after its rows)."""
    path = raw_file(settings.raw_path, EVENTS, day)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
        for line in extra_lines:
            handle.write(line + "\r\n")
    return path


def write_crm_day(settings, day: date) -> None:  # type: ignore[no-untyped-def]
    path = raw_file(settings.raw_path, setup(settings)[1].source("crm"), day)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CRM)
        writer.writeheader()
        writer.writerow(dict(CRM_GOOD, as_of=f"{day}T09:00:00"))


def accounting(settings, day: date, source: str = "events") -> ValidationRun:  # type: ignore[no-untyped-def]
    with session_scope(settings.db_url) as session:
        run = session.scalar(
            select(ValidationRun).where(
                ValidationRun.source == source, ValidationRun.logical_date == day
            )
        )
    assert run is not None
    return run


def quarantined(settings) -> list[tuple[int, str, int, str]]:  # type: ignore[no-untyped-def]
    """(id, file name, line, rule) of every quarantined row."""
    with session_scope(settings.db_url) as session:
        rows = session.scalars(select(QuarantinedRow).order_by(QuarantinedRow.id)).all()
    return [(q.id, Path(q.file).name, q.row_number, q.rule) for q in rows]


def held_ids(settings, source: Source = EVENTS) -> dict[str, date]:  # type: ignore[no-untyped-def]
    """{id: the day holding it} over the source's accepted days, each id once; each day's id
    hashes (what the cross-day check reads) are those of its staged ids."""
    with session_scope(settings.db_url) as session:
        days = session.scalars(
            select(ValidationRun.logical_date).where(
                ValidationRun.source == source.name, ValidationRun.status == "accepted"
            )
        ).all()
    held: dict[str, date] = {}
    for day in sorted(days):
        ids = id_texts(load_events(settings.staging_path, source, day, day)[source.id_column])
        assert (day_hashes(settings.staging_path, source, day) == sorted(id_hashes(ids))).all()
        assert not set(ids) & set(held), f"{day} holds ids another day holds"
        held |= dict.fromkeys(ids, day)
    return held


def staged_ids(settings, day: date, source: Source = EVENTS) -> list[str]:  # type: ignore[no-untyped-def]
    """The ids a day's staged events hold, sorted (staged rows are ordered by entity shard)."""
    column = source.id_column or "event_id"
    return sorted(str(i) for i in load_events(settings.staging_path, source, day, day)[column])


def lenient(settings):  # type: ignore[no-untyped-def]
    """These tiny files are mostly bad rows: allow it (the threshold has its own tests)."""
    return settings.model_copy(update={"max_quarantine_share": 0.9})


def use_cli(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for key, value in {"FTI_HOME": settings.home, "FTI_DB_URL": settings.db_url}.items():
        monkeypatch.setenv(key, str(value))


# ---- ids across days ---------------------------------------------------------------------------
def test_an_id_accepted_on_an_earlier_day_is_quarantined_as_its_duplicate(settings) -> None:  # type: ignore[no-untyped-def]
    settings = lenient(settings)
    write_day(settings, DAY, [event("a"), event("b")])
    write_day(settings, NEXT, [event("c", NEXT), event("a", NEXT), event("d", NEXT)])
    validate_raw_events(DAY, NEXT, "r1", settings, sources=["events"])

    def check() -> None:
        assert [(name, line, rule) for _, name, line, rule in quarantined(settings)] == [
            (f"{NEXT}.csv", 3, f"event_id: duplicate of {DAY}")
        ]
        assert staged_ids(settings, DAY) == ["a", "b"]
        assert staged_ids(settings, NEXT) == ["c", "d"]
        first, second = accounting(settings, DAY), accounting(settings, NEXT)
        assert (first.rows_read, first.rows_accepted, first.rows_quarantined) == (2, 2, 0)
        assert (second.rows_read, second.rows_accepted, second.rows_quarantined) == (3, 2, 1)
        assert held_ids(settings) == {"a": DAY, "b": DAY, "c": NEXT, "d": NEXT}

    check()
    for day in (NEXT, DAY, NEXT, DAY):  # a rerun of either day changes nothing
        validate_raw_events(day, day, f"rerun-{day}", settings, sources=["events"])
        check()


def stage_with(settings, source: Source, day: date) -> None:  # type: ignore[no-untyped-def]
    """Validate and stage one day of ``source`` (a variant of the project's source)."""
    with session_scope(settings.db_url, write=True) as session:
        validate_and_stage(
            session,
            source,
            settings.raw_path,
            settings.staging_path,
            day,
            "r",
            0.9,
            quarantine_root(settings),
            quarantine_min_rows=settings.quarantine_min_rows,
        )


def test_integer_ids_repeat_across_days_whichever_day_ran_first(settings) -> None:  # type: ignore[no-untyped-def]
    source = replace(EVENTS, id_column="customer_id")
    write_day(
        settings, NEXT, [event("x", NEXT, customer_id="7"), event("y", NEXT, customer_id="8")]
    )
    write_day(settings, DAY, [event("z", customer_id="9"), event("w", customer_id=" 8")])

    stage_with(settings, source, NEXT)
    # A backfill of the earlier day: its 8 is a duplicate of the later day.
    stage_with(settings, source, DAY)
    assert [(name, rule) for _, name, _, rule in quarantined(settings)] == [
        (f"{DAY}.csv", f"customer_id: duplicate of {NEXT}")
    ]
    assert staged_ids(settings, DAY, source) == ["9"]
    assert held_ids(settings, source) == {"7": NEXT, "8": NEXT, "9": DAY}


def test_colliding_id_hashes_and_lost_hash_files_change_no_verdict(settings, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Every id hashing alike (the worst collision) still quarantines only the real repeat,
    and a day whose id hashes are gone (a crash between its two files) still counts."""
    import numpy as np

    import fti.features.accepted_ids as accepted_ids

    monkeypatch.setattr(accepted_ids, "id_hashes", lambda texts: np.zeros(len(texts), np.uint64))
    write_day(settings, DAY, [event("a"), event("b")])
    write_day(settings, NEXT, [event("b", NEXT), event("c", NEXT)])
    stage_with(settings, EVENTS, DAY)
    (settings.staging_path / "validated" / "events" / f"{DAY}.ids.npy").unlink()
    stage_with(settings, EVENTS, NEXT)
    assert [(name, rule) for _, name, _, rule in quarantined(settings)] == [
        (f"{NEXT}.csv", f"event_id: duplicate of {DAY}")
    ]
    assert staged_ids(settings, NEXT) == ["c"]


def test_unique_within_days_compares_only_the_days_that_close(settings) -> None:  # type: ignore[no-untyped-def]
    source = replace(EVENTS, unique_within_days=1)
    later = DAY + timedelta(days=2)
    for day in (DAY, NEXT, later):
        write_day(settings, day, [event("a", day), event(f"only-{day}", day)])
        stage_with(settings, source, day)
    # NEXT repeats DAY's a (1 day apart); the day after NEXT holds a again, 2 days from DAY's
    # a but 1 from NEXT's quarantined one: accepted.
    assert [(name, rule) for _, name, _, rule in quarantined(settings)] == [
        (f"{NEXT}.csv", f"event_id: duplicate of {DAY}")
    ]
    assert staged_ids(settings, later) == ["a", f"only-{later}"]


# ---- rejected files ----------------------------------------------------------------------------
def published(settings, version: int) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    table = FeatureStore(settings.store_path).read(GROUP, version).to_pandas()
    return table.sort_values("customer_id", ignore_index=True)


def test_a_rejected_file_is_recorded_its_day_unstaged_and_the_version_kept(settings) -> None:  # type: ignore[no-untyped-def]
    settings = settings.model_copy(update={"max_quarantine_share": 0.005})
    good = [event(f"g{i}", customer_id=str(i)) for i in range(1, 301)]
    write_day(settings, DAY, [*good, event("bad", plan="platinum")])  # 1 of 301: below 0.5%
    write_crm_day(settings, DAY)
    first = run_features(DAY, DAY, "good", settings, groups=[GROUP])
    version = first["published"][GROUP]["version"]
    before = published(settings, version)
    assert accounting(settings, DAY).status == "accepted"
    old_ids = [q[0] for q in quarantined(settings)]
    assert len(old_ids) == 1

    # Too many bad rows: the rejection is what the table says, a sample of them is kept.
    write_day(settings, DAY, [event(f"b{i}", plan="platinum") for i in range(1, 1201)])
    with pytest.raises(QuarantineThresholdError) as raised:
        run_features(DAY, DAY, "bad", settings, groups=[GROUP])
    message = str(raised.value)
    assert " of 1200 rows (" in message
    assert "above FTI_MAX_QUARANTINE_SHARE=0.005 and" in message  # as given, not "0%"
    assert "more than FTI_QUARANTINE_MIN_ROWS=10;" in message  # the default
    run = accounting(settings, DAY)
    assert (run.status, run.reason, run.run_id) == ("rejected", message, "bad")
    assert (run.rows_read, run.rows_accepted) == (1200, 0)
    rows = quarantined(settings)
    assert 0 < len(rows) <= QUARANTINE_SAMPLE <= run.rows_quarantined
    assert not set(old_ids) & {q[0] for q in rows}  # the previous run's rows are gone
    assert all(rule.startswith("plan: ") and "platinum" in rule for *_, rule in rows)
    copy = pq.read_table(quarantine_file(quarantine_root(settings), "events", DAY))
    assert copy.num_rows == len(rows)
    assert not staged_file(settings.staging_path, EVENTS, DAY).exists()
    assert held_ids(settings) == {}
    with session_scope(settings.db_url) as session:
        listed = list_rows(session, 5)
        assert {r["file_status"] for r in listed} == {"rejected"}
        shown = show_row(session, listed[0]["id"])
        assert (shown["file_status"], shown["file_reason"]) == ("rejected", message)

    # A file that cannot be read: rejected, no count, no quarantined rows.
    path = raw_file(settings.raw_path, EVENTS, DAY)
    path.write_text("event_id;customer_id\n1;2\n")
    with pytest.raises(InputFileError, match="missing required column"):
        validate_raw_events(DAY, DAY, "unreadable", settings, sources=["events"])
    run = accounting(settings, DAY)
    assert (run.status, run.rows_read, run.rows_accepted, run.rows_quarantined) == (
        "rejected",
        None,
        0,
        0,
    )
    assert "missing required column" in run.reason and run.run_id == "unreadable"
    assert quarantined(settings) == []
    with pytest.raises(InputFileError):  # the build validates the unstaged day, and fails too
        build_group(GROUP, DAY, DAY, "build", settings)

    assert FeatureStore(settings.store_path).versions(GROUP) == [version]
    pd.testing.assert_frame_equal(published(settings, version), before)

    # Fixed: the next run validates the day again and accepts it.
    write_day(settings, DAY, [*good, event("bad", plan="platinum")])
    again = run_features(DAY, DAY, "fixed", settings, groups=[GROUP])
    assert again["published"][GROUP]["version"] == version  # the same rows: nothing new
    run = accounting(settings, DAY)
    assert (run.status, run.reason, run.rows_read, run.rows_accepted) == (
        "accepted",
        None,
        301,
        300,
    )


def test_rows_of_a_rejected_file_cannot_be_readmitted(
    settings, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = settings.model_copy(update={"quarantine_min_rows": 0})  # 3 bad rows reject
    write_day(settings, DAY, [event(f"b{i}", plan="platinum") for i in range(1, 4)])
    with pytest.raises(
        QuarantineThresholdError,
        match=r"FTI_MAX_QUARANTINE_SHARE=0\.2 and more than FTI_QUARANTINE_MIN_ROWS=0;",
    ):
        validate_raw_events(DAY, DAY, "r", settings, sources=["events"])
    use_cli(settings, monkeypatch)
    exported = tmp_path / "fix.csv"
    assert (
        runner.invoke(
            app, ["quarantine", "export", "--date", str(DAY), "--out", str(exported)]
        ).exit_code
        == 0
    )
    fix = pd.read_csv(exported, dtype=str, keep_default_na=False)
    assert len(fix) == 3
    fix["plan"] = "basic"
    fix.to_csv(exported, index=False)
    done = runner.invoke(app, ["quarantine", "readmit", str(exported)])
    assert done.exit_code == 1
    assert "was rejected" in done.output and "fix the file and rerun" in done.output
    assert len(quarantined(settings)) == 3 and held_ids(settings) == {}


# ---- re-admissions survive reruns --------------------------------------------------------------
def test_a_readmitted_row_survives_the_rerun_and_reaches_the_next_version(
    settings, monkeypatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    good = [event(f"g{i}") for i in range(1, 11)]  # customer 7, lines 2..11
    fixable = event("fixable", customer_id="8", amount="-19.90")  # line 12
    unsplit = "broken,9,2026-03-10T09:00:00+00:00"  # line 13: too few fields
    write_day(settings, DAY, [*good, fixable], unsplit)
    write_crm_day(settings, DAY)
    first = run_features(DAY, DAY, "first", settings, groups=[GROUP])
    assert set(published(settings, first["published"][GROUP]["version"])["customer_id"]) == {7}

    use_cli(settings, monkeypatch)
    exported = tmp_path / "fix.csv"
    assert (
        runner.invoke(
            app, ["quarantine", "export", "--date", str(DAY), "--out", str(exported)]
        ).exit_code
        == 0
    )
    fix = pd.read_csv(exported, dtype=str, keep_default_na=False)
    assert fix["line"].tolist() == ["12", "13"]
    fix.loc[fix["line"] == "12", "amount"] = "19.90"
    broken = event("broken", customer_id="9", amount="5.00")
    fix.loc[fix["line"] == "13", EVENT_COLUMNS] = [broken[c] for c in EVENT_COLUMNS]
    fix.to_csv(exported, index=False)
    done = runner.invoke(app, ["quarantine", "readmit", str(exported), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["readmitted"] == 2

    # The README's next step: rerun the feature pipeline for that date.
    rerun = run_features(DAY, DAY, "rerun", settings, groups=[GROUP])
    assert rerun["rows_accepted"] == rerun["rows_read"] == 12 + 1  # events and crm
    assert staged_ids(settings, DAY) == sorted(
        [*(f"g{i}" for i in range(1, 11)), "fixable", "broken"]
    )
    staged = load_events(settings.staging_path, EVENTS, DAY, DAY).set_index("event_id")
    assert staged.loc["fixable", "amount"] == 19.9 and staged.loc["broken", "customer_id"] == 9
    assert quarantined(settings) == []
    run = accounting(settings, DAY)
    assert (run.rows_read, run.rows_accepted, run.rows_quarantined, run.rows_readmitted) == (
        12,
        12,
        0,
        2,
    )
    version = rerun["published"][GROUP]["version"]
    assert version == first["published"][GROUP]["version"] + 1
    rows = published(settings, version).set_index("customer_id")
    assert set(rows.index) == {7, 8, 9}
    assert rows.loc[8, "spend_30d"] == 19.9 and rows.loc[9, "spend_30d"] == 5.0
    assert (
        run_features(DAY, DAY, "again", settings, groups=[GROUP])["published"][GROUP]["version"]
        == version
    )  # and again: the same rows, no new version

    # The raw file is corrected upstream: line 12 changed, so its re-admission no longer
    # applies, and the log and the re-admission's status say so.
    write_day(settings, DAY, [*good, event("fixable", customer_id="8", amount="29.90")], unsplit)
    with caplog.at_level(logging.WARNING, logger="fti.features.events"):
        validate_raw_events(DAY, DAY, "corrected", settings, sources=["events"])
    assert "line 12 is no longer the row re-admitted" in caplog.text
    run = accounting(settings, DAY)
    assert (run.rows_read, run.rows_accepted, run.rows_readmitted) == (12, 12, 1)
    staged = load_events(settings.staging_path, EVENTS, DAY, DAY).set_index("event_id")
    assert staged.loc["fixable", "amount"] == 29.9
    with session_scope(settings.db_url) as session:
        statuses = {r.row_number: r.status for r in session.scalars(select(Readmission))}
    assert statuses == {12: "stale", 13: "applied"}


def test_a_readmitted_id_another_day_holds_stays_quarantined(settings) -> None:  # type: ignore[no-untyped-def]
    settings = lenient(settings)
    write_day(settings, DAY, [event("a"), event("b")])
    write_day(settings, NEXT, [event("c", NEXT), event("x", NEXT, plan="platinum")])
    validate_raw_events(DAY, NEXT, "r", settings, sources=["events"])
    from fti.features.quarantine import export_rows, readmit

    with session_scope(settings.db_url, write=True) as session:
        fix = export_rows(session, EVENTS, NEXT)
        fix["plan"], fix["event_id"] = "basic", "a"  # fixed, but its id is DAY's
        done = readmit(session, EVENTS, fix, settings.staging_path, quarantine_root(settings))
    assert done["readmitted"] == 0
    assert [r["rule"] for r in done["still_quarantined"]] == [f"event_id: duplicate of {DAY}"]
    assert staged_ids(settings, NEXT) == ["c"]


# ---- quarantine ids are never reused -----------------------------------------------------------
def test_quarantine_ids_are_never_reused_and_an_old_export_is_refused(
    settings, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    settings = lenient(settings)
    path = write_day(settings, DAY, [event("a"), event("b", amount="-1"), event("c", plan="gold")])
    validate_raw_events(DAY, DAY, "r1", settings, sources=["events"])
    use_cli(settings, monkeypatch)
    old = tmp_path / "old.csv"
    assert (
        runner.invoke(
            app, ["quarantine", "export", "--date", str(DAY), "--out", str(old)]
        ).exit_code
        == 0
    )
    first = [q[0] for q in quarantined(settings)]

    for attempt in range(2):  # validated again: new rows, new ids
        validate_raw_events(DAY, DAY, f"again{attempt}", settings, sources=["events"])
        ids = [q[0] for q in quarantined(settings)]
        assert len(ids) == 2 and min(ids) > max(first)
        first = first + ids

    fix = pd.read_csv(old, dtype=str, keep_default_na=False)
    fix["amount"], fix["plan"] = "1.00", "basic"
    fix.to_csv(old, index=False)
    done = runner.invoke(app, ["quarantine", "readmit", str(old)])
    assert done.exit_code == 1
    stale = sorted(int(i) for i in fix["quarantine_id"])
    assert (
        f"quarantine id(s) {stale} are from an older validation of {path}: run fti quarantine "
        "export again" in done.output
    )
    assert len(quarantined(settings)) == 2  # nothing re-admitted
    assert staged_ids(settings, DAY) == ["a"]

    new = tmp_path / "new.csv"
    assert (
        runner.invoke(
            app, ["quarantine", "export", "--date", str(DAY), "--out", str(new)]
        ).exit_code
        == 0
    )
    fix = pd.read_csv(new, dtype=str, keep_default_na=False)
    fix["amount"], fix["plan"] = "1.00", "basic"
    fix.to_csv(new, index=False)
    assert runner.invoke(app, ["quarantine", "readmit", str(new)]).exit_code == 0
    assert staged_ids(settings, DAY) == ["a", "b", "c"]


def test_sqlite_hands_out_a_deleted_id_never_again(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fti.db'}"
    upgrade(url)
    with get_engine(url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO validation_runs (source, file, logical_date, rows_read,"
                " rows_accepted, rows_quarantined, run_id, created_at) VALUES"
                " ('events', 'f.csv', '2026-03-10', 1, 0, 1, 'r', '2026-03-10 00:00:00')"
            )
        )
        insert = text(
            'INSERT INTO quarantined_rows (validation_run_id, file, row_number, "column",'
            " rule, raw_values) VALUES (1, 'f.csv', 2, 'c', 'r', '{}') RETURNING id"
        )
        first = connection.execute(insert).scalar_one()
        connection.execute(text("DELETE FROM quarantined_rows"))
        assert connection.execute(insert).scalar_one() == first + 1


# ---- migration 0008 ----------------------------------------------------------------------------
@pytest.fixture(params=["sqlite", "postgresql"])
def db_at_0007(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'fti.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    upgrade(url, "0007")
    return url


def fill_as_0007_did(url: str, file: str) -> None:
    """One file's accounting and two quarantined rows; the second (largest id) is re-admitted."""
    with get_engine(url).begin() as connection:
        connection.execute(
            text(
                "INSERT INTO validation_runs (source, file, logical_date, rows_read,"
                " rows_accepted, rows_quarantined, run_id, created_at) VALUES"
                " ('events', :f, :d, 4, 2, 2, 'r0007', '2026-03-10 00:00:00')"
            ),
            {"f": file, "d": DAY},
        )
        run = connection.execute(text("SELECT id FROM validation_runs")).scalar_one()
        for line in (4, 5):
            connection.execute(
                text(
                    "INSERT INTO quarantined_rows (validation_run_id, file, row_number,"
                    " \"column\", rule, raw_values) VALUES (:run, :f, :line, 'amount',"
                    " 'amount: in_range', :values)"
                ),
                {"run": run, "f": file, "line": line, "values": json.dumps({"amount": "-1"})},
            )
        connection.execute(text("DELETE FROM quarantined_rows WHERE row_number = 5"))


def test_migration_0008_keeps_0007s_rows_and_downgrades(db_at_0007: str, tmp_path: Path) -> None:
    settings = lenient(make_settings(tmp_path / "home", db_at_0007))
    day_file = raw_file(settings.raw_path, EVENTS, DAY)
    fill_as_0007_did(db_at_0007, str(day_file))
    # The day's staged events, as 0007's fti staged them: their ids are history to respect.
    staged = staged_file(settings.staging_path, EVENTS, DAY)
    staged.parent.mkdir(parents=True)
    pd.DataFrame({"event_id": ["a", "b"]}).to_parquet(staged)
    upgrade(db_at_0007)

    run = accounting(settings, DAY)
    assert (run.status, run.reason, run.rows_readmitted) == ("accepted", None, 0)
    assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (4, 2, 2)
    kept = quarantined(settings)
    assert [(line, rule) for _, _, line, rule in kept] == [(4, "amount: in_range")]
    with get_engine(db_at_0007).begin() as connection:  # the id deleted before is not handed out
        added = connection.execute(
            text(
                'INSERT INTO quarantined_rows (validation_run_id, file, row_number, "column",'
                " rule, raw_values) VALUES (:run, 'f', 9, 'c', 'r', '{}') RETURNING id"
            ),
            {"run": run.id},
        ).scalar_one()
        connection.execute(text("DELETE FROM quarantined_rows WHERE id = :id"), {"id": added})
    assert added > kept[0][0]

    # The next day repeats an id 0007 staged: found, from the staged events (their id hashes
    # are made from them on first use).
    write_day(settings, NEXT, [event("a", NEXT), event("c", NEXT)])
    validate_raw_events(NEXT, NEXT, "r0008", settings, sources=["events"])
    assert accounting(settings, NEXT).rows_quarantined == 1
    assert staged_ids(settings, NEXT) == ["c"]
    assert held_ids(settings) == {"a": DAY, "b": DAY, "c": NEXT}

    # A rejected file: 0007 cannot say so, so downgrading forgets its record.
    write_day(settings, NEXT, [event("x", NEXT, plan="gold")])
    strict = settings.model_copy(update={"quarantine_min_rows": 0})  # one bad row rejects
    with pytest.raises(QuarantineThresholdError, match="1 of 1 rows"):
        validate_raw_events(NEXT, NEXT, "r0008", strict, sources=["events"])
    command.downgrade(alembic_config(db_at_0007), "0007")
    with get_engine(db_at_0007).connect() as connection:
        runs = connection.execute(text("SELECT logical_date, rows_read FROM validation_runs")).all()
        assert [(str(d)[:10], n) for d, n in runs] == [(str(DAY), 4)]
        lines = connection.execute(text("SELECT id, row_number FROM quarantined_rows")).all()
        assert [tuple(r) for r in lines] == [(kept[0][0], 4)]
    upgrade(db_at_0007)
    with session_scope(db_at_0007) as session:
        assert session.scalar(select(func.count()).select_from(QuarantinedRow)) == 1


def test_a_very_long_cell_and_a_very_long_id_fit_the_database(settings) -> None:  # type: ignore[no-untyped-def]
    """A multi-megabyte raw value is quarantined (its rule quotes the start of it) and a long,
    valid id is accepted and remembered, on PostgreSQL too, whose varchar and btree limits
    SQLite does not have."""
    import random
    import string

    noise = random.Random(7)
    long_id = "".join(noise.choices(string.ascii_letters + string.digits, k=20_000))
    write_day(
        settings,
        DAY,
        [event("e1", event_type="x" * 3_000_000), event(long_id)]
        + [event(f"e{i}") for i in range(2, 10)],
    )
    validate_raw_events(DAY, DAY, "long", settings, ["events"])
    run = accounting(settings, DAY)
    assert (run.status, run.rows_read, run.rows_accepted, run.rows_quarantined) == (
        "accepted",
        10,
        9,
        1,
    )
    with session_scope(settings.db_url) as session:
        (rule,) = session.scalars(select(QuarantinedRow.rule)).all()
    assert rule.startswith("event_type: ") and "(got 'xxxx" in rule and len(rule) <= 500, rule
    assert len(held_ids(settings)) == 9
    write_day(settings, NEXT, [event(long_id, NEXT)] + [event(f"n{i}", NEXT) for i in range(9)])
    validate_raw_events(NEXT, NEXT, "long", settings, ["events"])
    assert accounting(settings, NEXT).rows_quarantined == 1  # the long id is a duplicate


def test_quarantine_ids_of_another_source_are_not_readmitted_into_this_one(
    settings, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """An export of `events` handed back with `--source crm` names no crm row: refused, and
    nothing is staged or remembered under crm."""
    write_day(settings, DAY, [event(f"g{i}") for i in range(1, 10)] + [event("x", plan="gold")])
    validate_raw_events(DAY, DAY, "r", settings, sources=["events"])
    use_cli(settings, monkeypatch)
    exported = tmp_path / "fix.csv"
    export = ["quarantine", "export", "--date", str(DAY), "--out", str(exported)]
    assert runner.invoke(app, export).exit_code == 0
    crm = setup(settings)[1].source("crm")
    fix = pd.read_csv(exported, dtype=str, keep_default_na=False).assign(plan="basic")
    fix = fix.assign(**{c: CRM_GOOD[c] for c in crm.columns if c not in fix.columns})
    fix.to_csv(exported, index=False)
    done = runner.invoke(app, ["quarantine", "readmit", str(exported), "--source", "crm"])
    assert done.exit_code == 1, done.output
    assert f"[{fix['quarantine_id'][0]}]" in done.output, done.output
    assert len(quarantined(settings)) == 1
    assert not staged_file(settings.staging_path, crm, DAY).exists()
