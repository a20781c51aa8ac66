"""Apply Alembic migrations to fti's database."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL's per-slice partitions of predictions (migration 0006), and a slice being built.
SLICE_PARTITION = re.compile(r"predictions_[0-9a-f]{12}_[0-9]{8}(_new)?")
# On PostgreSQL a slice's model and date are its partition's, so this index is (probability).
PARTITIONED_RISK_INDEX = "ix_predictions_day_risk"


def comparison_filter(dialect: str) -> Callable[..., bool]:
    """Alembic's ``include_object`` for comparing a database with fti's table definitions:
    not the partitions of predictions, nor the index whose columns partitioning makes
    implicit on PostgreSQL."""

    def include_object(obj: Any, name: str | None, type_: str, reflected: bool, other: Any) -> bool:
        if type_ == "table" and SLICE_PARTITION.fullmatch(name or ""):
            return False
        return not (dialect == "postgresql" and type_ == "index" and name == PARTITIONED_RISK_INDEX)

    return include_object


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(url), revision)
