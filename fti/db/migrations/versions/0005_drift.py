"""Drift monitoring: a model's training reference bins, per-run drift results, a run's flag.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions") as batch:
        batch.add_column(sa.Column("drift_reference", sa.JSON(), nullable=True))
    with op.batch_alter_table("prediction_runs") as batch:
        batch.add_column(sa.Column("drift_breached", sa.Boolean(), nullable=True))
    op.create_table(
        "drift_results",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=250), nullable=False),
        sa.Column("feature", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("psi", sa.Float(), nullable=False),
        sa.Column("p_value", sa.Float(), nullable=True),
        sa.Column("breached", sa.Boolean(), nullable=False),
        sa.Column("bins", sa.JSON(), nullable=False),
        sa.Column("expected", sa.JSON(), nullable=False),
        sa.Column("observed", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["prediction_runs.run_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "feature", name="uq_drift_results_run_feature"),
    )


def downgrade() -> None:
    op.drop_table("drift_results")
    with op.batch_alter_table("prediction_runs") as batch:
        batch.drop_column("drift_breached")
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("drift_reference")
