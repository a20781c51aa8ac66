"""The bare baseline of ``bench_serving.py``: a minimal FastAPI endpoint, no fti code path.

``POST /predict`` with ``{"entities": ["494", ...]}`` does only what any real-time scorer must:
one SQL lookup of the entities' rows in fti's online table (``online_rows``: the same rows fti
serves), the rows' JSON values into a DataFrame of the model's features, and ``predict_proba``
of the same estimator (the registered skops artifact). No auth, no alias, no staleness, no
lineage, no metrics. Started by the benchmark as
``uvicorn --app-dir benchmarks serving_baseline:app`` with its settings in the environment:

- ``BENCH_DB``: the SQLite file of the FTI home;
- ``BENCH_ARTIFACT``: the model's skops file;
- ``BENCH_FEATURES``: JSON ``[[group, feature], ...]`` in the model's (training) order.

One OpenMP thread (``OMP_NUM_THREADS=1`` unless set, before scikit-learn loads): a request
scores a few rows, and the gradient-boosting model's default of one thread per core made one
row's ``predict_proba`` take 120-175 ms p50 (p99 2.6-3.2 s) instead of ~20 ms on this 2-core
machine under load (OpenMP's threads wait for each other at every barrier).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pandas as pd  # noqa: E402
import skops.io as sio  # noqa: E402
from fastapi import FastAPI  # noqa: E402
from pydantic import BaseModel  # noqa: E402

DB = os.environ["BENCH_DB"]
FEATURES: list[tuple[str, str]] = [tuple(f) for f in json.loads(os.environ["BENCH_FEATURES"])]
GROUPS = sorted({group for group, _ in FEATURES})
NAMES = [name for _, name in FEATURES]


def _load_model(path: str) -> Any:
    data = open(path, "rb").read()  # noqa: SIM115 - read once at start
    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


MODEL = _load_model(os.environ["BENCH_ARTIFACT"])
_local = threading.local()


def _connection() -> sqlite3.Connection:
    """One read-only connection per worker thread (sqlite3 connections are per thread)."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
        _local.connection = connection
    return connection


def _positions() -> dict[str, dict[str, int]]:
    """Each group's feature -> index in its rows' JSON values (``online_state.schema``)."""
    found: dict[str, dict[str, int]] = {}
    connection = sqlite3.connect(f"file:{DB}?mode=ro", uri=True)
    for group, key, schema in connection.execute(
        "SELECT group_name, entity_key, schema FROM online_state"
    ):
        columns = [c for c in json.loads(schema)["columns"] if c != key]
        found[group] = {name: i for i, name in enumerate(columns)}
    connection.close()
    missing = [g for g in GROUPS if g not in found]
    if missing:
        raise SystemExit(f"online_state has no row for {missing}: materialise the groups first")
    return found


POSITIONS = _positions()
PICK = [(group, POSITIONS[group][name]) for group, name in FEATURES]

app = FastAPI()


class Body(BaseModel):
    entities: list[str]


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
def predict(body: Body) -> dict[str, Any]:
    marks = ",".join("?" * len(body.entities))
    rows = _connection().execute(
        f"SELECT group_name, entity_key, feature_values FROM online_rows "  # noqa: S608 - marks only
        f"WHERE group_name IN ({','.join('?' * len(GROUPS))}) AND entity_key IN ({marks})",
        [*GROUPS, *body.entities],
    )
    values: dict[tuple[str, str], list[Any]] = {
        (group, key): json.loads(text) for group, key, text in rows
    }
    found = [e for e in body.entities if all((g, e) in values for g in GROUPS)]
    frame = pd.DataFrame(
        [[values[(group, e)][at] for group, at in PICK] for e in found], columns=NAMES
    )
    positive = MODEL.predict_proba(frame)[:, 1] if found else []
    return {
        "predictions": [
            {"entity": e, "prediction": int(p >= 0.5), "probability": float(p)}
            for e, p in zip(found, positive, strict=True)
        ],
        "not_found": [e for e in body.entities if e not in set(found)],
    }
