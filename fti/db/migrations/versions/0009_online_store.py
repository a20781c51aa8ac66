"""The online store and the served-predictions log (real-time predictions).

- ``online_rows`` (new): each entity's newest row of the version of a feature group that is
  online, keyed by (group, entity key as text), with its feature date, the version it was
  written from, a hash of its contents (so a new version rewrites only changed rows) and its
  values (a JSON array, decoded with the group's schema; fti.online.codec). WITHOUT ROWID on
  SQLite: the key is the table.
- ``online_state`` (new): per group, the version online, its schema (entity key and features,
  in the order of the values), when it was materialised and how many rows it holds. Written
  in the transaction that writes the rows, so a reader that reads both in one snapshot never
  sees two versions at once.
- ``served_predictions`` (new): what ``fti serve`` answered (its optional request log), with
  the lineage columns of ``predictions`` plus the request id, time, every feature group's
  version, the features' date and whether they were stale.

Existing stores get their rows with ``fti features materialise`` (or the next publish of each
feature group). Downgrading drops the three tables.

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "online_rows",
        sa.Column("group_name", sa.String(length=200), nullable=False),
        sa.Column("entity_key", sa.Text(), nullable=False),
        sa.Column("feature_date", sa.Date(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.BigInteger(), nullable=False),
        sa.Column("feature_values", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("group_name", "entity_key", name="pk_online_rows"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_online_rows_group_date", "online_rows", ["group_name", "feature_date"])
    op.create_table(
        "online_state",
        sa.Column("group_name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("entity_key", sa.String(length=200), nullable=False),
        sa.Column("schema", sa.JSON(), nullable=False),
        sa.Column("schema_hash", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("rows_written", sa.Integer(), nullable=False),
        sa.Column("rows_deleted", sa.Integer(), nullable=False),
        sa.Column("materialised_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("group_name"),
    )
    op.create_table(
        "served_predictions",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("served_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("model_name", sa.String(length=200), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("entity_id", sa.String(length=200), nullable=False),
        sa.Column("prediction", sa.Integer(), nullable=True),
        sa.Column("probability", sa.Float(), nullable=True),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("predicted_class", sa.String(length=200), nullable=True),
        sa.Column("class_probabilities", sa.JSON(), nullable=True),
        sa.Column("feature_group", sa.String(length=200), nullable=False),
        sa.Column("feature_version", sa.Integer(), nullable=False),
        sa.Column("feature_versions", sa.JSON(), nullable=False),
        sa.Column("feature_date", sa.Date(), nullable=True),
        sa.Column("stale", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index(
        "ix_served_predictions_model_at", "served_predictions", ["model_name", "served_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_served_predictions_model_at", "served_predictions")
    op.drop_table("served_predictions")
    op.drop_table("online_state")
    op.drop_index("ix_online_rows_group_date", "online_rows")
    op.drop_table("online_rows")
