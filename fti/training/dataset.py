"""Point-in-time correct training sets from matured labels and one feature version."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

from fti.errors import FtiError
from fti.project import Project
from fti.store.versions import DATE_COLUMN, FeatureStore
from fti.training.pit import point_in_time_join

LABEL_DATE = "label_date"
LABEL = "label"


@dataclass(frozen=True)
class TrainingSet:
    frame: pd.DataFrame  # entity, label_date, label, feature_date, features...
    feature_version: int
    feature_dtypes: dict[str, str]
    train_dates: list[date]
    holdout_dates: list[date]

    @property
    def train(self) -> pd.DataFrame:
        return self.frame[self.frame[LABEL_DATE].isin(self.train_dates)]

    @property
    def holdout(self) -> pd.DataFrame:
        return self.frame[self.frame[LABEL_DATE].isin(self.holdout_dates)]


def matured_label_dates(project: Project, as_of: date, available: list[date]) -> list[date]:
    """Label dates whose label is known by ``as_of``: every N days back over the training span.

    Dates within the feature group's look-back of its first partition are left out: their
    windows reach back before the data begins, so their features are not like later ones
    (training on them would teach the model, and its drift reference, a warm-up period).
    """
    spec = project.model
    newest = as_of - timedelta(days=project.label.horizon_days)
    oldest = newest - timedelta(days=spec.training_days)
    if available:
        oldest = max(oldest, min(available) + timedelta(days=project.feature_group.lookback_days))
    have = set(available)
    dates = []
    day = newest
    while day >= oldest:
        if day in have:
            dates.append(day)
        day -= timedelta(days=spec.label_every_days)
    return sorted(dates)


def split_dates(dates: list[date], holdout_share: float) -> tuple[list[date], list[date]]:
    """Time-based holdout: the newest share of label dates."""
    holdout = max(1, math.ceil(len(dates) * holdout_share))
    return dates[:-holdout], dates[-holdout:]


def build_training_set(
    store: FeatureStore, project: Project, feature_version: int, as_of: date, events: pd.DataFrame
) -> TrainingSet:
    """Label each active entity at each matured label date and join its features as of then.

    Raises:
        FtiError: too few matured label dates in the feature version to train and evaluate.
    """
    group = project.feature_group
    available = store.partition_dates(group.name, feature_version)
    dates = matured_label_dates(project, as_of, available)
    if len(dates) < 2:
        raise FtiError(
            f"{group.name} v{feature_version} holds {len(dates)} matured label date(s) for training as "
            f"of {as_of} (labels mature after {project.label.horizon_days} days, and the first "
            f"{project.feature_group.lookback_days} days of features warm up); at least 2 are needed. "
            "Publish more feature history first (`fti features run --start ... --end ...`)."
        )
    # Every feature column: a model may use any of them, and the promotion gate scores the
    # champion on its own features from these same rows.
    table = store.read(group.name, feature_version, dates=dates)
    features = table.to_pandas()
    keys = features[[group.entity, DATE_COLUMN]].rename(columns={DATE_COLUMN: LABEL_DATE})
    keys[LABEL] = project.label.build(events, keys).to_numpy()
    frame = point_in_time_join(keys, features, group.entity, LABEL_DATE, DATE_COLUMN)
    frame = frame.dropna(subset=[DATE_COLUMN]).reset_index(drop=True)
    train_dates, holdout_dates = split_dates(dates, project.model.holdout_share)
    dtypes = {
        f.name: str(f.type) for f in table.schema if f.name not in (group.entity, DATE_COLUMN)
    }
    return TrainingSet(frame, feature_version, dtypes, train_dates, holdout_dates)
