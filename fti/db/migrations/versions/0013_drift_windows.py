"""Drift over a window of dates: a run may be judged on its rows pooled with earlier dates'.

- ``drift_results.run_observed`` (new): the run's own scored counts per bin; ``observed`` holds
  the counts judged, the run's and those of the earlier dates its window pooled (params.yaml
  ``monitor.window_days``). Null on rows written before: their ``observed`` is the run's own.
- ``prediction_runs.drift_window`` (new): what the run's drift pooled, ``{"days": N, "dates":
  [...], "rows": n}``; null for runs before, and for runs whose drift was not computed.

Plain ``ADD COLUMN`` / ``DROP COLUMN`` on both databases: no rebuild of ``prediction_runs``,
whose ``ON DELETE CASCADE`` would empty ``drift_results`` (see 0008, 0011).

Revision ID: 0013
Revises: 0012
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("drift_results", sa.Column("run_observed", sa.JSON(), nullable=True))
    op.add_column("prediction_runs", sa.Column("drift_window", sa.JSON(), nullable=True))


def downgrade() -> None:
    op.drop_column("prediction_runs", "drift_window")
    op.drop_column("drift_results", "run_observed")
