"""Ids across days move out of the database, beside the staged events.

- ``accepted_ids`` goes: a day's accepted ids are its staged events' id column, and beside
  each staged file fti keeps their sorted 64-bit hashes (``<date>.ids.npy``), rebuilt from the
  staged file when missing, so existing stores need no step of their own. At a million events
  a day the table held about 14 GB and cost one bind parameter per id.
- ``validation_runs.ids_recorded`` goes with it (it said whether a file's ids were in
  ``accepted_ids``).

Downgrading creates both again, empty and false: the 0010 code records every accepted day's
ids from its staged events before it next validates the source.

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_accepted_ids_date_source", "accepted_ids")
    op.drop_table("accepted_ids")
    # SQLite (>= 3.35) drops a plain column in place: no rebuild of validation_runs, whose
    # ON DELETE CASCADE would empty quarantined_rows (see 0008).
    op.drop_column("validation_runs", "ids_recorded")


def downgrade() -> None:
    op.add_column(
        "validation_runs",
        sa.Column("ids_recorded", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.create_table(
        "accepted_ids",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("id_value", sa.Text(), nullable=False),
        sa.Column("logical_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id_value"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_accepted_ids_date_source", "accepted_ids", ["logical_date", "source"])
