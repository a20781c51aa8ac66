"""Reading what a realized figure is computed from: the scores a model's versions wrote for a
date (served and shadow) and the labels a label group version holds for it; and pooling them
over several dates (``pool_rows``), one date at a time, so a figure over a window is the
metric of the window's rows."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import ModelVersion, Prediction, ShadowPrediction
from fti.definitions import LABEL, Project
from fti.errors import FtiError
from fti.monitoring.realized._score import Pool
from fti.store.versions import DATE_COLUMN, FeatureStore
from fti.training.artifacts import load_artifact

log = logging.getLogger(__name__)

_SCORE_COLUMNS = (
    Prediction.entity_id,
    Prediction.model_version,
    Prediction.run_id,
    Prediction.scored_at,
    Prediction.prediction,
    Prediction.probability,
    Prediction.value,
    Prediction.predicted_class,
    Prediction.class_probabilities,
)


class LabelReader:
    """The labels of a date in a label group version, as (entity_id, label), read from
    ``store``; ``keys``: each label group's entity key column (``from_project``)."""

    def __init__(self, store: FeatureStore, keys: Mapping[str, str]) -> None:
        self.store, self.keys = store, dict(keys)
        self._last: tuple[tuple[str, int, date], pd.DataFrame] | None = None

    @classmethod
    def from_project(cls, store: FeatureStore, project: Project) -> LabelReader:
        return cls(
            store, {g.name: g.entity.key for g in project.readable_groups if g.kind == "labels"}
        )

    def __call__(self, label_group: str, version: int, day: date) -> pd.DataFrame:
        key = (label_group, version, day)
        if self._last is None or self._last[0] != key:  # the versions of a date share them
            self._last = (
                key,
                read_labels(self.store, label_group, version, self.keys[label_group], day),
            )
        return self._last[1]


def read_labels(
    store: FeatureStore, label_group: str, version: int, key: str, day: date
) -> pd.DataFrame:
    """The day's labels as (entity_id, label): the key as text, as predictions hold it."""
    table = store.read(label_group, version, [key, DATE_COLUMN, LABEL], dates=[day])
    frame = pd.DataFrame(
        {
            "entity_id": pc.cast(table.column(key), pa.string()).to_pandas(),
            LABEL: table.column(LABEL).to_pandas(),
        }
    )
    frame = frame[frame[LABEL].notna()]
    if pd.api.types.is_bool_dtype(frame[LABEL]) or pd.api.types.is_integer_dtype(frame[LABEL]):
        frame[LABEL] = frame[LABEL].astype("int64")  # as training casts them
    return frame.drop_duplicates("entity_id", keep="last").reset_index(drop=True)


def read_scores(session: Session, model: str, day: date) -> dict[int, pd.DataFrame]:
    """The scores written for ``model`` on ``day``, per model version: the served slice's
    (``alias`` None) and the shadow slices' (``alias`` the one they were scored by)."""
    served = session.execute(
        select(*_SCORE_COLUMNS).where(Prediction.model_name == model, Prediction.as_of_date == day)
    ).all()
    shadow_columns = [getattr(ShadowPrediction, c.key) for c in _SCORE_COLUMNS]
    shadow = session.execute(
        select(*shadow_columns, ShadowPrediction.alias).where(
            ShadowPrediction.model_name == model, ShadowPrediction.as_of_date == day
        )
    ).all()
    names = [c.key for c in _SCORE_COLUMNS]
    found: dict[int, pd.DataFrame] = {}
    for rows, columns in ((served, [*names]), (shadow, [*names, "alias"])):
        frame = pd.DataFrame(rows, columns=columns)
        if "alias" not in frame:
            frame["alias"] = None
        for version, part in frame.groupby("model_version"):
            found.setdefault(int(version), part.reset_index(drop=True))  # served slice first
    return found


def load_estimator(row: ModelVersion) -> Any:
    """The version's fitted classifier (its ``classes_`` say what the stored scores mean);
    None for a regressor. Raises FtiError when the artifact cannot be loaded."""
    return None if row.task == "regression" else _artifact(row.artifact_uri, row.artifact_sha256)


@lru_cache(maxsize=8)
def _artifact(uri: str, sha256: str) -> Any:
    """A content-addressed artifact, loaded once for the dates of a run (never modified)."""
    return load_artifact(Path(uri), sha256)


def pool_rows(
    session: Session,
    model: str,
    recorded: Iterable[dict[str, Any]],
    labels: LabelReader,
) -> dict[int, Pool]:
    """The rows behind ``recorded`` (``realized_rows`` dicts of ``model``) pooled per version:
    each (version, date)'s scores joined with the labels of the label group version that
    recorded it, read one date at a time. A version whose artifact cannot be loaded is left
    out with a warning; a slice whose scores are gone (the date scored again by another
    version since) adds nothing but its date to the pool's ``gone``."""
    by_day: dict[str, list[dict[str, Any]]] = {}
    for row in recorded:
        by_day.setdefault(row["as_of_date"], []).append(row)
    numbers = sorted({r["model_version"] for rows in by_day.values() for r in rows})
    registered = {
        v.version: v
        for v in session.scalars(
            select(ModelVersion).where(
                ModelVersion.name == model, ModelVersion.version.in_(numbers)
            )
        )
    }
    pools: dict[int, Pool] = {}
    for number, version in sorted(registered.items()):
        try:
            estimator = load_estimator(version)
        except FtiError as exc:
            log.warning("realized %s of %s v%s not pooled: %s", version.metric, model, number, exc)
            continue
        classes = None if estimator is None else estimator.classes_
        pools[number] = Pool(version.task, version.metric, classes)
    for day, rows in sorted(by_day.items()):
        scores = read_scores(session, model, date.fromisoformat(day))
        for row in rows:
            pool, frame = pools.get(row["model_version"]), scores.get(row["model_version"])
            if pool is not None and frame is None:
                pool.gone.append(date.fromisoformat(day))
            elif pool is not None and frame is not None:
                found = labels(row["label_group"], row["label_version"], date.fromisoformat(day))
                pool.add(frame, found)
    return pools
