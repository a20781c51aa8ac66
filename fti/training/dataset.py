"""Point-in-time correct training sets: a label group version joined with feature group versions.

Label rows come from the feature store (a label group version), sampled every
``label_every_days`` over the model's training span (and, past the model's
``max_training_rows``, for a sample of its entities: ``sampled_slots``); each of the model's
feature groups joins them point in time on the entity (its newest row at or before the label
date, at most its TTL old; only those partitions are read). Rows without a row of the model's spine group (its first group) are left out, as are
rows whose label is null (not knowable).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
import pyarrow as pa

from fti.definitions import (
    LABEL,
    LABEL_DATE,
    AnyGroup,
    Entity,
    Model,
    ModelFeature,
    Project,
    ReadGroup,
    ReadLabelGroup,
)
from fti.errors import FtiError
from fti.features.shards import SLOTS, slots_of
from fti.read_groups import read_problems
from fti.store.newest import Taken, days_of
from fti.store.statistics import schema_of
from fti.store.versions import DATE_COLUMN, FeatureStore
from fti.training.pit import point_in_time_join


@dataclass(frozen=True)
class TrainingSet:
    frame: pd.DataFrame  # entity key, label_date, label, then the feature columns
    model: str
    feature_versions: dict[str, int]  # group -> version, spine first
    label_group: str
    label_version: int
    feature_dtypes: dict[str, str]  # every feature column read -> Arrow type
    feature_groups: dict[str, str]  # every feature column read -> its group
    train_dates: list[date]
    holdout_dates: list[date]

    @property
    def train(self) -> pd.DataFrame:
        return self.frame[self.frame[LABEL_DATE].isin(self.train_dates)]

    @property
    def holdout(self) -> pd.DataFrame:
        return self.frame[self.frame[LABEL_DATE].isin(self.holdout_dates)]


def matured_label_dates(
    model: Model, as_of: date, available: Sequence[date], warm_until: date | None
) -> list[date]:
    """Label dates known by ``as_of``, every ``label_every_days`` back over the training span.

    Dates before ``warm_until`` are left out: the spine group's windows reach back before
    its data begins there, so their features are not like later ones (training on them would
    teach the model, and its drift reference, a warm-up period).
    """
    newest = as_of - timedelta(days=model.label.horizon_days)
    oldest = newest - timedelta(days=model.training_days)
    if warm_until is not None:
        oldest = max(oldest, warm_until)
    have = set(available)
    dates = []
    day = newest
    while day >= oldest:
        if day in have:
            dates.append(day)
        day -= timedelta(days=model.label_every_days)
    return sorted(dates)


def split_dates(dates: list[date], holdout_share: float) -> tuple[list[date], list[date]]:
    """Time-based holdout: the newest share of label dates."""
    holdout = max(1, math.ceil(len(dates) * holdout_share))
    return dates[:-holdout], dates[-holdout:]


def build_training_set(
    store: FeatureStore,
    project: Project,
    model: Model,
    feature_versions: Mapping[str, int],
    label_version: int,
    as_of: date,
    chosen: Sequence[ModelFeature],
) -> TrainingSet:
    """Label rows of the matured dates joined point in time with every group's features.

    ``feature_versions`` maps each group to read (spine first) to its version. ``chosen`` are
    the features the run trains on; the other declared features of those groups are read too
    (the promotion gate scores the champion on its own features from the same rows), unless
    a column of that name is already taken.

    Raises:
        FtiError: a version of a group it reads lacks (or retyped) a declared column; too
            few label dates, or fewer training / holdout rows than the model's
            minimum (the message names the numbers and what to change).
    """
    groups = list(feature_versions)
    spine = project.readable_feature_group(groups[0])
    label = model.label
    for name, version in feature_versions.items():
        check_read_version(store, model, project.readable_group(name), version)
    check_read_version(store, model, label, label_version)
    spine_dates = store.partition_dates(spine.name, feature_versions[spine.name])
    warm_until = min(spine_dates) + timedelta(days=spine.lookback_days) if spine_dates else None
    available = store.partition_dates(label.name, label_version)
    dates = matured_label_dates(model, as_of, available, warm_until)
    if len(dates) < 2:
        raise FtiError(
            f"model {model.name!r}: {label.name} v{label_version} holds {len(dates)} label "
            f"date(s) usable as of {as_of} (labels mature after {label.horizon_days} days; "
            f"{spine.name}'s first {spine.lookback_days} days warm up; one date every "
            f"{model.label_every_days} days over {model.training_days} days); at least 2 are "
            "needed. Publish more history first (`fti features run --start ... --end ...`)."
        )
    kept = sampled_slots(store, label.name, label_version, dates, model.max_training_rows)
    labels = (
        read_entities(store, label.name, label_version, [LABEL], dates, label.entity, kept)
        .to_pandas()
        .rename(columns={DATE_COLUMN: LABEL_DATE})
    )
    labels = labels[labels[LABEL].notna()].reset_index(drop=True)
    if pd.api.types.is_bool_dtype(labels[LABEL]) or pd.api.types.is_integer_dtype(labels[LABEL]):
        labels[LABEL] = labels[LABEL].astype("int64")  # nulls are gone: plain 0/1, 0..k
    owner = {f.name: f.group for f in chosen}
    taken: set[str] = set(labels.columns)
    parts, dtypes, owners = [], {}, {}
    for name in groups:
        group = project.readable_feature_group(name)
        version = feature_versions[name]
        ttl = int(model.ttl.get(name, 0))
        schema = store.schema(name, version)
        columns = [
            f
            for f in group.features
            if f in schema.names and owner.get(f, name) == name and f not in taken
        ]
        taken.update(columns)
        rows = newest_in_windows(
            partition_reader(store, name, version, columns, group.entity, kept),
            set(store.partition_dates(name, version)),
            dates,
            ttl,
            group.entity.key,
        )
        if rows is None:
            read = [group.entity.key, DATE_COLUMN, *columns]
            rows = pa.schema([schema.field(c) for c in read]).empty_table()
        for field in rows.schema:
            if field.name in columns:
                dtypes[field.name], owners[field.name] = str(field.type), name
        parts.append((rows.to_pandas(), ttl))
    frame = join_groups(labels, spine.entity.key, parts)
    train_dates, holdout_dates = split_dates(dates, model.holdout_share)
    training = TrainingSet(
        frame=frame,
        model=model.name,
        feature_versions=dict(feature_versions),
        label_group=label.name,
        label_version=label_version,
        feature_dtypes=dtypes,
        feature_groups=owners,
        train_dates=train_dates,
        holdout_dates=holdout_dates,
    )
    check_size(model, training)
    return training


def check_read_version(store: FeatureStore, model: Model, group: AnyGroup, version: int) -> None:
    """Refuse to train on a version of a group the project reads (from another project)
    whose declared columns are gone or retyped: one line each, naming the model.

    Raises:
        FtiError: what of the declaration ``version`` does not hold.
    """
    if not isinstance(group, ReadGroup | ReadLabelGroup):
        return
    schema = schema_of(store.schema(group.name, version))
    problems = read_problems(group, [model.name], version, group.kind, schema, which="version")
    if problems:
        raise FtiError("; ".join(problems))


def sampled_slots(
    store: FeatureStore, label: str, version: int, dates: Sequence[date], max_rows: int | None
) -> int | None:
    """How many entity slots (of ``SLOTS``) a training set keeps so that its label rows stay
    within ``max_rows``: None (every entity) when they fit. Entities are sampled by the stable
    hash of their key (``fti.features.shards``), so an entity is in every label date of the
    set or in none, and a rebuild (the promotion gate's shared holdout) samples the same ones.
    """
    if max_rows is None:
        return None
    rows = store.scanner(label, version, [DATE_COLUMN], dates=dates).count_rows()
    if rows <= max_rows:
        return None
    return max(1, SLOTS * max_rows // rows)


def read_entities(
    store: FeatureStore,
    group: str,
    version: int,
    columns: Sequence[str],
    dates: Sequence[date],
    entity: Entity,
    kept: int | None,
) -> pa.Table:
    """A version's ``columns`` (after the entity key and date) of ``dates``, of the entities
    in the first ``kept`` slots only (all of them when None), read batch by batch so that
    memory follows the sample, not the version."""
    read = [entity.key, DATE_COLUMN, *columns]
    if kept is None:
        return store.read(group, version, read, dates=dates)
    batches = [
        batch.filter(slots_of(batch.column(entity.key), entity.dtype) < kept)
        for batch in store.scanner(group, version, read, dates=dates).to_batches()
    ]
    schema = store.schema(group, version)
    return pa.Table.from_batches(batches, pa.schema([schema.field(c) for c in read]))


def partition_reader(
    store: FeatureStore,
    group: str,
    version: int,
    columns: Sequence[str],
    entity: Entity,
    kept: int | None,
) -> Callable[[date], pa.Table]:
    """``read(day)``: a partition of the version, as ``read_entities`` reads it."""
    return lambda day: read_entities(store, group, version, columns, [day], entity, kept)


def newest_in_windows(
    read: Callable[[date], pa.Table],
    available: Collection[date],
    dates: Sequence[date],
    ttl: int,
    key: str,
) -> pa.Table | None:
    """The rows a point-in-time join with ``ttl`` days can give the label rows of ``dates``:
    for each label date, each entity's newest row of [date - ttl, date], without repeats.

    ``read(day)``: a partition's rows (``key``, the feature date, features), for the days of
    ``available``. Joining the label rows with these gives what joining them with every row
    of those partitions gives (a label row's newest row within its TTL is one of these, and
    none of these is newer), but memory follows the label rows and one partition, not ttl + 1
    partitions per label date. With ``ttl`` 0 a label date's partition is read as it is.
    None when no partition is available.
    """
    found: list[pa.Table] = []
    for day in sorted(dates):
        if ttl == 0:
            if day in available:
                found.append(read(day))
            continue
        taken = Taken()  # partitions newest first: an entity's first row found is its newest
        for partition in (day - timedelta(days=back) for back in range(ttl + 1)):
            if partition in available:
                found.append(taken.newest_of_the_rest(read(partition), key))
    if not found:
        return None
    table = pa.concat_tables(found)
    if ttl == 0:
        return table
    # Windows that overlap give a row once per label date: keep it once.
    frame = pd.DataFrame({"k": table.column(key).to_numpy(zero_copy_only=False)})
    frame["d"] = days_of(table)
    return table.filter(pa.array(~frame.duplicated(["k", "d"]).to_numpy()))


def join_groups(
    labels: pd.DataFrame, key: str, groups: Sequence[tuple[pd.DataFrame, int]]
) -> pd.DataFrame:
    """Label rows (``key``, label_date, label) with each group's features, point in time.

    Each group (rows of ``key``, ``feature_date`` and its columns; a TTL in days) gives every
    label row its newest row at or before the label date and at most TTL days older (0: the
    same date); a label row without such a row of the first group (the spine) is left out,
    other groups leave nulls. Scoring joins the same way (fti.inference.features).
    """
    frame = labels
    for number, (rows, ttl) in enumerate(groups):
        joined = point_in_time_join(
            frame, rows, key, LABEL_DATE, DATE_COLUMN, ttl=timedelta(days=ttl)
        )
        if number == 0:
            joined = joined[joined[DATE_COLUMN].notna()]
        frame = joined.drop(columns=[DATE_COLUMN]).reset_index(drop=True)
    return frame


class TooFewRows(FtiError):
    """A training window yields too few rows to train or to judge a model."""


def check_size(model: Model, training: TrainingSet) -> None:
    """Refuse a window that yields too few rows to train or to judge a model."""
    n_train, n_holdout = len(training.train), len(training.holdout)
    if n_train < model.min_train_rows or n_holdout < model.min_holdout_rows:
        raise TooFewRows(
            f"model {model.name!r}: the training window yields {n_train} training row(s) "
            f"over {len(training.train_dates)} label date(s) and {n_holdout} holdout row(s) "
            f"over {len(training.holdout_dates)}; at least {model.min_train_rows} and "
            f"{model.min_holdout_rows} are needed (min_train_rows / min_holdout_rows). "
            "Widen training_days, lower label_every_days, or publish more history."
        )
