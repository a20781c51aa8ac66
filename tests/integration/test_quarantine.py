"""Quarantined rows: a table and a Parquet copy in the store, exported, fixed and re-admitted."""

from __future__ import annotations

import csv
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from churn_demo.project import crm
from fti.cli import app
from fti.db.engine import session_scope
from fti.db.tables import QuarantinedRow, ValidationRun
from fti.definitions import Source, load_project
from fti.features.events import (
    load_events,
    quarantine_file,
    raw_file,
    staged_file,
    validate_and_stage,
)
from fti.features.quarantine import export_rows, readmit
from fti.pipelines.features import quarantine_root, validate_raw_events
from fti.validation import ValidationResult, empty_rows
from tests.unit.test_validation import CRM, CRM_GOOD, DAY, EVENT_COLUMNS, GOOD

runner = CliRunner()


def test_fixed_rows_are_readmitted_and_still_bad_ones_stay(
    settings, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = load_project(settings.project).source("events")
    path = raw_file(settings.raw_path, source, DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [
        *(dict(GOOD, event_id=f"g{i}") for i in range(1, 13)),  # lines 2..13
        dict(GOOD, event_id="fixable", amount="-19.90"),
        dict(GOOD, event_id="hopeless", plan="platinum"),
        dict(GOOD, event_id="g1", amount="1.00"),  # a duplicate of an accepted id
    ]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    validate_raw_events(DAY, DAY, "r", settings, sources=["events"])

    copy = pq.read_table(quarantine_file(quarantine_root(settings), source.name, DAY))
    assert copy.schema == pa.schema(
        [
            ("id", pa.int64()),
            ("file", pa.string()),
            ("row_number", pa.int64()),
            ("column", pa.string()),
            ("rule", pa.string()),
            ("raw_values", pa.string()),
        ]
    )
    assert copy.column("row_number").to_pylist() == [14, 15, 16]
    assert json.loads(copy.column("raw_values")[0].as_py())["amount"] == "-19.90"

    for key, value in {"FTI_HOME": settings.home, "FTI_DB_URL": settings.db_url}.items():
        monkeypatch.setenv(key, str(value))
    exported = tmp_path / "fix.csv"
    assert (
        runner.invoke(
            app, ["quarantine", "export", "--date", str(DAY), "--out", str(exported)]
        ).exit_code
        == 0
    )
    fix = pd.read_csv(exported, dtype=str, keep_default_na=False)
    assert fix["line"].tolist() == ["14", "15", "16"]
    fix.loc[fix["event_id"] == "fixable", "amount"] = "19.90"  # the fix
    fix.to_csv(exported, index=False)

    done = runner.invoke(app, ["quarantine", "readmit", str(exported), "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.output)
    assert result["readmitted"] == 1
    assert [(r["line"], r["rule"].split(":")[0]) for r in result["still_quarantined"]] == [
        (15, "plan"),
        (16, "event_id"),
    ]
    assert "already accepted" in result["still_quarantined"][1]["rule"]

    with session_scope(settings.db_url) as session:
        run = session.scalar(select(ValidationRun))
        assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (15, 13, 2)
        assert sorted(q.row_number for q in session.scalars(select(QuarantinedRow))) == [15, 16]
    events = load_events(settings.staging_path, source, DAY, DAY)
    assert len(events) == 13 and "fixable" in set(events["event_id"])
    assert events.loc[events["event_id"] == "fixable", "amount"].item() == 19.9
    copy = pq.read_table(quarantine_file(quarantine_root(settings), source.name, DAY))
    assert copy.column("row_number").to_pylist() == [15, 16]
    again = runner.invoke(app, ["quarantine", "readmit", str(exported)])
    assert again.exit_code == 1 and "already re-admitted" in again.output


def test_a_day_without_quarantined_rows_has_no_copy(settings) -> None:  # type: ignore[no-untyped-def]
    """A clean day writes no Parquet copy; a rerun that leaves none removes the earlier one."""
    source = load_project(settings.project).source("events")
    path = raw_file(settings.raw_path, source, DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    copy = quarantine_file(quarantine_root(settings), source.name, DAY)
    good = [dict(GOOD, event_id=f"g{i}") for i in range(1, 13)]
    bad = [*good, dict(GOOD, event_id="b", plan="platinum")]
    for rows, copied in ((good, 0), (bad, 1), (good, 0)):
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=EVENT_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        validate_raw_events(DAY, DAY, "r", settings, sources=["events"])
        assert copy.exists() == bool(copied)
        assert not copied or pq.read_table(copy).num_rows == copied


def stage(settings, source: Source) -> ValidationResult:  # type: ignore[no-untyped-def]
    with session_scope(settings.db_url) as session:
        return validate_and_stage(
            session,
            source,
            settings.raw_path,
            settings.staging_path,
            DAY,
            "r",
            0.5,
            quarantine_root(settings),
            quarantine_min_rows=settings.quarantine_min_rows,
        )


@pytest.mark.parametrize("file_format", ["csv", "parquet"])
def test_a_source_without_an_id_readmits_rows_equal_to_accepted_ones(
    settings, file_format: str
) -> None:  # type: ignore[no-untyped-def]
    source = replace(crm, format=file_format)
    assert source.id_column is None
    rows = [
        dict(CRM_GOOD, as_of="2026-03-10T09:00:00"),
        dict(CRM_GOOD, as_of="2026-03-10T09:00:00"),  # the same row twice: no id says it is not
        dict(CRM_GOOD, as_of="2026-03-10T09:00:00", monthly_fee="-49.0"),
    ]
    path = raw_file(settings.raw_path, source, DAY)
    path.parent.mkdir(parents=True, exist_ok=True)
    if file_format == "csv":
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=CRM)
            writer.writeheader()
            writer.writerows(rows)
    else:
        pq.write_table(pa.table({c: [r[c] for r in rows] for c in CRM}), path)
    result = stage(settings, source)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (3, 2, 1)

    with session_scope(settings.db_url, write=True) as session:
        fix = export_rows(session, source, DAY)
        assert fix["line"].tolist() == [4 if file_format == "csv" else 3]
        fix["monthly_fee"] = "49.0"
        done = readmit(session, source, fix, settings.staging_path, quarantine_root(settings))
    assert done == {"readmitted": 1, "still_quarantined": []}
    staged = load_events(settings.staging_path, source, DAY, DAY)
    assert len(staged) == 3 and staged["as_of"].nunique() == 1
    assert staged["as_of"].iloc[0] == pd.Timestamp("2026-03-10T13:00:00Z")  # 09:00 EDT
    with session_scope(settings.db_url) as session:
        run = session.scalar(select(ValidationRun))
        assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (3, 3, 0)


def test_a_day_without_a_file_is_an_empty_day_when_the_source_says_so(
    settings,
) -> None:  # type: ignore[no-untyped-def]
    source = replace(crm, missing_day="empty")
    expected = raw_file(settings.raw_path, source, DAY)
    assert not expected.exists()
    result = stage(settings, source)
    assert (result.rows_read, result.rows_accepted, result.rows_quarantined) == (0, 0, 0)
    with session_scope(settings.db_url) as session:
        run = session.scalar(select(ValidationRun))
        assert (run.source, run.file, run.logical_date) == ("crm", str(expected), DAY)
        assert (run.rows_read, run.rows_accepted, run.rows_quarantined) == (0, 0, 0)
        assert session.scalar(select(QuarantinedRow)) is None
    assert staged_file(settings.staging_path, source, DAY).exists()
    staged = load_events(settings.staging_path, source, DAY, DAY)
    assert staged.empty
    assert staged.dtypes.equals(empty_rows(source).dtypes)
    assert staged["as_of"].dt.tz_convert(source.timezone).dt.date.empty  # typed: .dt works
