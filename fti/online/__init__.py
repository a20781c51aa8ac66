"""The online store: each feature group's newest row per entity, for real-time predictions.

``materialise`` writes it (a publish does once its version is tagged, in the transaction
that marks its catalog row; ``fti features materialise`` for existing stores); ``store`` reads it (``read_online``, ``online_state``).
"""

from fti.online.materialise import (
    Materialised,
    materialise_latest,
    materialise_published,
    reconcile_online,
)
from fti.online.store import OnlineRows, online_state, read_online

__all__ = [
    "Materialised",
    "OnlineRows",
    "materialise_latest",
    "materialise_published",
    "online_state",
    "read_online",
    "reconcile_online",
]
