"""Several models per project: tasks (binary, multiclass, regression), many feature groups, label
groups in the store.

- ``model_versions``: ``task`` and ``metric`` (existing rows: ``binary``, ``roc_auc``);
  ``feature_versions`` ({group: version} of every group the model reads; existing rows:
  {feature_group: feature_version}); ``label_group``/``label_version`` (the label group in the
  store, None when the label is a feature column). Each ``features`` entry gets its "group"
  (existing entries: the row's ``feature_group``). ``feature_group``/``feature_version`` stay:
  they are now the model's spine, its first feature group.
- ``prediction_runs``: ``feature_versions``, every group the run read (existing runs: their
  one group, where it was resolved).
- ``feature_versions`` (the store's catalog): ``kind``, ``features`` or ``labels``.
- ``predictions``: ``prediction`` and ``probability`` may be NULL; ``value`` (regression),
  ``predicted_class`` and ``class_probabilities`` (multiclass; ``probability`` holds the
  predicted class's probability, so "a day's top-N" keeps its index).

``class_probabilities`` is a JSON column ({"class": probability}) rather than a child table:
the classes vary per model, a child table would multiply a slice's rows by its number of
classes and need a join for the common "top class" query (which reads ``predicted_class`` and
``probability`` off the row), and a slice stays one table to stage, index and swap. It is
``json``, not ``jsonb``, on PostgreSQL: binary COPY of Arrow text into ``json`` is the text
itself (checked by the server), while ``jsonb``'s binary format is not.

On PostgreSQL ``predictions`` is partitioned (0006): ALTER on the parent reaches every
partition, and the new columns come last on the parent and on each partition alike, so
``fti_slice_stage``'s ``LIKE predictions`` keeps building tables that attach. The
``latest_predictions`` view is recreated with the new columns, same semantics.

Downgrading refuses while the database holds what 0006 cannot: scores without a 0/1
prediction and a probability, or models that are not binary or read several feature groups.
Label groups in the catalog stay, as plain groups.

Revision ID: 0007
Revises: 0006
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from fti.errors import FtiError

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

COLUMNS_0006 = (
    "model_name, model_version, feature_group, feature_version, entity_id, as_of_date,"
    " prediction, probability, run_id, airflow_run_id, logical_date, scored_at"
)
COLUMNS = f"{COLUMNS_0006}, value, predicted_class, class_probabilities"
# The current champion's newest score per entity, for each model (as 0006, more columns).
VIEW = """
CREATE VIEW latest_predictions AS
SELECT {columns}
FROM (
    SELECT p.*, row_number() OVER (
        PARTITION BY p.model_name, p.model_version, p.entity_id ORDER BY p.as_of_date DESC
    ) AS newest
    FROM predictions p
    JOIN model_aliases a
      ON a.name = p.model_name AND a.alias = 'champion' AND a.version = p.model_version
) ranked
WHERE newest = 1
"""
SCORE_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("value", sa.Float()),
    ("predicted_class", sa.String(length=200)),
    ("class_probabilities", sa.JSON()),
]
MODEL_COLUMNS: list[tuple[str, sa.types.TypeEngine[Any]]] = [
    ("task", sa.String(length=20)),
    ("metric", sa.String(length=100)),
    ("feature_versions", sa.JSON()),
]
models = sa.table(
    "model_versions",
    sa.column("id", sa.Integer()),
    sa.column("name", sa.String()),
    sa.column("version", sa.Integer()),
    sa.column("task", sa.String()),
    sa.column("feature_group", sa.String()),
    sa.column("feature_version", sa.Integer()),
    sa.column("feature_versions", sa.JSON()),
    sa.column("features", sa.JSON()),
)


def upgrade() -> None:
    with op.batch_alter_table("feature_versions") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(length=20), nullable=False, server_default="features")
        )
    _upgrade_models()
    with op.batch_alter_table("prediction_runs") as batch:
        batch.add_column(sa.Column("feature_versions", sa.JSON(), nullable=True))
    json_object = "json_build_object" if _postgresql() else "json_object"
    op.execute(
        f"UPDATE prediction_runs SET feature_versions = {json_object}(feature_group, feature_version)"
        " WHERE feature_group IS NOT NULL AND feature_version IS NOT NULL"
    )
    op.execute("DROP VIEW latest_predictions")
    # PostgreSQL: ALTERs of the partitioned parent, which reach every partition. SQLite: the
    # table is rebuilt (it cannot drop NOT NULL in place).
    with op.batch_alter_table("predictions") as b:
        for name in ("prediction", "probability"):
            b.alter_column(name, existing_type=_score_type(name), nullable=True)
        for name, kind in SCORE_COLUMNS:
            b.add_column(sa.Column(name, kind, nullable=True))
    op.execute(VIEW.format(columns=COLUMNS))


def _upgrade_models() -> None:
    with op.batch_alter_table("model_versions") as batch:
        for name, kind in MODEL_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
        batch.add_column(sa.Column("label_group", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("label_version", sa.Integer(), nullable=True))
    connection = op.get_bind()
    connection.execute(sa.text("UPDATE model_versions SET task = 'binary', metric = 'roc_auc'"))
    # Every model so far read one feature group: its own. A few rows: a loop is portable.
    for row in connection.execute(sa.select(models)).all():
        connection.execute(
            models.update()
            .where(models.c.id == row.id)
            .values(
                feature_versions={row.feature_group: row.feature_version},
                features=[{**f, "group": f.get("group", row.feature_group)} for f in row.features],
            )
        )
    with op.batch_alter_table("model_versions") as batch:
        for name, kind in MODEL_COLUMNS:
            batch.alter_column(name, existing_type=kind, nullable=False)


def downgrade() -> None:
    _refuse_what_0006_cannot_hold()
    op.execute("DROP VIEW latest_predictions")
    with op.batch_alter_table("predictions") as b:
        for name, _ in reversed(SCORE_COLUMNS):
            b.drop_column(name)
        for name in ("prediction", "probability"):
            b.alter_column(name, existing_type=_score_type(name), nullable=False)
    op.execute(VIEW.format(columns=COLUMNS_0006))
    with op.batch_alter_table("prediction_runs") as batch:
        batch.drop_column("feature_versions")
    connection = op.get_bind()
    for row in connection.execute(sa.select(models.c.id, models.c.features)).all():
        connection.execute(
            models.update()
            .where(models.c.id == row.id)
            .values(features=[{k: v for k, v in f.items() if k != "group"} for f in row.features])
        )
    with op.batch_alter_table("model_versions") as batch:
        batch.drop_column("label_version")
        batch.drop_column("label_group")
        for name, _ in reversed(MODEL_COLUMNS):
            batch.drop_column(name)
    with op.batch_alter_table("feature_versions") as batch:
        batch.drop_column("kind")


def _refuse_what_0006_cannot_hold() -> None:
    connection = op.get_bind()
    scores = connection.execute(
        sa.text(
            "SELECT model_name, count(*) FROM predictions"
            " WHERE prediction IS NULL OR probability IS NULL GROUP BY model_name"
        )
    ).all()
    versions = connection.execute(
        sa.select(
            models.c.name, models.c.version, models.c.task, models.c.feature_versions
        ).order_by(models.c.name, models.c.version)
    ).all()
    modern = [f"{n} v{v}" for n, v, task, groups in versions if task != "binary" or len(groups) > 1]
    found = []
    if scores:
        found.append(
            f"{sum(n for _, n in scores)} score(s) without a 0/1 prediction and a probability "
            f"(of {', '.join(sorted(name for name, _ in scores))}): delete them with DELETE FROM "
            "predictions WHERE prediction IS NULL OR probability IS NULL"
        )
    if modern:
        found.append(
            f"model version(s) of another task than binary or of several feature groups "
            f"({', '.join(modern)}): delete them, their aliases and their scores"
        )
    if found:
        raise FtiError(
            "cannot downgrade below 0007: 0006 holds only binary models of one feature group "
            f"and their 0/1 scores, and this database has {'; and '.join(found)}. Or stay at 0007."
        )


def _score_type(name: str) -> sa.types.TypeEngine[Any]:
    return sa.Integer() if name == "prediction" else sa.Float()


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"
