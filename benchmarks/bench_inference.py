"""Batch inference at 1e5, 1e6 and 1e7 scored rows: score_batch end to end, and the write step alone.

For each size N and each database (an SQLite file, and/or a throwaway PostgreSQL database),
one run of this script does, on a fresh FTI home in ``<workdir>/<N>``:

1. setup (shown for information): ONE partition of N synthetic rows for each of the churn
   model's two feature groups, ``customer_activity`` and ``customer_profile`` (the churn demo's
   columns and Arrow types, numpy-generated, one copy in memory), published with
   ``FeatureStore.publish``; the ``churn`` model (its declared features from both groups)
   fitted with churn_demo's ``make_classifier`` on a 50,000-row synthetic sample with a real
   signal, stored with ``save_artifact`` and registered (full lineage: task, metric, both group
   versions, features with their groups; training statistics and drift reference) as champion
   in each database. Scoring therefore joins the profile group onto the activity spine, as a
   real churn run does;
2. ``score_to_spool`` alone (information: the scoring half of score_batch: both groups read and
   joined, the skew guard and the drift counter watching), which also leaves
   the spool of N scores that step 4 writes, then one untimed ``write_slice`` so the slice holds
   N rows from here on (not at sizes >= 1e7, to save a full write: there the one score_batch
   run writes the slice fresh, and its row says so);
3. ``fti.pipelines.inference.score_batch`` for the as-of date: read the features, skew guard,
   score into a Parquet spool, replace the slice in one transaction (rows/s and peak memory);
4. the write step alone on the same N scores, each competitor replacing the same slice:
   - ``fti.inference.write.write_slice(db_url, Slice(...), read_spool(spool))``;
   - ``pandas.DataFrame.to_sql`` of the same rows as a DataFrame (lineage columns included,
     built before the clock starts) after deleting the slice, in one transaction: the default
     method (``chunksize=None``, pandas' default) and ``method="multi"`` (which needs a
     ``chunksize``: 1,000 rows per INSERT, within both databases' bind-parameter limits; it
     writes only ~3k rows/s, so it runs up to ``--multi-max-size``, 1e5 by default);
   - a bare baseline with no model and no transaction logic, on a slice deleted beforehand:
     PostgreSQL: ADBC ``cursor.adbc_ingest(BARE_TABLE, table, mode="append")`` (binary
     COPY) of the same Arrow table, built before the clock starts with the exact column types,
     into a fresh table shaped like predictions with no index and no key (the practical limit
     of loading rows; fti's write also builds the slice's key and index), and (``bare_indexed``)
     the same COPY into an empty table that has predictions' key and index (what loading
     queryable rows costs without fti's build-aside-and-swap);
     SQLite: one ``executemany`` of the same rows as ready-made tuples (``zip`` of Python lists
     built before the clock starts), in one BEGIN/COMMIT, same pragmas as fti.

   Competitors alternate (the order rotates each repetition); the median of ``--repeat`` runs
   is kept (``--repeat-large`` runs at sizes >= 1e7, default 1). Before every timed run the
   database is brought to the same state, untimed: the slice holds N live rows (the bare
   baseline: SQLite's slice is deleted, PostgreSQL's target is a new empty table), then
   PostgreSQL ``VACUUM predictions`` + ``CHECKPOINT``, SQLite ``wal_checkpoint(TRUNCATE)``;
   after every run the slice (the bare table) must hold exactly N rows.

Every measured step runs in a fresh spawned worker process. The worker times only the call
(``time.perf_counter``) and reports its own peak RSS (``getrusage(RUSAGE_SELF).ru_maxrss``),
which includes the interpreter and imports (the ``worker baseline`` row imports fti only) and,
for to_sql and the bare baselines, the prepared DataFrame/table/tuples those need. The database
server's memory is not counted.

Run it from the repository root (the work folder is git-ignored)::

    .venv/bin/python benchmarks/bench_inference.py                   # 1e5,1e6,1e7, both DBs
    .venv/bin/python benchmarks/bench_inference.py --sizes 1e5 --db sqlite --repeat 1

PostgreSQL: ``--pg-url`` names the server (trust auth); a database ``fti_bench_inf_<pid>_<N>``
is created per size and dropped at the end. ``--to-sql-max-size`` skips the default-method
to_sql baseline above a size (it takes minutes at 1e7). Not run by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PARAMS_FILE = REPO / "params.yaml"
AS_OF = date(2026, 6, 30)
TRAIN_ROWS = 50_000
TO_SQL_MULTI_CHUNK = 1_000  # rows per multi-row INSERT: 12 columns -> 12,000 bind parameters
LARGE = 10_000_000  # sizes from here on use --repeat-large
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
GROUP = "customer_activity"  # the churn model's spine
PROFILE_GROUP = "customer_profile"
MODEL = "churn"
# PostgreSQL's bare baselines load into these fresh tables (constant names, no user input).
BARE_TABLES = {
    "bare": ("bench_bare_copy", "INCLUDING DEFAULTS"),
    "bare_indexed": ("bench_bare_indexed", "INCLUDING DEFAULTS INCLUDING INDEXES"),
}

WRITERS = {
    "fti": "write: fti write_slice (spool -> slice)",
    "to_sql": "write: DataFrame.to_sql (default method)",
    "to_sql_multi": f'write: DataFrame.to_sql (method="multi", {TO_SQL_MULTI_CHUNK:,} rows/INSERT)',
    "bare": "write: bare baseline",  # named per database in the table
    "bare_indexed": "write: bare ADBC binary COPY into an empty table with the key and index",
}
BARE_NAME = {
    "postgres": "write: bare ADBC binary COPY into an unindexed table (no model, no txn logic)",
    "sqlite": "write: bare executemany of ready tuples (no model, no txn logic)",
}


from workers import (  # noqa: E402
    _baseline,
    _in_worker,
    _measure,
    _peak_rss_mib,
    _settings,
    log,
)


@dataclass
class Row:
    size: int
    db: str
    step: str
    rows: int
    seconds: float
    peak_rss_mib: float
    runs: int = 1
    ratio: str = ""
    all_seconds: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 and self.rows else 0.0


# ---- what runs inside a fresh worker process ----------------------------------------------------


def _feature_table(rows: int, seed: int, day: date | None) -> Any:
    """``rows`` synthetic rows of both churn feature groups' columns, in their Arrow types.

    Built column by column from numpy (one copy of the rows in memory). With ``day`` None the
    table has no feature_date and carries a 0/1 ``label`` driven by the features (training).
    ``_group_table`` cuts one group's partition out of it.
    """
    import numpy as np
    import pyarrow as pa

    from churn_demo.project import PLANS, REGIONS

    rng = np.random.default_rng(seed)
    active = rng.integers(1, 31, rows)
    logins_30d = rng.poisson(active * 1.3)
    logins_7d = rng.binomial(logins_30d, 0.25)
    purchases = rng.poisson(0.8, rows)
    spend_30d = np.round(purchases * rng.gamma(2.0, 15.0, rows), 2)
    spend_7d = np.round(spend_30d * rng.uniform(0.0, 0.4, rows), 2)
    tickets = rng.poisson(0.3, rows)
    since = np.minimum(rng.geometric(0.2, rows) - 1, 30)
    tenure = rng.integers(0, 1500, rows)
    plan_age = np.minimum(tenure, rng.integers(0, 900, rows))
    plan_codes = rng.choice(3, rows, p=[0.5, 0.3, 0.2]).astype(np.int8)
    region_codes = rng.choice(3, rows).astype(np.int8)
    seats = rng.integers(1, 50, rows)
    fee = np.round(np.array([9.0, 19.0, 39.0])[plan_codes] * seats * rng.uniform(0.8, 1.0, rows), 2)

    def text(codes: Any, values: list[str]) -> pa.Array:
        return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(values)).cast(
            pa.large_string()
        )

    columns: dict[str, Any] = {"customer_id": pa.array(np.arange(1, rows + 1, dtype=np.int64))}
    if day is not None:
        days = np.full(rows, (day - date(1970, 1, 1)).days, dtype=np.int32)
        columns["feature_date"] = pa.array(days).cast(pa.date32())
    columns |= {
        # customer_activity
        "logins_7d": pa.array(logins_7d.astype(np.int64)),
        "logins_30d": pa.array(logins_30d.astype(np.int64)),
        "purchases_30d": pa.array(purchases.astype(np.int64)),
        "spend_7d": pa.array(spend_7d),
        "spend_30d": pa.array(spend_30d),
        "tickets_30d": pa.array(tickets.astype(np.int64)),
        "active_days_30d": pa.array(active.astype(np.int64)),
        "days_since_last_login": pa.array(since.astype(np.int64)),
        # customer_profile
        "plan": text(plan_codes, PLANS),
        "monthly_fee": pa.array(fee),
        "seats": pa.array(seats.astype(np.int64)),
        "region": text(region_codes, REGIONS),
        "tenure_days": pa.array(tenure.astype(np.int64)),
        "days_since_plan_change": pa.array(plan_age.astype(np.int64)),
    }
    if day is None:
        logit = (
            -1.5
            + 0.12 * since
            - 0.06 * active
            + 0.6 * tickets
            - 0.0015 * tenure
            - 0.3 * (plan_codes == 2)
        )
        chance = 1 / (1 + np.exp(-logit))
        columns["label"] = pa.array((rng.uniform(size=rows) < chance).astype(np.int64))
    return pa.table(columns)


def _group_table(table: Any, group: str) -> Any:
    """One feature group's partition (key, date, its declared features) of ``_feature_table``."""
    from churn_demo.project import project

    features = list(project.feature_group(group).features)
    return table.select(["customer_id", "feature_date", *features])


def _publish(home: str, rows: int) -> dict[str, int]:
    """Initialise the home's store and publish ONE partition of ``rows`` synthetic rows of each
    of the churn model's feature groups; returns their versions."""
    from fti.store.registry_repo import init_store
    from fti.store.versions import FeatureStore

    settings = _settings(home)
    settings.home.mkdir(parents=True, exist_ok=True)
    settings.artifacts_path.mkdir(parents=True, exist_ok=True)
    init_store(settings.store_path, settings.dvc_remote)
    table = _feature_table(rows, seed=rows, day=AS_OF)
    store = FeatureStore(settings.store_path)
    return {
        group: store.publish(
            group,
            {AS_OF: _group_table(table, group)},
            f"bench_inference: {rows} synthetic rows for {AS_OF}",
        ).version
        for group in (GROUP, PROFILE_GROUP)
    }


def _train(home: str, feature_versions: dict[str, int]) -> dict[str, Any]:
    """Fit churn_demo's churn model on a synthetic sample; store the artifact; return its
    lineage (what ``fti.pipelines.training.train_model`` registers)."""
    import pyarrow as pa

    from churn_demo.project import project
    from fti.inference.score import predict
    from fti.lineage import code_version, library_versions
    from fti.monitoring import drift
    from fti.params import model_params
    from fti.pipelines.training import _describe
    from fti.store.statistics import column_statistics
    from fti.training.artifacts import save_artifact
    from fti.training.fit import fit
    from fti.training.metrics import holdout_metrics

    settings = _settings(home)
    spec = project.model(MODEL)
    chosen = project.model_features(spec)
    names = [f.name for f in chosen]
    params = model_params(settings.params_file, MODEL)
    sample = _feature_table(TRAIN_ROWS + TRAIN_ROWS // 4, seed=7, day=None)
    dtypes = {name: str(sample.schema.field(name).type) for name in names}
    frame = sample.to_pandas()
    train, holdout = frame.iloc[:TRAIN_ROWS], frame.iloc[TRAIN_ROWS:]
    model = fit(spec.estimator(params, names), spec.task, train, names, "label")
    path, digest = save_artifact(model, settings.artifacts_path)
    train_table = pa.Table.from_pandas(train[names], preserve_index=False)
    return {
        "artifact_uri": str(path),
        "artifact_sha256": digest,
        "estimator": _describe(model),
        "params": params,
        "task": spec.task,
        "metric": spec.metric,
        "metrics": holdout_metrics(spec.task, spec.metric, model, holdout[names], holdout["label"]),
        "feature_group": GROUP,
        "feature_version": feature_versions[GROUP],
        "feature_versions": feature_versions,
        "features": [
            {
                "name": f.name,
                "group": f.group,
                "dtype": dtypes[f.name],
                "ttl_days": int(spec.ttl.get(f.group, 0)),
            }
            for f in chosen
        ],
        "label": "synthetic churn label (bench_inference)",
        "label_group": None,  # not from the store: a synthetic sample
        "label_version": None,
        "train_start": AS_OF - timedelta(days=120),
        "train_end": AS_OF - timedelta(days=31),
        "n_train": len(train),
        "n_holdout": len(holdout),
        "library_versions": library_versions(),
        "code_version": code_version(),
        "run_id": "bench_inference_train",
        "promotion": None,
        "training_statistics": column_statistics(train_table),
        "drift_reference": drift.reference(
            {name: train_table.column(name) for name in names},
            predict(spec.task, model, holdout[names]).observed,
        ),
        "n_iter": int(model.steps[-1][1].n_iter_),
    }


def _register(home: str, db_url: str, lineage: dict[str, Any]) -> int:
    """Migrate the database, register the model version and make it champion."""
    from fti.db.engine import session_scope
    from fti.db.migrate import upgrade
    from fti.registry import aliases
    from fti.registry.versions import register_version

    url = _settings(home, db_url).db_url
    upgrade(url)
    lineage = {k: v for k, v in lineage.items() if k != "n_iter"}
    with session_scope(url, write=True) as session:
        row = register_version(session, MODEL, **lineage)
        aliases.set_alias(
            session, MODEL, aliases.CHAMPION, row.version, "bench_inference", "benchmark model"
        )
        return row.version


def _model_row(url: str) -> Any:
    from fti.db.engine import session_scope
    from fti.registry import aliases
    from fti.registry.versions import get_version

    with session_scope(url) as session:
        return get_version(session, MODEL, aliases.resolve(session, MODEL, aliases.CHAMPION))


def _slice(row: Any, run_id: str) -> Any:
    from fti.inference.write import Slice

    return Slice(
        model_name=MODEL,
        model_version=row.version,
        feature_group=row.feature_group,
        feature_version=row.feature_version,
        as_of_date=AS_OF,
        run_id=run_id,
        scored_at=datetime.now(UTC),
    )


def _settle(url: str) -> None:
    """Untimed: the same starting state before every timed run (no dead rows, clean WAL)."""
    if url.startswith("postgresql"):
        import psycopg

        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            connection.execute("VACUUM predictions")
            connection.execute("CHECKPOINT")
    else:
        import sqlite3

        connection = sqlite3.connect(_sqlite_path(url))
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()


def _slice_rows(url: str) -> int:
    from sqlalchemy import func, select

    from fti.db.engine import get_engine
    from fti.db.tables import Prediction

    query = select(func.count()).where(
        Prediction.model_name == MODEL, Prediction.as_of_date == AS_OF
    )
    with get_engine(url).connect() as connection:
        return int(connection.scalar(query))


def _table_rows(url: str, table: str) -> int:
    from sqlalchemy import text

    from fti.db.engine import get_engine

    with get_engine(url).connect() as connection:
        return int(connection.scalar(text(f"SELECT count(*) FROM {table}")))  # a constant name


def _delete_slice(url: str) -> None:
    from sqlalchemy import delete

    from fti.db.engine import get_engine
    from fti.db.tables import Prediction

    with get_engine(url).begin() as connection:
        connection.execute(
            delete(Prediction).where(Prediction.model_name == MODEL, Prediction.as_of_date == AS_OF)
        )


def _libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def _sqlite_path(url: str) -> str:
    return url.removeprefix("sqlite:///")


def _score_to_spool(home: str, db_url: str, spool: str, fill: bool) -> tuple[int, float, float]:
    """score_batch's scoring half alone: features of both groups -> model -> spool (timed), with
    the skew guard and drift counter watching; ``fill``: then write the spool into the slice
    (untimed), so the score_batch runs replace a slice of N rows."""
    from fti.inference.features import feature_batches
    from fti.inference.score import read_spool, score_to_spool
    from fti.inference.skew import ServingProfile
    from fti.inference.write import write_slice
    from fti.monitoring import drift
    from fti.pipelines.inference import _group_reads
    from fti.pipelines.runs import setup
    from fti.pipelines.training import feature_names, load_estimator
    from fti.store.versions import FeatureStore

    settings, project = setup(_settings(home, db_url))
    clock = time.perf_counter()
    row = _model_row(settings.db_url)
    store = FeatureStore(settings.store_path)
    reads = _group_reads(project, row, store, AS_OF, "latest")
    names = feature_names(row)
    estimator = load_estimator(row)
    batches = feature_batches(store, reads, AS_OF, names)
    profile = ServingProfile(names, row.training_statistics or {})
    counter = drift.DriftCounter(row.drift_reference or {}, names)
    rows = score_to_spool(
        estimator, row.task, batches, reads[0].key, names, Path(spool), [profile, counter]
    )
    seconds, peak = time.perf_counter() - clock, _peak_rss_mib()
    if fill:
        write_slice(settings.db_url, _slice(row, "bench_fill"), read_spool(Path(spool)))
    return rows, seconds, peak


def _score_batch(home: str, db_url: str, run_id: str) -> tuple[int, float, float]:
    from fti.pipelines.inference import score_batch

    settings = _settings(home, db_url)
    _settle(settings.db_url)
    clock = time.perf_counter()
    result = score_batch(MODEL, AS_OF, run_id, settings=settings)
    return result["rows"], time.perf_counter() - clock, _peak_rss_mib()


def _write(
    home: str, db_url: str, spool: str, method: str, run_id: str
) -> tuple[int, float, float]:
    """One timed write of the spool's N scores into the slice with ``method``."""
    url = _settings(home, db_url).db_url
    row = _model_row(url)
    prepare = {"fti": _prepare_fti, "to_sql": _prepare_to_sql, "to_sql_multi": _prepare_to_sql}
    prepare_fn = prepare.get(method, _prepare_bare)
    write = prepare_fn(url, Path(spool), row, run_id, method)  # untimed
    _settle(url)
    clock = time.perf_counter()
    rows = write()
    seconds = time.perf_counter() - clock
    peak = _peak_rss_mib()
    bare_table = method in BARE_TABLES and url.startswith("postgresql")
    written = _table_rows(url, BARE_TABLES[method][0]) if bare_table else _slice_rows(url)
    if written != rows:
        raise RuntimeError(f"{method} left {written} rows in the slice, expected {rows}")
    return rows, seconds, peak


def _prepare_fti(url: str, spool: Path, row: Any, run_id: str, _method: str) -> Callable[[], int]:
    from fti.inference.runs import start_run
    from fti.inference.score import read_spool
    from fti.inference.write import write_slice

    start_run(url, run_id, MODEL, AS_OF, None, None)
    piece = _slice(row, run_id)
    return lambda: write_slice(url, piece, read_spool(spool))


def _lineage_values(row: Any, run_id: str) -> dict[str, Any]:
    return _slice(row, run_id).lineage()


def _prepare_to_sql(url: str, spool: Path, row: Any, run_id: str, method: str) -> Callable[[], int]:
    """The same rows as a DataFrame (lineage columns included), built before the clock starts."""
    import pandas as pd
    import pyarrow.parquet as pq
    from sqlalchemy import delete

    from fti.db.engine import get_engine
    from fti.db.tables import Prediction
    from fti.inference.write import COLUMNS

    scores = pq.read_table(spool).to_pandas()
    lineage = _lineage_values(row, run_id)
    frame = pd.DataFrame(
        {name: [value] * len(scores) for name, value in lineage.items()} | dict(scores.items())
    )[COLUMNS]
    frame["scored_at"] = pd.to_datetime(frame["scored_at"], utc=True)
    del scores
    column_types = {c.name: c.type for c in Prediction.__table__.columns if c.name in COLUMNS}
    extra = {"method": "multi", "chunksize": TO_SQL_MULTI_CHUNK} if method == "to_sql_multi" else {}

    def write() -> int:
        with get_engine(url).begin() as connection:
            connection.execute(
                delete(Prediction).where(
                    Prediction.model_name == MODEL, Prediction.as_of_date == AS_OF
                )
            )
            frame.to_sql(
                "predictions",
                connection,
                if_exists="append",
                index=False,
                dtype=column_types,
                **extra,
            )
        return len(frame)

    return write


def _prepare_bare(url: str, spool: Path, row: Any, run_id: str, method: str) -> Callable[[], int]:
    """No model, no lock/delete/run logic (SQLite: the slice is deleted beforehand, untimed)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fti.inference.write import LINEAGE_TYPES, SCORE_SCHEMA

    scores = pq.read_table(spool, schema=SCORE_SCHEMA)
    lineage = _lineage_values(row, run_id)
    if url.startswith("postgresql"):
        import psycopg

        target, like = BARE_TABLES[method]
        with psycopg.connect(_libpq(url), autocommit=True) as connection:
            connection.execute(f"DROP TABLE IF EXISTS {target}")
            connection.execute(f"CREATE TABLE {target} (LIKE predictions {like})")
        n = scores.num_rows
        constants = [
            pa.repeat(pa.scalar(lineage[name], kind), n) for name, kind in LINEAGE_TYPES.items()
        ]
        table = pa.Table.from_arrays(
            [*constants, *scores.columns], names=[*LINEAGE_TYPES, *SCORE_SCHEMA.names]
        )
        del scores

        def copy() -> int:
            import adbc_driver_postgresql.dbapi as adbc

            with adbc.connect(_libpq(url)) as connection, connection.cursor() as cursor:
                cursor.adbc_ingest(target, table, mode="append")
                connection.commit()
            return table.num_rows

        return copy
    import sqlite3
    from itertools import repeat

    _delete_slice(url)
    columns = [*LINEAGE_TYPES, *SCORE_SCHEMA.names]
    constants = [
        lineage["model_name"],
        lineage["model_version"],
        lineage["feature_group"],
        lineage["feature_version"],
        lineage["as_of_date"].isoformat(),
        lineage["run_id"],
        None,
        None,
        lineage["scored_at"].strftime("%Y-%m-%d %H:%M:%S.%f"),
    ]
    values = [scores.column(name).to_pylist() for name in SCORE_SCHEMA.names]
    n = scores.num_rows
    del scores
    sql = f"INSERT INTO predictions ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"

    def executemany() -> int:
        connection = sqlite3.connect(_sqlite_path(url), isolation_level=None)
        connection.execute("PRAGMA synchronous=NORMAL")  # as fti's engine sets it
        connection.execute("BEGIN")
        connection.executemany(sql, zip(*(repeat(c, n) for c in constants), *values, strict=True))
        connection.execute("COMMIT")
        connection.close()
        return n

    return executemany


# ---- the run --------------------------------------------------------------------------------------
def _admin(server: str) -> str:
    return _libpq(server) + "/postgres"


def create_pg_database(server: str, name: str) -> str:
    import psycopg

    with psycopg.connect(_admin(server), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{server}/{name}"


def drop_pg_database(server: str, name: str) -> None:
    import psycopg

    with psycopg.connect(_admin(server), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _summary(size: int, db: str, runs: list[tuple[int, float, float]], step: str) -> Row:
    seconds = [s for _, s, _ in runs]
    return Row(
        size,
        db,
        step,
        runs[0][0],
        statistics.median(seconds),
        max(rss for *_, rss in runs),
        len(runs),
        all_seconds=[round(s, 3) for s in seconds],
    )


def database(
    size: int, home: str, db: str, db_url: str, lineage: dict[str, Any], args: argparse.Namespace
) -> list[Row]:
    """Register the model in ``db``, then time score_batch and the write competitors there."""
    _in_worker(_register, home, db_url, lineage)
    spool = str(Path(home) / f"scores-{db}.parquet")
    # At >= 1e7 the slice is not filled first (a full write saved): the one score_batch run
    # writes the slice fresh, with no previous slice to delete; every write-step run replaces N rows.
    fill = size < LARGE
    scored, spool_s, spool_rss = _in_worker(_score_to_spool, home, db_url, spool, fill)
    log(f"N={size:,} {db}: score_to_spool {spool_s:.1f}s; timing score_batch")
    repeat = args.repeat_large if size >= LARGE else args.repeat
    batch_runs = [_in_worker(_score_batch, home, db_url, f"bench_score_{i}") for i in range(repeat)]
    methods = ["fti", "bare", *(["bare_indexed"] if db == "postgres" else [])]
    if args.to_sql_max_size is None or size <= args.to_sql_max_size:
        methods[1:1] = ["to_sql"]
    if size <= args.multi_max_size:
        methods[-1:-1] = ["to_sql_multi"]
    runs: dict[str, list[tuple[int, float, float]]] = {m: [] for m in methods}
    failed: dict[str, str] = {}
    for i in range(repeat):
        for method in methods[i % len(methods) :] + methods[: i % len(methods)]:
            try:
                result = _in_worker(_write, home, db_url, spool, method, f"bench_{method}_{i}")
            except Exception as exc:  # noqa: BLE001 - a baseline that dies is reported, not fatal
                if method == "fti":
                    raise
                log(f"N={size:,} {db}: {method} #{i + 1} failed: {type(exc).__name__}: {exc}")
                failed[method] = f"{type(exc).__name__}: {exc}"[:120]
                continue
            log(f"N={size:,} {db}: {method} #{i + 1}: {result[1]:.2f}s, {result[2]:.0f} MiB")
            runs[method].append(result)
    rows = [
        Row(size, db, "score_to_spool alone (info)", scored, spool_s, spool_rss),
        _summary(
            size,
            db,
            batch_runs,
            "score_batch end to end" + ("" if fill else " (fresh slice: nothing to delete)"),
        ),
    ]
    written = {m: _summary(size, db, r, WRITERS[m]) for m, r in runs.items() if r}
    written["bare"].step = BARE_NAME[db]
    fti = written["fti"]
    ratios = []
    for method in ("to_sql", "to_sql_multi"):
        if method in written:
            ratios.append(f"{written[method].seconds / fti.seconds:.2f}x vs {method}")
            written[method].ratio = "1.00x"
    ratios.append(f"{fti.seconds / written['bare'].seconds:.2f}x the bare time")
    if "bare_indexed" in written:
        ratios.append(f"{fti.seconds / written['bare_indexed'].seconds:.2f}x the bare indexed time")
    fti.ratio = ", ".join(ratios)
    rows[1].ratio = f"write = {fti.seconds / rows[1].seconds:.0%} of it"
    rows += list(written.values())
    rows += [
        Row(
            size,
            db,
            f"{WRITERS[m]}: "
            + (f"failed: {failed[m]}" if m in failed else "not run at this size (time)"),
            0,
            0.0,
            0.0,
            0,
        )
        for m in ("to_sql", "to_sql_multi")
        if m not in written
    ]
    log(f"N={size:,} {db} done:\n{markdown(rows)}")
    return rows


def run_size(size: int, args: argparse.Namespace) -> list[Row]:
    home = str(args.workdir / str(size))
    shutil.rmtree(home, ignore_errors=True)
    dbs = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    pg_name = f"fti_bench_inf_{os.getpid()}_{size}"
    log(f"N={size:,}: publishing one partition of synthetic features")
    versions, pub_s, pub_rss = _measure(_publish, home, size)
    lineage, train_s, train_rss = _measure(_train, home, versions)
    log(
        f"N={size:,}: published in {pub_s:.1f}s; trained in {train_s:.1f}s "
        f"({lineage['n_iter']} iterations, holdout AUC {lineage['metrics'].get('roc_auc', 0):.3f})"
    )
    rows = [
        Row(
            size,
            "-",
            "setup: publish one partition of N synthetic rows per group, 2 groups (info)",
            size,
            pub_s,
            pub_rss,
        ),
        Row(
            size,
            "-",
            f"setup: train on {TRAIN_ROWS:,} synthetic rows (info)",
            TRAIN_ROWS,
            train_s,
            train_rss,
        ),
    ]
    for db in dbs:
        url = (
            create_pg_database(args.pg_url, pg_name)
            if db == "postgres"
            else f"sqlite:///{Path(home) / 'fti.db'}"
        )
        try:
            rows += database(size, home, db, url, lineage, args)
        finally:
            if db == "postgres":
                drop_pg_database(args.pg_url, pg_name)
    if not args.keep:
        shutil.rmtree(home, ignore_errors=True)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| size | db | step | rows | runs | seconds (median) | rows/s | peak RSS MiB | ratio |",
        "|---:|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        rate = f"{r.rate:,.0f}" if r.rate else "-"
        size = f"{r.size:,}" if r.size else "-"
        if not r.runs:
            lines.append(f"| {size} | {r.db} | {r.step} | - | 0 | - | - | - | |")
            continue
        lines.append(
            f"| {size} | {r.db} | {r.step} | {r.rows:,} | {r.runs} | {r.seconds:.2f} | {rate} "
            f"| {r.peak_rss_mib:.0f} | {r.ratio} |"
        )
    return "\n".join(lines)


def ratios(rows: list[Row]) -> str:
    """fti's write against to_sql (speed-up) and against the bare baseline, with the aims."""
    lines = [
        "| size | db | to_sql ÷ fti (aim) | to_sql multi ÷ fti | fti ÷ bare (aim) "
        "| fti ÷ bare into an indexed table | runs |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    aims = {"postgres": (10.0, 1.25), "sqlite": (1.5, None)}
    found: dict[tuple[int, str], dict[str, Row]] = {}
    for r in rows:
        for key, name in [*WRITERS.items(), ("bare", BARE_NAME.get(r.db, ""))]:
            if r.step == name and r.runs:
                found.setdefault((r.size, r.db), {})[key] = r
    for (size, db), got in found.items():
        fti = got["fti"]
        speed_aim, bare_aim = aims[db]
        bare = fti.seconds / got["bare"].seconds
        bare_text = f"{bare:.2f}x" + (
            f" (≤{bare_aim:g}x {'✓' if bare <= bare_aim else '✗'})" if bare_aim else " (no aim)"
        )
        indexed = (
            f"{fti.seconds / got['bare_indexed'].seconds:.2f}x" if "bare_indexed" in got else "-"
        )
        lines.append(
            f"| {size:,} | {db} | {_versus(got, 'to_sql', speed_aim)} | {_versus(got, 'to_sql_multi')} "
            f"| {bare_text} | {indexed} | {fti.runs} |"
        )
    return "\n".join(lines)


def _versus(got: dict[str, Row], key: str, aim: float | None = None) -> str:
    if key not in got:
        return "not run (time)"
    value = got[key].seconds / got["fti"].seconds
    mark = "" if aim is None else (" ✓" if value >= aim else " ✗")
    return f"{value:.2f}x" + (f" (≥{aim:g}x{mark})" if aim else "")


def _size(text: str) -> int:
    return int(float(text))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        default="100000,1000000,10000000",
        type=lambda text: [_size(s) for s in text.split(",") if s.strip()],
        help="scored rows per size, comma-separated, 1e6 notation allowed (default 1e5,1e6,1e7)",
    )
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workdir", type=Path, default=REPO / "benchmarks" / ".work" / "inference")
    parser.add_argument("--pg-url", default=PG_SERVER, help="PostgreSQL server, no database")
    parser.add_argument("--repeat", type=int, default=3, help="runs per timed step (median)")
    parser.add_argument(
        "--repeat-large", type=int, default=1, help=f"runs per timed step at sizes >= {LARGE:.0e}"
    )
    parser.add_argument(
        "--to-sql-max-size",
        type=_size,
        default=None,
        help="skip the to_sql baselines above this size (default: run them at every size)",
    )
    parser.add_argument(
        "--multi-max-size",
        type=_size,
        default=100_000,
        help='run to_sql(method="multi") only up to this size (default 1e5: it writes ~3k rows/s)',
    )
    parser.add_argument("--keep", action="store_true", help="keep each size's FTI home")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.workdir = args.workdir.resolve()
    args.workdir.mkdir(parents=True, exist_ok=True)
    os.environ["FTI_PARAMS_FILE"] = str(PARAMS_FILE)
    clock = time.perf_counter()
    _, _, baseline_rss = _measure(_baseline)
    rows = [Row(0, "-", "worker baseline (imports fti only)", 0, 0.0, baseline_rss)]
    for size in args.sizes:
        rows += run_size(size, args)
        (args.workdir / "results.json").write_text(
            json.dumps({"rows": [asdict(r) for r in rows]}, indent=2)
        )
    elapsed = time.perf_counter() - clock
    (args.workdir / "results.json").write_text(
        json.dumps({"elapsed_s": elapsed, "rows": [asdict(r) for r in rows]}, indent=2)
    )
    import fti

    print(
        f"fti from {Path(fti.__file__).parent}; repeat {args.repeat} (sizes >= {LARGE:,}: "
        f"{args.repeat_large}); medians of the runs shown\n"
    )
    print(markdown(rows))
    print(
        "\nfti write vs the baselines (seconds ÷ seconds; speed-up above 1 means fti is faster)\n"
    )
    print(ratios(rows))
    print(f"\nbenchmark wall time: {elapsed:.0f}s")


if __name__ == "__main__":
    main()
