"""Ownership: which project owns each source, feature group, label group and model.

``owners`` (kind, name) -> project, with when and by which run the name was claimed. Kinds:
``source``, ``features``, ``labels`` (``feature_versions.kind``) and ``model``. fti.ownership
claims a name in the transaction of its first write; another project is refused.

Rows written before this migration (catalog versions, model versions, validation runs) have
no owner: nothing here guesses one. The first claim after the upgrade takes the name for the
project that makes it (its next validation, publish or registration), as for a new name.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "owners",
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("project", sa.String(200), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.PrimaryKeyConstraint("kind", "name"),
    )
    op.create_index("ix_owners_project", "owners", ["project"])


def downgrade() -> None:
    op.drop_index("ix_owners_project", table_name="owners")
    op.drop_table("owners")
