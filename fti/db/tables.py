"""SQLAlchemy 2 table definitions. Alembic migrations in ``migrations/`` create them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
    false,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class FeatureVersion(Base):
    """The catalog: one row per published, immutable version of a feature or label group."""

    __tablename__ = "feature_versions"
    __table_args__ = (UniqueConstraint("group_name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    # "features" (model inputs) or "labels" (a label group: training targets, never served).
    kind: Mapped[str] = mapped_column(String(20), default="features", server_default="features")
    git_tag: Mapped[str] = mapped_column(String(250))
    git_rev: Mapped[str] = mapped_column(String(64))
    dvc_md5: Mapped[str] = mapped_column(String(64))
    schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    schema_hash: Mapped[str] = mapped_column(String(64))
    row_count: Mapped[int] = mapped_column(Integer)
    partitions: Mapped[int] = mapped_column(Integer)
    min_date: Mapped[date | None] = mapped_column(Date)
    max_date: Mapped[date | None] = mapped_column(Date)
    statistics: Mapped[dict[str, Any]] = mapped_column(JSON)  # merged over all partitions
    # Statistics of the partitions this version wrote ({date: stats}); later versions merge them.
    # Retention (fti.retention.store) adds those of the dropped versions just before it.
    partition_statistics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    changed_dates: Mapped[list[Any]] = mapped_column(JSON)
    run_id: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Whether the version's git tag exists: a publish writes its row untagged, then tags the
    # version, then marks the row (fti.store.tagged). Readers see tagged rows only.
    tagged: Mapped[bool] = mapped_column(Boolean, server_default=true())


class Owner(Base):
    """Which project owns a name: a source, a feature or label group, or a model.

    Claimed in the transaction of the name's first write (fti.ownership): a source at its
    validation, a group at its publish, a model at its registration. Another project may read
    what it does not own, never write it.
    """

    __tablename__ = "owners"
    __table_args__ = (
        PrimaryKeyConstraint("kind", "name"),
        Index("ix_owners_project", "project"),
    )

    # "source", "features" or "labels" (as ``FeatureVersion.kind``), or "model".
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str] = mapped_column(String(200))
    project: Mapped[str] = mapped_column(String(200))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    run_id: Mapped[str] = mapped_column(String(250))  # the run whose write claimed it


class ValidationRun(Base):
    """Accounting of the latest validation of one raw file.

    ``status`` ``accepted``: rows read = rows accepted + rows quarantined, and
    ``rows_readmitted`` of the accepted rows came from a re-admission (fti.features.quarantine).
    ``rejected``: the file was not used (``reason`` says why); nothing of it is staged,
    ``rows_read`` is null when the file could not be read, ``rows_quarantined`` counts the bad
    rows found and ``quarantined_rows`` holds a sample of them.
    """

    __tablename__ = "validation_runs"
    __table_args__ = (UniqueConstraint("source", "file"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    file: Mapped[str] = mapped_column(String(500))
    logical_date: Mapped[date] = mapped_column(Date)
    rows_read: Mapped[int | None] = mapped_column(Integer)
    rows_accepted: Mapped[int] = mapped_column(Integer)
    rows_quarantined: Mapped[int] = mapped_column(Integer)
    run_id: Mapped[str] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Added by migration 0008.
    status: Mapped[str] = mapped_column(String(20), server_default="accepted")
    reason: Mapped[str | None] = mapped_column(Text)
    rows_readmitted: Mapped[int] = mapped_column(Integer, server_default="0")


class QuarantinedRow(Base):
    """A raw row set aside by validation, with the rule it broke and its original values.

    Ids are never handed out twice (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so an
    id in an old export never names another row.
    """

    __tablename__ = "quarantined_rows"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    validation_run_id: Mapped[int] = mapped_column(
        ForeignKey("validation_runs.id", ondelete="CASCADE"), index=True
    )
    file: Mapped[str] = mapped_column(String(500))
    row_number: Mapped[int] = mapped_column(Integer)
    column: Mapped[str] = mapped_column(String(200))
    rule: Mapped[str] = mapped_column(String(500))
    raw_values: Mapped[dict[str, Any]] = mapped_column(JSON)


class Readmission(Base):
    """A quarantined row fixed by hand and re-admitted: applied again whenever its day is
    validated, as long as the raw file still holds the original at that line.

    ``original``: the line's raw values in the file (``{"line": text}`` for a line that could
    not be split into fields); ``fixed``: the values re-admitted in its place. ``status``:
    ``applied``, or ``stale`` when the latest validation found the raw line changed.
    """

    __tablename__ = "readmissions"
    __table_args__ = (UniqueConstraint("source", "logical_date", "row_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    logical_date: Mapped[date] = mapped_column(Date)
    file: Mapped[str] = mapped_column(String(500))
    row_number: Mapped[int] = mapped_column(Integer)
    quarantine_id: Mapped[int] = mapped_column(Integer, index=True)  # the row re-admitted
    original: Mapped[dict[str, Any]] = mapped_column(JSON)
    fixed: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20))
    readmitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RetiredQuarantineIds(Base):
    """The ids a replaced validation of a file had given its quarantined rows: an old export
    that names them is told to export again."""

    __tablename__ = "retired_quarantine_ids"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(200))
    file: Mapped[str] = mapped_column(String(500))
    first_id: Mapped[int] = mapped_column(Integer, index=True)
    last_id: Mapped[int] = mapped_column(Integer)
    retired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ModelVersion(Base):
    """A trained model with everything needed to reproduce and serve it."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    version: Mapped[int] = mapped_column(Integer)
    artifact_uri: Mapped[str] = mapped_column(String(1000))
    artifact_sha256: Mapped[str] = mapped_column(String(64))
    estimator: Mapped[str] = mapped_column(String(500))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    task: Mapped[str] = mapped_column(String(20))  # binary | multiclass | regression
    metric: Mapped[str] = mapped_column(String(100))  # the metric the promotion gate compares
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    # The spine: the first of the model's feature groups (its rows are the rows scored).
    feature_group: Mapped[str] = mapped_column(String(200))
    feature_version: Mapped[int] = mapped_column(Integer)
    # Every feature group the model reads, spine included: {group: version}.
    feature_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    # [{"name":..., "dtype":..., "group":...}, ...] in the estimator's column order.
    features: Mapped[list[Any]] = mapped_column(JSON)
    label: Mapped[str] = mapped_column(String(200))
    # The label group in the store the label came from (None: the label was a feature column).
    label_group: Mapped[str | None] = mapped_column(String(200))
    label_version: Mapped[int | None] = mapped_column(Integer)
    train_start: Mapped[date] = mapped_column(Date)
    train_end: Mapped[date] = mapped_column(Date)
    n_train: Mapped[int] = mapped_column(Integer)
    n_holdout: Mapped[int] = mapped_column(Integer)
    library_versions: Mapped[dict[str, Any]] = mapped_column(JSON)
    code_version: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str] = mapped_column(String(250))
    promotion: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # the gate's decision and scores
    # Per-feature statistics of the training rows (fti.store.statistics): the skew guard's range.
    training_statistics: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Training bins of each feature and of the holdout probabilities (fti.monitoring.drift).
    drift_reference: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When retention (fti gc) removed the artifact; the row stays (migration 0014).
    pruned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ModelAlias(Base):
    """Which version of a model an alias (``champion``, ...) points at now."""

    __tablename__ = "model_aliases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alias: Mapped[str] = mapped_column(String(100), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AliasEvent(Base):
    """Append-only history of alias changes: who pointed what where, when and why."""

    __tablename__ = "alias_events"
    __table_args__ = (Index("ix_alias_events_name_alias_at", "name", "alias", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    alias: Mapped[str] = mapped_column(String(100))
    from_version: Mapped[int | None] = mapped_column(Integer)
    to_version: Mapped[int] = mapped_column(Integer)
    actor: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    run_id: Mapped[str | None] = mapped_column(String(250))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class PredictionRun(Base):
    """One batch-inference run for (model, as-of date)."""

    __tablename__ = "prediction_runs"

    run_id: Mapped[str] = mapped_column(String(250), primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    # None until resolved: a run that fails on "no champion" or "no features" is still recorded.
    model_version: Mapped[int | None] = mapped_column(Integer)
    feature_group: Mapped[str | None] = mapped_column(String(200))  # the model's spine group
    feature_version: Mapped[int | None] = mapped_column(Integer)
    # Every feature group the run read: {group: version} (None until resolved).
    feature_versions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    as_of_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # running, succeeded, failed
    row_count: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    error: Mapped[str | None] = mapped_column(Text)
    # Set when Airflow ran it: the DAG run's id and logical date (None from the CLI).
    airflow_run_id: Mapped[str | None] = mapped_column(String(250))
    logical_date: Mapped[date | None] = mapped_column(Date)
    # Skew guard findings: features all null or far outside their training range (see skew.py).
    warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    # True when a feature's or the prediction's drift passed its threshold (see drift_results).
    drift_breached: Mapped[bool | None] = mapped_column(Boolean)
    # What its drift was judged on: {"days": N (monitor.window_days), "dates": [as-of dates
    # pooled, this run's last], "rows": scored rows pooled}. Migration 0013.
    drift_window: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class Prediction(Base):
    """One score: exactly one per (entity, model, as-of date), its key.

    What a score holds depends on the model's task:

    - binary: ``prediction`` 0/1 and ``probability`` of class 1;
    - multiclass: ``predicted_class`` (as text), ``probability`` of that class and
      ``class_probabilities`` ({class: probability}); ``prediction`` is None;
    - regression: ``value``; ``prediction`` and ``probability`` are None.

    On PostgreSQL the table is partitioned by slice, (model, as-of date): one partition per
    slice, replaced whole by fti.inference.write (migration 0006 holds the DDL).
    """

    __tablename__ = "predictions"
    __table_args__ = (
        # Entity first: it also serves a customer's scores (and sorts fast when a slice is keyed).
        PrimaryKeyConstraint("entity_id", "model_name", "as_of_date", name="pk_predictions"),
        Index(
            "ix_predictions_day_risk", "model_name", "as_of_date", "probability"
        ),  # top-N of a day
        {"postgresql_partition_by": "RANGE (model_name, as_of_date)"},
    )

    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    feature_group: Mapped[str] = mapped_column(String(200))
    feature_version: Mapped[int] = mapped_column(Integer)
    entity_id: Mapped[str] = mapped_column(String(200))
    as_of_date: Mapped[date] = mapped_column(Date)
    prediction: Mapped[int | None] = mapped_column(Integer)
    probability: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[str] = mapped_column(String(250))
    airflow_run_id: Mapped[str | None] = mapped_column(String(250))
    logical_date: Mapped[date | None] = mapped_column(Date)
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Added by migration 0007, after the columns above (the order of the table on PostgreSQL).
    value: Mapped[float | None] = mapped_column(Float)
    predicted_class: Mapped[str | None] = mapped_column(String(200))
    class_probabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class DriftResult(Base):
    """Drift of one feature (or of the prediction) in one scoring run against training."""

    __tablename__ = "drift_results"
    __table_args__ = (UniqueConstraint("run_id", "feature", name="uq_drift_results_run_feature"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[str] = mapped_column(
        String(250), ForeignKey("prediction_runs.run_id", ondelete="CASCADE")
    )
    feature: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # feature | prediction
    psi: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float)  # chi-square test of the binned samples
    breached: Mapped[bool] = mapped_column(Boolean)
    bins: Mapped[list[Any]] = mapped_column(JSON)  # bin labels
    expected: Mapped[list[Any]] = mapped_column(JSON)  # training counts per bin
    # Scored counts per bin judged: this run's and those of the earlier dates its window pooled
    # (prediction_runs.drift_window).
    observed: Mapped[list[Any]] = mapped_column(JSON)
    # This run's own scored counts per bin (what a later run's window pools); None before 0013,
    # when ``observed`` was the run's own. Migration 0013.
    run_observed: Mapped[list[Any] | None] = mapped_column(JSON)


class OnlineRow(Base):
    """The online store: each entity's newest row of a feature group's version online.

    ``entity_key`` is the key as text (int64 keys as their decimal digits); ``feature_values``
    the row's feature values as a JSON array in the order of the group's online schema
    (``OnlineState.schema``), with dates and times as their Arrow integer storage, so a reader
    rebuilds them with the published types (fti.online.codec). ``version``: the version the
    row was written from (a later version that keeps the entity's newest row does not rewrite
    it); ``row_hash`` tells a materialisation which rows changed. Migration 0009.
    """

    __tablename__ = "online_rows"
    __table_args__ = (
        PrimaryKeyConstraint("group_name", "entity_key", name="pk_online_rows"),
        # The rows whose partition a new version may have replaced: feature_date >= its first.
        Index("ix_online_rows_group_date", "group_name", "feature_date"),
        {"sqlite_with_rowid": False},
    )

    group_name: Mapped[str] = mapped_column(String(200))
    entity_key: Mapped[str] = mapped_column(Text)
    feature_date: Mapped[date] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer)
    row_hash: Mapped[int] = mapped_column(BigInteger)
    feature_values: Mapped[str] = mapped_column(Text)


class OnlineState(Base):
    """Which version of a feature group the online store holds, written in the transaction
    that writes its rows (a reader reads both in one snapshot)."""

    __tablename__ = "online_state"

    group_name: Mapped[str] = mapped_column(String(200), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)
    entity_key: Mapped[str] = mapped_column(String(200))  # the key column's name
    # {"columns": {name: type}, "arrow": base64 Arrow schema}: the entity key and the features
    # in the order of ``OnlineRow.feature_values`` (fti.store.layout.schema_to_json).
    schema: Mapped[dict[str, Any]] = mapped_column(JSON)
    schema_hash: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(Integer)  # entities held
    rows_written: Mapped[int] = mapped_column(Integer)  # by the last materialisation
    rows_deleted: Mapped[int] = mapped_column(Integer)
    materialised_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ServedPrediction(Base):
    """A prediction served on request (``fti serve``'s optional request log), with the lineage
    columns of ``predictions`` so monitoring compares served and batch scores."""

    __tablename__ = "served_predictions"
    __table_args__ = (
        Index("ix_served_predictions_model_at", "model_name", "served_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    request_id: Mapped[str] = mapped_column(String(100))
    served_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    entity_id: Mapped[str] = mapped_column(String(200))
    prediction: Mapped[int | None] = mapped_column(Integer)
    probability: Mapped[float | None] = mapped_column(Float)
    value: Mapped[float | None] = mapped_column(Float)
    predicted_class: Mapped[str | None] = mapped_column(String(200))
    class_probabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    feature_group: Mapped[str] = mapped_column(String(200))  # the model's spine group
    feature_version: Mapped[int] = mapped_column(Integer)
    feature_versions: Mapped[dict[str, Any]] = mapped_column(JSON)  # {group: version} served
    feature_date: Mapped[date | None] = mapped_column(Date)  # the spine row's date
    stale: Mapped[bool] = mapped_column(Boolean, server_default=false())


class ShadowPrediction(Base):
    """A score of a shadow-scored version (the ``challenger``), beside the served slice.

    The columns of ``predictions``, keyed by (model, as-of date, version, entity): one slice
    per (model, version, as-of date), replaced whole by a rerun (fti.monitoring.realized's
    ``write_shadow_slice``), so realized metrics compare it with the champion on the same
    days. ``predictions`` and what reads it stay one score per entity, model and date.
    Migration 0010.
    """

    __tablename__ = "shadow_predictions"
    __table_args__ = (
        PrimaryKeyConstraint(
            "model_name", "as_of_date", "model_version", "entity_id", name="pk_shadow_predictions"
        ),
    )

    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    feature_group: Mapped[str] = mapped_column(String(200))
    feature_version: Mapped[int] = mapped_column(Integer)
    entity_id: Mapped[str] = mapped_column(String(200))
    as_of_date: Mapped[date] = mapped_column(Date)
    prediction: Mapped[int | None] = mapped_column(Integer)
    probability: Mapped[float | None] = mapped_column(Float)
    run_id: Mapped[str] = mapped_column(String(250))
    airflow_run_id: Mapped[str | None] = mapped_column(String(250))
    logical_date: Mapped[date | None] = mapped_column(Date)
    scored_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    value: Mapped[float | None] = mapped_column(Float)
    predicted_class: Mapped[str | None] = mapped_column(String(200))
    class_probabilities: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    alias: Mapped[str] = mapped_column(String(100))  # the alias it was scored by


class RealizedMetric(Base):
    """How a model version's predictions of one as-of date turned out, once their labels landed.

    One row per (model, version, as-of date): the scores the version wrote for that date joined
    on the entity with the label group version's labels of that date (``rows`` joined, labels
    not null), scored by fti.training.metrics as the holdout is: ``metric``/``value`` the
    model's own metric (None when not defined on these rows, e.g. one class only),
    ``holdout_value`` the version's holdout figure for reference, ``metrics`` the task's
    standard metrics (and ``reason``: why ``value`` is None, when it is). A figure over
    several dates is computed from their rows again, never from these values. Classifiers:
    ``brier_score`` and ``reliability`` (equal-width bins of the predicted probability: count,
    mean predicted, observed rate); regressors: ``error_distribution`` (quantiles of
    prediction - label). ``alias``: the alias that held
    the version when the slice was scored (None: none did). Recomputing replaces the row
    (fti.monitoring.realized). Migration 0010.
    """

    __tablename__ = "realized_metrics"
    __table_args__ = (
        UniqueConstraint(
            "model_name", "model_version", "as_of_date", name="uq_realized_metrics_version_date"
        ),
        Index("ix_realized_metrics_model_date", "model_name", "as_of_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[int] = mapped_column(Integer)
    alias: Mapped[str | None] = mapped_column(String(100))
    as_of_date: Mapped[date] = mapped_column(Date)
    label_group: Mapped[str] = mapped_column(String(200))
    label_version: Mapped[int] = mapped_column(Integer)
    prediction_run_id: Mapped[str] = mapped_column(String(250))  # the run that wrote the scores
    rows_scored: Mapped[int] = mapped_column(Integer)
    rows: Mapped[int] = mapped_column(Integer)  # scores joined with a (non-null) label
    metric: Mapped[str] = mapped_column(String(100))
    value: Mapped[float | None] = mapped_column(Float)
    holdout_value: Mapped[float | None] = mapped_column(Float)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    brier_score: Mapped[float | None] = mapped_column(Float)
    reliability: Mapped[list[Any] | None] = mapped_column(JSON)
    error_distribution: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
