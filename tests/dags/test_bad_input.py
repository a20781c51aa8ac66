"""The bad-input corpus, run the two ways users run a day: `fti features run` and the feature
DAG (dag.test()).

Each case corrupts the events file of one day after a good day was published. A bad *row* is
quarantined with its rule while the day publishes (rows read = accepted + quarantined); a bad
*file* fails the day at once (no retry: the same input fails the same way), says why in one
line, is recorded as rejected, and leaves the published versions as they were.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import select

from tests.conftest import DEMO_START, PARAMS, demo_settings

GOOD = DEMO_START + timedelta(days=8)
BAD = GOOD + timedelta(days=1)
BIG_ID = 9007199254740993  # 2**53 + 1: a float cannot hold it


def events_file(raw: Path, day: date) -> Path:
    return raw / "events" / f"{day.isoformat()}.csv"


def _edit(raw: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    """Rewrite BAD's events file as text after ``change`` (every value stays text)."""
    path = events_file(raw, BAD)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False)


def _set(row: int, column: str, value: str) -> Callable[[Path], None]:
    def mutate(raw: Path) -> None:
        def change(frame: pd.DataFrame) -> pd.DataFrame:
            frame.loc[row, column] = value
            return frame

        _edit(raw, change)

    return mutate


def _big_id(raw: Path) -> None:
    """One customer id above 2**53 beside a row whose id makes the column look like floats."""

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        frame.loc[0, "customer_id"] = str(BIG_ID)
        frame.loc[1, "customer_id"] = "2.5"
        return frame

    _edit(raw, change)


def _repeat_yesterdays_id(raw: Path) -> None:
    yesterday = pd.read_csv(events_file(raw, GOOD), dtype=str, keep_default_na=False)
    _set(0, "event_id", yesterday.loc[0, "event_id"])(raw)


def _truncate_last_line(raw: Path) -> None:
    """The export stopped inside the last line's signup date (``2024-12-2``, no newline)."""
    path = events_file(raw, BAD)
    path.write_text(path.read_text().rstrip("\n")[:-1])


def _bom(line_end: str) -> Callable[[Path], None]:
    def mutate(raw: Path) -> None:
        path = events_file(raw, BAD)
        text = path.read_text()
        path.write_bytes(b"\xef\xbb\xbf" + text.replace("\n", line_end).encode())

    return mutate


def _long_cell(raw: Path) -> None:
    _set(3, "event_type", "x" * 3_000_000)(raw)


def _all_rows_bad(raw: Path) -> None:
    def change(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(amount="-1")

    _edit(raw, change)


def _one_bad_row_alone(raw: Path) -> None:
    """A day of a single row, and that row bad: 100% of the file, but one row."""
    _edit(raw, lambda frame: frame.head(1).assign(amount="-1"))


def _drop_column(raw: Path) -> None:
    _edit(raw, lambda frame: frame.drop(columns=["event_type"]))


@dataclass(frozen=True)
class Case:
    name: str
    mutate: Callable[[Path], None]
    rule: str | None = None  # a row quarantined with this rule; the day publishes
    rejected: str | None = None  # the day fails saying this; nothing published
    quarantined: int = 1


CASES = [
    Case("inf integer", _set(0, "customer_id", "inf"), rule="not a finite integer"),
    Case("-inf integer", _set(0, "customer_id", "-inf"), rule="not a finite integer"),
    Case("1e308 integer", _set(0, "customer_id", "1e308"), rule="customer_id"),
    Case("id above 2**53", _big_id, rule="customer_id"),
    Case("minutes cut short", _set(0, "event_time", f"{BAD}T11:5"), rule="event_time"),
    Case("year and month only", _set(0, "event_time", "2023-09"), rule="event_time"),
    Case("truncated last line", _truncate_last_line, rule="signup_date"),
    Case("id of an earlier day", _repeat_yesterdays_id, rule=f"duplicate of {GOOD}"),
    Case(
        "signup after the event",
        _set(0, "signup_date", (BAD + timedelta(days=400)).isoformat()),
        rule="signup_date after the event",
    ),
    Case("byte-order mark", _bom("\n"), quarantined=0),
    Case("byte-order mark and CRLF", _bom("\r\n"), quarantined=0),
    Case("a 3 MB cell", _long_cell, rule="event_type"),
    Case(
        "one row, and it is bad",
        _one_bad_row_alone,
        rejected="none of its 1 rows was accepted (the first, line 2, broke amount: in_range",
    ),
    Case(
        "every row bad",
        _all_rows_bad,
        rejected="above FTI_MAX_QUARANTINE_SHARE=0.2 and more than FTI_QUARANTINE_MIN_ROWS=10;",
    ),
    Case("a column missing", _drop_column, rejected="missing required column(s) event_type"),
]


@pytest.fixture
def home(tmp_path: Path, demo_raw: Path, monkeypatch):  # type: ignore[no-untyped-def]
    """A home whose groups hold GOOD (published by `fti features run`), over a private copy of
    the raw files up to BAD that a case may corrupt."""
    from fti.pipelines.features import run_features

    raw = tmp_path / "raw"
    for source in ("events", "crm"):
        (raw / source).mkdir(parents=True)
        for i in range((BAD - DEMO_START).days + 1):
            name = f"{(DEMO_START + timedelta(days=i)).isoformat()}.csv"
            shutil.copy(demo_raw / source / name, raw / source / name)
    for day in (GOOD, BAD):
        _keep_good_rows(raw, day)
    settings = demo_settings(tmp_path / "home", raw)
    for key, value in {"HOME": settings.home, "RAW_PATH": raw, "PARAMS_FILE": PARAMS}.items():
        monkeypatch.setenv(f"FTI_{key}", str(value))
    run_features(GOOD, GOOD, "good", settings)
    return settings


def _keep_good_rows(raw: Path, day: date) -> None:
    """Drop the rows the generator broke on purpose, so a case's rows are the only bad ones."""
    from churn_demo.project import project
    from fti.validation import validate_file

    path = events_file(raw, day)
    bad_lines = validate_file(path, project.source("events"), day).quarantined["row_number"]
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.drop(index=[line - 2 for line in bad_lines]).to_csv(path, index=False)


def published(settings) -> dict[str, tuple[int, pd.DataFrame]]:  # type: ignore[no-untyped-def]
    """Each group's newest version and its rows."""
    from fti.store.versions import FeatureStore

    store = FeatureStore(settings.store_path)
    newest = {g: store.versions(g)[-1] for g in ("customer_activity", "customer_profile")}
    return {g: (v, store.read(g, v).to_pandas()) for g, v in newest.items()}


def latest_run(settings):  # type: ignore[no-untyped-def]
    from fti.db.engine import session_scope
    from fti.db.tables import QuarantinedRow, ValidationRun

    with session_scope(settings.db_url) as session:
        run_row = session.scalars(
            select(ValidationRun).where(
                ValidationRun.source == "events", ValidationRun.logical_date == BAD
            )
        ).one()
        rules = session.scalars(
            select(QuarantinedRow.rule).where(QuarantinedRow.validation_run_id == run_row.id)
        ).all()
    return run_row, list(rules)


def run_cli(day: date) -> tuple[int, str]:
    from typer.testing import CliRunner

    from fti.cli import app

    result = CliRunner().invoke(app, ["features", "run", "--date", day.isoformat()])
    return result.exit_code, result.output + (result.stderr if result.stderr_bytes else "")


def run_dag(dags, day: date, caplog) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    """The feature DAG for ``day``, its validate task with the DAG's real retries (no delay):
    a deterministic failure must fail on its first try."""
    dag = dags["churn_feature_pipeline"]
    validate = dag.get_task("validate_raw_events")
    validate.retries, validate.retry_delay = 2, timedelta(0)
    from fti_common import without_deadline_alerts  # apache/airflow#73428

    try:
        dag_run = without_deadline_alerts(dag).test(
            logical_date=pd.Timestamp(day, tz="UTC").to_pydatetime()
        )
    finally:
        validate.retries = 0
    instances = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    if dag_run.state == "success":
        return 0, ""
    failed = instances["validate_raw_events"]
    assert failed.state == "failed" and failed.try_number == 1, (failed.state, failed.try_number)
    return 1, caplog.text


# Every case runs through `fti features run`; the feature DAG, whose validate task calls the
# same validation, runs one case of each outcome (a row quarantined, nothing quarantined, the
# day rejected for its share of bad rows, the file rejected): what the DAG adds is how it takes
# an outcome (a deterministic failure fails on its first try, the published versions stay).
DAG_CASES = {"inf integer", "byte-order mark and CRLF", "every row bad", "a column missing"}
RUNS = [(case, "cli") for case in CASES] + [(c, "dag") for c in CASES if c.name in DAG_CASES]


@pytest.mark.parametrize(("case", "runner"), RUNS, ids=[f"{c.name}-{r}" for c, r in RUNS])
def test_bad_input(case: Case, runner: str, home, dags, caplog) -> None:  # type: ignore[no-untyped-def]
    before = published(home)
    case.mutate(Path(home.raw_path))

    code, output = run_cli(BAD) if runner == "cli" else run_dag(dags, BAD, caplog)

    assert "Traceback" not in output
    validation, rules = latest_run(home)
    if case.rejected:
        assert code == 1, output
        assert case.rejected in output, output
        assert validation.status == "rejected" and case.rejected in validation.reason
        after = published(home)
        assert {g: v for g, (v, _) in after.items()} == {g: v for g, (v, _) in before.items()}
        for group, (_, rows) in after.items():
            pd.testing.assert_frame_equal(rows, before[group][1])
        return
    assert code == 0, output
    assert validation.status == "accepted"
    assert validation.rows_read == validation.rows_accepted + validation.rows_quarantined
    assert validation.rows_quarantined == case.quarantined, rules
    assert all(case.rule in rule for rule in rules), rules
    after = published(home)
    assert all(v == before[g][0] + 1 for g, (v, _) in after.items())
    activity = after["customer_activity"][1]
    day = activity[activity["feature_date"] == pd.Timestamp(BAD).date()]
    if case.name == "id above 2**53":
        assert BIG_ID in set(day["customer_id"]), "the id was rounded"
