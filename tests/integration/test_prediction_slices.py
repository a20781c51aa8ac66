"""Prediction slices on SQLite and PostgreSQL: replaced whole, once, whatever happens mid-write."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from sqlalchemy import func, select, text

from fti.db.engine import get_engine, session_scope
from fti.db.tables import ModelAlias, Prediction
from fti.errors import PredictionWriteError
from fti.inference.write import SCORE_SCHEMA, Slice, class_probabilities_json, write_slice
from tests.integration.slices import a_slice, scores, write
from tests.integration.slow_writer import DAY, ROWS

ROOT = Path(__file__).resolve().parents[2]
CONTENT = "model_name, model_version, feature_group, feature_version, entity_id, as_of_date, prediction, probability, run_id, airflow_run_id, logical_date, scored_at"


def checksum(db_url: str) -> str:
    """sha256 over every predictions row, in key order."""
    with get_engine(db_url).connect() as connection:
        rows = connection.execute(
            text(f"SELECT {CONTENT} FROM predictions ORDER BY model_name, as_of_date, entity_id")
        ).all()
    return hashlib.sha256(repr([tuple(map(str, row)) for row in rows]).encode()).hexdigest()


def slice_state(db_url: str, day: date = DAY) -> tuple[int, set[int]]:
    with session_scope(db_url) as session:
        versions = list(
            session.scalars(select(Prediction.model_version).where(Prediction.as_of_date == day))
        )
    return len(versions), set(versions)


def test_rewriting_a_slice_replaces_it_and_leaves_other_dates(db_url: str) -> None:
    write(db_url, DAY - timedelta(days=1), 1, 50)
    for version in (1, 2, 2):  # a run, a rerun, a retry
        assert write(db_url, DAY, version, 200) == 200
    with session_scope(db_url) as session:
        counts = dict(
            session.execute(
                select(Prediction.as_of_date, func.count()).group_by(Prediction.as_of_date)
            ).all()
        )
    assert counts == {DAY - timedelta(days=1): 50, DAY: 200}
    assert slice_state(db_url) == (200, {2})


def test_retries_reruns_and_concurrent_duplicates_leave_what_one_run_leaves(db_url: str) -> None:
    piece = a_slice(DAY, 3, airflow_run_id="scheduled__2026-03-01", logical_date=DAY)
    write_slice(db_url, piece, scores(30_000))
    single = checksum(db_url)
    write_slice(db_url, piece, scores(30_000))  # retry / clear and rerun
    assert checksum(db_url) == single
    errors: list[BaseException] = []

    def duplicate() -> None:  # Airflow running the same task instance twice
        try:
            write_slice(db_url, piece, scores(30_000, batch_size=3_000))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    copies = [threading.Thread(target=duplicate) for _ in range(4)]
    for copy in copies:
        copy.start()
    for copy in copies:
        copy.join()
    assert errors == []
    assert checksum(db_url) == single


def test_concurrent_writers_of_different_slices_all_land(db_url: str) -> None:
    """Two models and several dates written at once (the inference DAGs run side by side):
    every slice lands whole; no writer deadlocks another."""
    errors: list[BaseException] = []
    pieces = [
        a_slice(DAY - timedelta(days=n), 1, run_id=f"run-{model}-{n}", model_name=model)
        for model in ("churn", "spend")
        for n in range(3)
    ]

    def writer(piece: Slice) -> None:
        try:
            for _ in range(3):
                write_slice(db_url, piece, scores(20_000, batch_size=5_000))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(piece,)) for piece in pieces]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with session_scope(db_url) as session:
        counts = dict(
            session.execute(
                select(Prediction.model_name, func.count()).group_by(Prediction.model_name)
            ).all()
        )
    assert counts == {"churn": 60_000, "spend": 60_000}


def test_a_reader_polling_during_rewrites_never_sees_a_partial_slice(db_url: str) -> None:
    n = 20_000
    write(db_url, DAY, 1, n)
    seen: list[tuple[int, int]] = []
    done = threading.Event()

    def poll() -> None:
        engine = get_engine(db_url)
        while not done.is_set():
            with engine.connect() as connection:
                seen.append(
                    tuple(  # type: ignore[arg-type]
                        connection.execute(
                            select(
                                func.count(), func.count(func.distinct(Prediction.run_id))
                            ).where(Prediction.as_of_date == DAY)
                        ).one()
                    )
                )

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for version in (2, 3, 4, 5):
            write(db_url, DAY, version, n, run_id=f"rewrite-{version}")
    finally:
        done.set()
        reader.join()
    assert len(seen) > 5
    assert set(seen) == {(n, 1)}
    assert slice_state(db_url) == (n, {5})


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_long_query_holds_the_swap_back_without_stalling_other_readers(db_url: str) -> None:
    """PostgreSQL swaps a slice's partition, which needs predictions alone for a moment. While a
    long query reads predictions, the writer waits in short tries, so other readers go on
    reading the old slice; when the query ends, the new slice goes in."""
    write(db_url, DAY, 1, 100)
    long_query = get_engine(db_url).connect()
    long_query.execute(
        select(func.count()).select_from(Prediction)
    )  # holds its lock until rollback
    writer = threading.Thread(target=write, args=(db_url, DAY, 2, 100))
    writer.start()
    try:
        reads = []
        deadline = time.monotonic() + 6  # three of the writer's 2 s lock waits
        while time.monotonic() < deadline:
            reads.append(slice_state(db_url))
        assert all(read == (100, {1}) for read in reads) and len(reads) >= 3
        assert writer.is_alive()
    finally:
        long_query.rollback()
        long_query.close()
        writer.join(timeout=120)
    assert not writer.is_alive()
    assert slice_state(db_url) == (100, {2})


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_swap_held_back_too_long_gives_up_and_says_why(db_url: str) -> None:
    from sqlalchemy.exc import OperationalError

    write(db_url, DAY, 1, 10)
    engine = get_engine(db_url)
    with engine.connect() as long_query, engine.connect() as writer:
        long_query.execute(select(func.count()).select_from(Prediction))
        key = {"m": "m", "d": DAY}
        writer.execute(text("SELECT fti_slice_stage(:m, :d)"), key)
        writer.execute(text("SELECT fti_slice_index(:m, :d)"), key)
        with pytest.raises(OperationalError, match="held it through 2 waits of 100ms"):
            writer.execute(text("SELECT fti_slice_swap(:m, :d, '100ms', 2)"), key)
        writer.rollback()
        long_query.rollback()
    assert slice_state(db_url) == (10, {1})


def test_a_failed_rewrite_rolls_back_and_says_what_to_do(db_url: str) -> None:
    write(db_url, DAY, 1, 20)
    duplicate_key = scores(20)  # the same entities twice: the unique key refuses the second
    both = [*duplicate_key, *scores(20)]
    with pytest.raises(PredictionWriteError, match="rolled back; the previous slice is unchanged"):
        write_slice(db_url, a_slice(DAY, 2), both)
    assert slice_state(db_url) == (20, {1})


def test_a_writer_killed_mid_write_leaves_the_previous_slice(db_url: str, tmp_path: Path) -> None:
    write(db_url, DAY, 1, ROWS)
    writer = start_slow_writer(db_url, tmp_path / "marker")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert slice_state(db_url) == (ROWS, {1})
    assert write(db_url, DAY, 3, ROWS) == ROWS  # the next run works (no stale lock)
    assert slice_state(db_url) == (ROWS, {3})


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_the_database_going_away_mid_write_is_a_clear_error(db_url: str, tmp_path: Path) -> None:
    write(db_url, DAY, 1, ROWS)
    writer = start_slow_writer(db_url, tmp_path / "marker")
    with get_engine(db_url).connect() as connection:
        cut = connection.execute(
            text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE 'COPY%predictions%'"
            )
        ).all()
    assert cut == [(True,)]
    _, stderr = writer.communicate(timeout=120)
    assert writer.returncode != 0
    assert "PredictionWriteError" in stderr and "previous slice is unchanged" in stderr
    assert slice_state(db_url) == (ROWS, {1})
    assert write(db_url, DAY, 3, ROWS) == ROWS
    assert slice_state(db_url) == (ROWS, {3})


def start_slow_writer(db_url: str, marker: Path) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.slow_writer", db_url, str(marker)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert writer.poll() is None, writer.communicate()[1]
        assert time.monotonic() < deadline, "the writer never reached the middle of its write"
        time.sleep(0.05)
    time.sleep(0.3)  # the fifth batch is on its way into the open transaction
    return writer


def test_bulk_written_values_read_back_as_written(db_url: str) -> None:
    scored = datetime(2026, 3, 2, 4, 5, 6, 789012, tzinfo=UTC)
    piece = a_slice(
        DAY,
        3,
        scored_at=scored,
        airflow_run_id="scheduled__2026-03-01T00:00:00+00:00",
        logical_date=DAY,
    )
    assert write_slice(db_url, piece, scores(4)) == 4
    with session_scope(db_url) as session:
        stored = session.scalars(select(Prediction).order_by(Prediction.entity_id)).all()
    assert [p.entity_id for p in stored] == ["0", "1", "2", "3"]
    assert [p.probability for p in stored] == [0.0, 0.25, 0.5, 0.75]
    assert [p.prediction for p in stored] == [0, 1, 0, 1]
    assert {
        (p.as_of_date, p.model_version, p.run_id, p.airflow_run_id, p.logical_date) for p in stored
    } == {(DAY, 3, "run-3", "scheduled__2026-03-01T00:00:00+00:00", DAY)}
    at = stored[0].scored_at
    assert at.replace(tzinfo=at.tzinfo or UTC) == scored


def test_an_empty_slice_replaces_the_old_one_with_nothing(db_url: str) -> None:
    write(db_url, DAY, 1, 10)
    assert write_slice(db_url, a_slice(DAY, 2), iter([])) == 0
    assert slice_state(db_url) == (0, set())
    assert SCORE_SCHEMA.names == [
        "entity_id",
        "prediction",
        "probability",
        "value",
        "predicted_class",
        "class_probabilities",
    ]


CLASSES = ["rain", 'dry "sunny"', "snow ❄"]  # a quote and a non-ASCII name are data


def regression(n: int, offset: float = 0.0) -> list[pa.RecordBatch]:
    """A regression model's scores: only entity_id and value; the first batch as the scorer
    writes it (every SCORE_SCHEMA column, the others null), the rest without those columns."""
    ids = [str(i) for i in range(n)]
    values = [i * 0.5 + offset for i in range(n)]
    full = pa.RecordBatch.from_pydict(
        {"entity_id": ids[:1000], "value": values[:1000]}
        | {name: [None] * len(ids[:1000]) for name in SCORE_SCHEMA.names[1:] if name != "value"},
        schema=SCORE_SCHEMA,
    )
    rest = [
        pa.record_batch(
            {"entity_id": ids[start : start + 1000], "value": values[start : start + 1000]}
        )
        for start in range(1000, n, 1000)
    ]
    return [full, *rest]


def multiclass(n: int, shift: int = 0) -> list[pa.RecordBatch]:
    """A multiclass model's scores: the predicted class, its probability, every class's."""
    import numpy as np

    raw = np.array([[(i + shift) % 5 + 1, (i + shift) % 3 + 1, 1.0] for i in range(n)])
    probabilities = raw / raw.sum(axis=1, keepdims=True)
    best = probabilities.argmax(axis=1)
    return [
        pa.RecordBatch.from_pydict(
            {
                "entity_id": [str(i) for i in range(start, min(n, start + 1000))],
                "prediction": [None] * len(range(start, min(n, start + 1000))),
                "probability": probabilities[start : start + 1000].max(axis=1),
                "value": [None] * len(range(start, min(n, start + 1000))),
                "predicted_class": [CLASSES[k] for k in best[start : start + 1000]],
                "class_probabilities": class_probabilities_json(
                    CLASSES, probabilities[start : start + 1000]
                ),
            },
            schema=SCORE_SCHEMA,
        )
        for start in range(0, n, 1000)
    ]


def test_regression_and_multiclass_slices_read_back_as_written(db_url: str) -> None:
    with session_scope(db_url) as session:
        for model in ("m", "rain_mm", "weather"):
            session.add(ModelAlias(name=model, alias="champion", version=1, updated_at=DAY))
    write(db_url, DAY, 1, 10)  # a binary model's slice beside them
    rain = a_slice(DAY, model_name="rain_mm", run_id="rain")
    weather = [a_slice(DAY + timedelta(days=d), model_name="weather", run_id="w") for d in (0, 1)]
    assert write_slice(db_url, rain, regression(2_500)) == 2_500
    assert write_slice(db_url, rain, regression(2_500, offset=1.0)) == 2_500  # rerun
    assert write_slice(db_url, weather[0], multiclass(2_500)) == 2_500
    assert write_slice(db_url, weather[1], multiclass(3, shift=1)) == 3  # a newer day for 0..2

    with session_scope(db_url) as session:
        rows = session.scalars(
            select(Prediction)
            .where(Prediction.model_name != "m")
            .order_by(Prediction.model_name, Prediction.as_of_date, Prediction.entity_id)
        ).all()
    regressed = [p for p in rows if p.model_name == "rain_mm"]
    assert len(regressed) == 2_500
    assert {p.entity_id: p.value for p in regressed} == {
        str(i): i * 0.5 + 1.0 for i in range(2_500)
    }
    assert {
        (p.prediction, p.probability, p.predicted_class, p.class_probabilities) for p in regressed
    } == {(None, None, None, None)}
    classified = {(p.as_of_date, p.entity_id): p for p in rows if p.model_name == "weather"}
    assert len(classified) == 2_503
    first = classified[(DAY, "0")]  # raw scores 1, 1, 1
    assert (first.prediction, first.value, first.predicted_class) == (None, None, "rain")
    assert first.class_probabilities == {name: pytest.approx(1 / 3) for name in CLASSES}
    assert first.probability == pytest.approx(1 / 3)
    later = classified[(DAY, "4")]  # raw scores 5, 2, 1
    assert later.predicted_class == "rain" and later.probability == pytest.approx(5 / 8)
    assert later.class_probabilities == {"rain": 0.625, 'dry "sunny"': 0.25, "snow ❄": 0.125}
    sunny = classified[(DAY, "5")]  # raw scores 1, 3, 1
    assert (sunny.predicted_class, sunny.probability) == ('dry "sunny"', pytest.approx(0.6))
    assert sunny.class_probabilities == {"rain": 0.2, 'dry "sunny"': 0.6, "snow ❄": 0.2}
    assert all(
        p.predicted_class in CLASSES
        and p.class_probabilities is not None
        and p.probability == max(p.class_probabilities.values())
        for p in classified.values()
    )

    # latest_predictions: each champion's newest score per entity, with the new columns.
    with get_engine(db_url).connect() as connection:
        latest = connection.execute(
            text(
                "SELECT model_name, entity_id, as_of_date, prediction, probability, value,"
                " predicted_class, class_probabilities FROM latest_predictions"
                " WHERE entity_id IN ('1', '4') ORDER BY model_name, entity_id"
            )
        ).all()
    as_read = [
        (m, e, str(d)[:10], p, prob, v, c, json.loads(cp) if isinstance(cp, str) else cp)
        for m, e, d, p, prob, v, c, cp in latest
    ]
    assert as_read == [
        ("m", "1", "2026-03-01", 1, 0.1, None, None, None),
        ("m", "4", "2026-03-01", 0, 0.4, None, None, None),
        ("rain_mm", "1", "2026-03-01", None, None, 1.5, None, None),
        ("rain_mm", "4", "2026-03-01", None, None, 3.0, None, None),
        # entity 1 has a newer score (shift 1: raw 3, 3, 1); entity 4 does not
        (
            "weather",
            "1",
            "2026-03-02",
            None,
            3 / 7,
            None,
            "rain",
            {"rain": 3 / 7, 'dry "sunny"': 3 / 7, "snow ❄": 1 / 7},
        ),
        (
            "weather",
            "4",
            "2026-03-01",
            None,
            0.625,
            None,
            "rain",
            {"rain": 0.625, 'dry "sunny"': 0.25, "snow ❄": 0.125},
        ),
    ]


def test_malformed_class_probabilities_roll_back(db_url: str) -> None:
    """Both databases check the JSON text (PostgreSQL's json type, SQLite's json())."""
    piece = a_slice(DAY, model_name="weather")
    write_slice(db_url, piece, multiclass(5))
    bad = pa.record_batch(
        {"entity_id": ["9"], "predicted_class": ["rain"], "class_probabilities": ["{rain: 1"]}
    )
    with pytest.raises(PredictionWriteError, match="(?s)previous slice is unchanged.*(json|JSON)"):
        write_slice(db_url, piece, [*multiclass(5, shift=1), bad])
    with pytest.raises(PredictionWriteError, match="no entity_id column"):
        write_slice(db_url, piece, [pa.record_batch({"value": [1.0]})])
    with session_scope(db_url) as session:
        kept = session.scalars(select(Prediction).order_by(Prediction.entity_id)).all()
    assert [p.entity_id for p in kept] == ["0", "1", "2", "3", "4"]
    assert kept[0].class_probabilities == {name: pytest.approx(1 / 3) for name in CLASSES}
