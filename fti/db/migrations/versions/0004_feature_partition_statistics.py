"""Per-partition statistics on feature versions, so publishing a day merges instead of re-reading.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("feature_versions") as batch:
        batch.add_column(sa.Column("partition_statistics", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("feature_versions") as batch:
        batch.drop_column("partition_statistics")
