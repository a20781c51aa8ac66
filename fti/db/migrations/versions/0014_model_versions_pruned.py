"""A model version's artifact may be removed by retention; its registry row stays, marked.

``model_versions.pruned_at``: when ``fti gc`` (fti.retention) removed the version's artifact
(null: the artifact is kept). The row keeps its lineage, metrics and promotion decision, so
the registry still answers what was trained on what; the version can no longer be loaded,
scored or promoted.

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "model_versions", sa.Column("pruned_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    # SQLite (>= 3.35) drops a plain column in place.
    op.drop_column("model_versions", "pruned_at")
