"""Create FTI_HOME: the migrated database, the feature store and its DVC remote."""

from __future__ import annotations

from fti.db.migrate import upgrade
from fti.settings import Settings
from fti.store.registry_repo import init_store


def initialise(settings: Settings) -> None:
    """Idempotent: safe to run on an existing home."""
    settings.home.mkdir(parents=True, exist_ok=True)
    for path in (settings.artifacts_path, settings.raw_path, settings.staging_path):
        path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)
    init_store(settings.store_path, settings.dvc_remote)
