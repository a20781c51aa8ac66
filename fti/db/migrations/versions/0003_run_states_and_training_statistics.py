"""Prediction runs recorded before their versions are known; skew warnings; training statistics;
64-bit prediction ids on PostgreSQL.

Revision ID: 0003
Revises: 0002
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# As created by 0002: PostgreSQL will not change a column type under a view, so 0003 recreates it.
LATEST_PREDICTIONS = """
CREATE VIEW latest_predictions AS
SELECT p.*
FROM predictions p
JOIN model_aliases a
  ON a.name = p.model_name AND a.alias = 'champion' AND a.version = p.model_version
WHERE p.as_of_date = (
    SELECT max(newer.as_of_date) FROM predictions newer
    WHERE newer.model_name = p.model_name
      AND newer.model_version = p.model_version
      AND newer.entity_id = p.entity_id
)
"""
# A run that fails before its model or feature version is resolved still gets its row.
RESOLVED_LATER: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("model_version", sa.Integer()),
    ("feature_group", sa.String(length=200)),
    ("feature_version", sa.Integer()),
]


def upgrade() -> None:
    with op.batch_alter_table("prediction_runs") as batch:
        for name, kind in RESOLVED_LATER:
            batch.alter_column(name, existing_type=kind, nullable=True)
        batch.add_column(sa.Column("warnings", sa.JSON(), nullable=True))
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("training_statistics", sa.JSON(), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP VIEW latest_predictions")
        op.alter_column("predictions", "id", type_=sa.BigInteger(), existing_type=sa.Integer())
        op.execute(LATEST_PREDICTIONS)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP VIEW latest_predictions")
        op.alter_column("predictions", "id", type_=sa.Integer(), existing_type=sa.BigInteger())
        op.execute(LATEST_PREDICTIONS)
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("training_statistics")
    with op.batch_alter_table("prediction_runs") as batch:
        batch.drop_column("warnings")
        for name, kind in RESOLVED_LATER:
            batch.alter_column(name, existing_type=kind, nullable=False)
