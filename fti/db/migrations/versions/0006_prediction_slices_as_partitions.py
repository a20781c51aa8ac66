"""Predictions keyed by their slice; on PostgreSQL one partition per (model, as-of date) slice.

A slice is replaced by building its new partition aside (binary COPY into a bare table, then
its indexes in bulk) and swapping it in, instead of deleting and inserting row by row into
indexes that hold every slice. The surrogate ``id`` goes: the key is (model, date, entity)
on both databases (PostgreSQL needs the partition key in it). The swap's DDL is built by two
server-side functions with ``format('%I', '%L')`` quoting, never from client strings.
``latest_predictions`` is rewritten with a window function: the same rows, one scan.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Entity first: its values vary within a slice, so the key sorts fast (a slice's model and date
# are constant) and also serves "a customer's scores", which needed an index of its own before.
KEY = ["entity_id", "model_name", "as_of_date"]
KEY_0005 = ["model_name", "as_of_date", "entity_id"]
ENTITY_INDEX_0005 = ("ix_predictions_entity", ["entity_id", "as_of_date"])
COLUMNS = (
    "model_name, model_version, feature_group, feature_version, entity_id, as_of_date,"
    " prediction, probability, run_id, airflow_run_id, logical_date, scored_at"
)
LATEST_PREDICTIONS = f"""
CREATE VIEW latest_predictions AS
SELECT {COLUMNS}
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
# As 0003 left it (0003 recreated 0002's view).
LATEST_PREDICTIONS_0003 = """
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

# A slice's partition: predictions_<md5(model) 12 hex>_<yyyymmdd>; its new one gets "_new".
SLICE_FUNCTIONS = r"""
CREATE FUNCTION fti_slice_table(model text, day date) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT 'predictions_' || left(md5(model), 12) || '_' || to_char(day, 'YYYYMMDD')
$$;

-- A bare table shaped like predictions to COPY the new slice into; returns its name.
CREATE FUNCTION fti_slice_stage(model text, day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    stage text := fti_slice_table(model, day) || '_new';
BEGIN
    EXECUTE format('DROP TABLE IF EXISTS %I', stage);
    EXECUTE format('CREATE TABLE %I (LIKE predictions INCLUDING DEFAULTS)', stage);
    RETURN stage;
END
$$;

-- The staged slice's constraint, key and index, built in bulk (no lock on predictions), with
-- at least 256MB to sort in (PostgreSQL's default, 64MB, spills a 1e6-row slice to disk).
CREATE FUNCTION fti_slice_index(model text, day date) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    stage text := fti_slice_table(model, day) || '_new';
BEGIN
    IF pg_size_bytes(current_setting('maintenance_work_mem')) < pg_size_bytes('256MB') THEN
        PERFORM set_config('maintenance_work_mem', '256MB', true);
    END IF;
    EXECUTE format(
        'ALTER TABLE %I ADD CONSTRAINT %I CHECK (model_name = %L AND as_of_date = %L)',
        stage, stage || '_slice', model, day);
    EXECUTE format(
        'ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (entity_id, model_name, as_of_date)',
        stage, stage || '_pkey');
    EXECUTE format('CREATE INDEX %I ON %I (probability)', stage || '_risk', stage);
END
$$;

-- Swap the indexed staged slice in for the old partition (if any). DETACH needs predictions
-- alone for a moment, and while it waits new readers queue behind it: so it waits lock_wait
-- at most, lets the readers through, and tries again (tries times). Run in the writer's
-- transaction: readers see the old slice until it commits.
CREATE FUNCTION fti_slice_swap(model text, day date, lock_wait text DEFAULT '2s',
                               tries integer DEFAULT 120) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    name text := fti_slice_table(model, day);
    stage text := name || '_new';
    waited text := current_setting('lock_timeout');
BEGIN
    FOR attempt IN 1..tries LOOP
        BEGIN
            PERFORM set_config('lock_timeout', lock_wait, true);
            LOCK TABLE predictions IN ACCESS EXCLUSIVE MODE;  -- kept when this block ends
            EXIT;
        EXCEPTION WHEN lock_not_available THEN
            IF attempt = tries THEN
                RAISE EXCEPTION USING ERRCODE = 'lock_not_available', MESSAGE = format(
                    'could not swap in the slice of %s for %s: queries on predictions held it '
                    'through %s waits of %s; see pg_stat_activity, then rerun the task',
                    model, day, tries, lock_wait);
            END IF;
            PERFORM pg_sleep(0.5);
        END;
    END LOOP;
    PERFORM set_config('lock_timeout', waited, true);
    IF to_regclass(format('%I', name)) IS NOT NULL THEN
        EXECUTE format('ALTER TABLE predictions DETACH PARTITION %I', name);
        EXECUTE format('DROP TABLE %I', name);
    END IF;
    EXECUTE format(
        'ALTER TABLE predictions ATTACH PARTITION %I FOR VALUES FROM (%L, %L) TO (%L, %L)',
        stage, model, day, model, day + 1);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', stage, name);
    EXECUTE format('ALTER INDEX %I RENAME TO %I', stage || '_pkey', name || '_pkey');
    EXECUTE format('ALTER INDEX %I RENAME TO %I', stage || '_risk', name || '_risk');
    EXECUTE format(
        'ALTER TABLE %I RENAME CONSTRAINT %I TO %I', name, stage || '_slice', name || '_slice');
END
$$;
"""


def upgrade() -> None:
    op.execute("DROP VIEW latest_predictions")
    if op.get_bind().dialect.name == "postgresql":
        _partition_postgresql()
    else:
        with op.batch_alter_table("predictions", recreate="always") as batch:
            batch.drop_constraint("uq_predictions_slice", type_="unique")
            batch.drop_index(ENTITY_INDEX_0005[0])
            batch.drop_column("id")
            batch.create_primary_key("pk_predictions", KEY)
    op.execute(LATEST_PREDICTIONS)


def _partition_postgresql() -> None:
    op.execute("ALTER TABLE predictions RENAME TO predictions_0005")
    for index in ("uq_predictions_slice", "ix_predictions_entity", "ix_predictions_day_risk"):
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_0005")
    op.execute("ALTER TABLE predictions_0005 DROP COLUMN id")
    op.execute(
        "CREATE TABLE predictions (LIKE predictions_0005 INCLUDING DEFAULTS)"
        " PARTITION BY RANGE (model_name, as_of_date)"
    )
    op.create_primary_key("pk_predictions", "predictions", KEY)
    # A day's top-N: the partition is the (model, date), so the index needs only probability,
    # and it builds 2-3x faster than (model_name, as_of_date, probability), whose first two
    # columns are the same on every row of a slice.
    op.create_index("ix_predictions_day_risk", "predictions", ["probability"])
    op.execute(SLICE_FUNCTIONS)
    # Every existing slice becomes its partition, through the same functions the writer uses.
    op.execute(
        f"""
        DO $$
        DECLARE s record;
        BEGIN
            FOR s IN SELECT DISTINCT model_name, as_of_date FROM predictions_0005 LOOP
                EXECUTE format(
                    'INSERT INTO %I ({COLUMNS}) SELECT {COLUMNS} FROM predictions_0005'
                    ' WHERE model_name = $1 AND as_of_date = $2',
                    fti_slice_stage(s.model_name, s.as_of_date))
                USING s.model_name, s.as_of_date;
                PERFORM fti_slice_index(s.model_name, s.as_of_date);
                PERFORM fti_slice_swap(s.model_name, s.as_of_date);
            END LOOP;
        END
        $$
        """
    )
    op.execute("DROP TABLE predictions_0005")


def downgrade() -> None:
    op.execute("DROP VIEW latest_predictions")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE predictions RENAME TO predictions_0006")
        op.execute("ALTER INDEX pk_predictions RENAME TO pk_predictions_0006")
        op.execute("ALTER INDEX ix_predictions_day_risk RENAME TO ix_predictions_day_risk_0006")
        op.execute(
            "CREATE TABLE predictions (id bigserial PRIMARY KEY,"
            " LIKE predictions_0006 INCLUDING DEFAULTS)"
        )
        op.execute(f"INSERT INTO predictions ({COLUMNS}) SELECT {COLUMNS} FROM predictions_0006")
        op.execute("DROP TABLE predictions_0006")  # and its partitions
        op.execute(
            "DROP FUNCTION fti_slice_swap(text, date, text, integer); DROP FUNCTION fti_slice_index(text, date);"
            " DROP FUNCTION fti_slice_stage(text, date); DROP FUNCTION fti_slice_table(text, date)"
        )
        op.create_unique_constraint("uq_predictions_slice", "predictions", KEY_0005)
        op.create_index(ENTITY_INDEX_0005[0], "predictions", ENTITY_INDEX_0005[1])
        op.create_index(
            "ix_predictions_day_risk", "predictions", ["model_name", "as_of_date", "probability"]
        )
    else:
        with op.batch_alter_table("predictions", recreate="always") as batch:
            batch.drop_constraint("pk_predictions", type_="primary")
            batch.add_column(sa.Column("id", sa.Integer(), primary_key=True))
            batch.create_unique_constraint("uq_predictions_slice", KEY_0005)
            batch.create_index(*ENTITY_INDEX_0005)
    op.execute(LATEST_PREDICTIONS_0003)
