"""Apply Alembic migrations to fti's database."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config

MIGRATIONS = Path(__file__).parent / "migrations"
# PostgreSQL's per-slice partitions of predictions (migration 0006), and a slice being built.
SLICE_PARTITION = re.compile(r"predictions_[0-9a-f]{12}_[0-9]{8}(_new)?")


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """What Alembic compares with the table definitions: not the partitions of predictions."""
    return not (type_ == "table" and SLICE_PARTITION.fullmatch(name or ""))


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at ``url`` to ``revision`` (idempotent)."""
    command.upgrade(alembic_config(url), revision)
