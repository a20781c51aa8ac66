"""Prediction lineage (Airflow run id, logical date), a top-N index, the latest_predictions view.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# The current champion's newest score per entity, for each model.
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


def upgrade() -> None:
    for table in ("predictions", "prediction_runs"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("airflow_run_id", sa.String(length=250), nullable=True))
            batch.add_column(sa.Column("logical_date", sa.Date(), nullable=True))
    op.create_index(
        "ix_predictions_day_risk", "predictions", ["model_name", "as_of_date", "probability"]
    )
    op.execute(LATEST_PREDICTIONS)


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS latest_predictions")
    op.drop_index("ix_predictions_day_risk", table_name="predictions")
    for table in ("prediction_runs", "predictions"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("logical_date")
            batch.drop_column("airflow_run_id")
