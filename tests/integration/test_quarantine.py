"""Quarantined rows: a table and a Parquet copy in the store, exported, fixed and re-admitted."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from sqlalchemy import select
from typer.testing import CliRunner

from churn_demo.generate import EVENT_COLUMNS
from fti import pipelines
from fti.cli import app
from fti.db.engine import session_scope
from fti.db.tables import QuarantinedRow, ValidationRun
from fti.features.events import load_events, quarantine_file, raw_file
from fti.project import load_project
from tests.unit.test_validation import DAY, GOOD

runner = CliRunner()


def test_fixed_rows_are_readmitted_and_still_bad_ones_stay(
    settings, monkeypatch, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    source = load_project(settings.project).source
    path = raw_file(settings.raw_path, source.name, DAY)
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
    pipelines.validate_raw_events(DAY, DAY, "r", settings)

    copy = pq.read_table(quarantine_file(pipelines.quarantine_root(settings), source.name, DAY))
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
    copy = pq.read_table(quarantine_file(pipelines.quarantine_root(settings), source.name, DAY))
    assert copy.column("row_number").to_pylist() == [15, 16]
    again = runner.invoke(app, ["quarantine", "readmit", str(exported)])
    assert again.exit_code == 1 and "already re-admitted" in again.output
