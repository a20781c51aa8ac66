"""A catalog row says whether its version's git tag exists.

``feature_versions.tagged``: a publish writes the version's row before its git tag (so its
statistics are kept whatever happens next) with ``tagged`` false, makes the tag, then sets it
true in the transaction that puts the version online. Readers list only tagged rows, so a
version a killed publish never tagged is never seen, and the next publish of any group (or
`fti features materialise`) deletes such rows and completes a version whose tag exists but
whose row is not marked yet (see ``fti.store.tagged``).

Existing rows are marked tagged: the next publish checks every row against the store's tags
and deletes the rows of versions that have none.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "feature_versions",
        sa.Column("tagged", sa.Boolean(), server_default=sa.true(), nullable=False),
    )


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM feature_versions WHERE NOT tagged"))
    op.drop_column("feature_versions", "tagged")
