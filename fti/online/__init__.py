"""The online store: each feature group's newest row per entity, for real-time predictions.

``materialise`` writes it (a publish does, in its catalog transaction; ``fti features
materialise`` for existing stores); ``store`` reads it (``read_online``, ``online_state``).
"""

from fti.online.materialise import (
    Materialised,
    forget_untagged_online,
    materialise_latest,
    materialise_published,
)
from fti.online.store import OnlineRows, online_state, read_online

__all__ = [
    "Materialised",
    "OnlineRows",
    "forget_untagged_online",
    "materialise_latest",
    "materialise_published",
    "online_state",
    "read_online",
]
