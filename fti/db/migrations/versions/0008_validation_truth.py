"""Validation tells the truth: rejected files, ids across days, re-admissions, ids not reused.

- ``validation_runs``: ``status`` (``accepted``, existing rows; or ``rejected``), ``reason``
  (why a file was rejected), ``rows_readmitted`` (accepted rows that came from a
  re-admission; existing rows 0), ``ids_recorded`` (whether the file's accepted ids are in
  ``accepted_ids``: false for existing rows, whose ids fti records from their staged events
  before it next validates their source) and ``rows_read`` may be NULL (a file that could not
  be read has no count).
- ``accepted_ids`` (new): which day holds each accepted id of a source with an ``id_column``,
  keyed by (source, id), so a repeat on another day is an index lookup (WITHOUT ROWID on
  SQLite: the key is the table).
- ``readmissions`` (new): rows fixed by hand and re-admitted, applied again whenever their day
  is validated.
- ``retired_quarantine_ids`` (new): the id ranges of replaced validations, so an old export is
  told to export again.
- ``quarantined_rows``: ids are never reused. PostgreSQL's sequence never reused them; SQLite's
  INTEGER PRIMARY KEY hands out the largest id again after it was deleted, so the table is
  recreated with AUTOINCREMENT (ids kept; ids deleted before the upgrade above the largest
  remaining one can still come back once).

On SQLite, ``validation_runs`` is rebuilt to make ``rows_read`` nullable. Dropping the old
table would fire ``ON DELETE CASCADE`` into ``quarantined_rows`` (foreign keys are on and
cannot be switched off inside the migration's transaction), so ``quarantined_rows`` is copied
aside first and rebuilt after, which it needs anyway for AUTOINCREMENT.

Downgrading drops the new tables and columns. The records of rejected files go, their sample
of quarantined rows with them (0007 has no way to say a file was rejected): their days have no
staged events, so the next run validates them again.

Revision ID: 0008
Revises: 0007
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

QUARANTINE_INDEX = "ix_quarantined_rows_validation_run_id"
QUARANTINE_COLUMNS = 'id, validation_run_id, file, row_number, "column", rule, raw_values'
RUN_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any], Any]] = [
    ("status", sa.String(length=20), "accepted"),
    ("reason", sa.Text(), None),
    ("rows_readmitted", sa.Integer(), "0"),
    ("ids_recorded", sa.Boolean(), sa.false()),
]


def upgrade() -> None:
    aside = _set_quarantine_aside()
    with op.batch_alter_table("validation_runs") as batch:
        for name, kind, default in RUN_COLUMNS:
            batch.add_column(
                sa.Column(name, kind, nullable=default is None, server_default=default)
            )
        batch.alter_column("rows_read", existing_type=sa.Integer(), nullable=True)
    if aside:
        _restore_quarantine(autoincrement=True)
    op.create_table(
        "accepted_ids",
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("id_value", sa.Text(), nullable=False),
        sa.Column("logical_date", sa.Date(), nullable=False),
        sa.PrimaryKeyConstraint("source", "id_value"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_accepted_ids_date_source", "accepted_ids", ["logical_date", "source"])
    op.create_table(
        "readmissions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("logical_date", sa.Date(), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("quarantine_id", sa.Integer(), nullable=False),
        sa.Column("original", sa.JSON(), nullable=False),
        sa.Column("fixed", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("readmitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("source", "logical_date", "row_number"),
    )
    op.create_index("ix_readmissions_quarantine_id", "readmissions", ["quarantine_id"])
    op.create_table(
        "retired_quarantine_ids",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("first_id", sa.Integer(), nullable=False),
        sa.Column("last_id", sa.Integer(), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_retired_quarantine_ids_first_id", "retired_quarantine_ids", ["first_id"])


def downgrade() -> None:
    op.drop_index("ix_retired_quarantine_ids_first_id", "retired_quarantine_ids")
    op.drop_table("retired_quarantine_ids")
    op.drop_index("ix_readmissions_quarantine_id", "readmissions")
    op.drop_table("readmissions")
    op.drop_index("ix_accepted_ids_date_source", "accepted_ids")
    op.drop_table("accepted_ids")
    op.execute("DELETE FROM validation_runs WHERE status = 'rejected'")  # cascades to its rows
    aside = _set_quarantine_aside()
    with op.batch_alter_table("validation_runs") as batch:
        batch.alter_column("rows_read", existing_type=sa.Integer(), nullable=False)
        for name, _, _ in reversed(RUN_COLUMNS):
            batch.drop_column(name)
    if aside:
        _restore_quarantine(autoincrement=False)


def _set_quarantine_aside() -> bool:
    """SQLite: move ``quarantined_rows`` into a plain copy and drop it, so rebuilding
    ``validation_runs`` cascades into nothing. Returns whether it did (PostgreSQL alters in
    place)."""
    if op.get_bind().dialect.name != "sqlite":
        return False
    op.execute(
        f"CREATE TABLE _fti_quarantine_aside AS SELECT {QUARANTINE_COLUMNS} FROM quarantined_rows"
    )
    op.drop_index(QUARANTINE_INDEX, "quarantined_rows")
    op.drop_table("quarantined_rows")
    return True


def _restore_quarantine(autoincrement: bool) -> None:
    """SQLite: recreate ``quarantined_rows`` (with or without AUTOINCREMENT) and its rows, ids
    kept; AUTOINCREMENT then starts above the largest of them."""
    op.create_table(
        "quarantined_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("validation_run_id", sa.Integer(), nullable=False),
        sa.Column("file", sa.String(length=500), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("column", sa.String(length=200), nullable=False),
        sa.Column("rule", sa.String(length=500), nullable=False),
        sa.Column("raw_values", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["validation_run_id"], ["validation_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=autoincrement,
    )
    op.create_index(QUARANTINE_INDEX, "quarantined_rows", ["validation_run_id"])
    op.execute(
        f"INSERT INTO quarantined_rows ({QUARANTINE_COLUMNS})"
        f" SELECT {QUARANTINE_COLUMNS} FROM _fti_quarantine_aside ORDER BY id"
    )
    op.execute("DROP TABLE _fti_quarantine_aside")
