"""Realized performance: how each model version's predictions turned out once labels landed.

- ``realized_metrics`` (new): one row per (model, version, as-of date) with the label group
  version joined, the rows scored and joined, the model's own metric and its holdout figure,
  the task's standard metrics (JSON), and for classifiers the Brier score and a reliability
  curve (JSON bins), for regressors the error distribution (JSON quantiles). Written by
  fti.monitoring.realized when a label group version is published; recomputing replaces a row.
- ``shadow_predictions`` (new): the scores of a shadow-scored version (the ``challenger``),
  the columns of ``predictions`` plus the alias, keyed by (model, as-of date, version, entity);
  ``predictions`` keeps one score per entity, model and date. Not partitioned: a shadow slice
  is replaced by DELETE and INSERT in one transaction.

Existing stores get their rows with ``fti monitor realized --model M --refresh``. Downgrading
drops both tables.

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "realized_metrics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=100), nullable=True),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("label_group", sa.String(length=200), nullable=False),
        sa.Column("label_version", sa.Integer(), nullable=False),
        sa.Column("prediction_run_id", sa.String(length=250), nullable=False),
        sa.Column("rows_scored", sa.Integer(), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("metric", sa.String(length=100), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("holdout_value", sa.Float(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("brier_score", sa.Float(), nullable=True),
        sa.Column("reliability", sa.JSON(), nullable=True),
        sa.Column("error_distribution", sa.JSON(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "model_name", "model_version", "as_of_date", name="uq_realized_metrics_version_date"
        ),
    )
    op.create_index(
        "ix_realized_metrics_model_date", "realized_metrics", ["model_name", "as_of_date"]
    )
    op.create_table(
        "shadow_predictions",
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("feature_group", sa.String(length=200), nullable=False),
        sa.Column("feature_version", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("as_of_date", sa.Date(), nullable=False),
        sa.Column("prediction", sa.Integer(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("airflow_run_id", sa.String(length=250), nullable=True),
        sa.Column("logical_date", sa.Date(), nullable=True),
        sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("predicted_class", sa.String(length=200), nullable=True),
        sa.Column("class_probabilities", sa.JSON(), nullable=True),
        sa.Column("alias", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint(
            "model_name", "as_of_date", "model_version", "entity_id", name="pk_shadow_predictions"
        ),
    )


def downgrade() -> None:
    op.drop_table("shadow_predictions")
    op.drop_index("ix_realized_metrics_model_date", "realized_metrics")
    op.drop_table("realized_metrics")
