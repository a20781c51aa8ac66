"""params.yaml's ``retention`` section: how much of each store `fti gc` keeps. (When the
retention DAG runs is ``schedule.retention``, beside the other DAGs' schedules.)

Every key is optional::

    retention:
      keep_model_versions: 5   # newest N versions of each model keep their artifacts
      keep_group_versions: 5   # newest N versions of each feature or label group keep their tag
      rerun_days: 7            # nights that can still be rerun from staging as they are
      staging: true            # remove staged files no build, id check or rerun needs
      staging_min_age_hours: 24  # but none written in the last N hours (a run may read it)
      remote: false            # also remove from the DVC remote what no kept version needs

Besides the newest N, a model version is always kept when an alias points at it or ever did,
or a prediction names it; a group version when a kept model version, a prediction run or a
training set in staging names it (``fti.retention.plan``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from fti.errors import ConfigError
from fti.params import load_params

SECTION = "retention"
# The settings that are whole numbers, and their least value.
WHOLE_NUMBERS = {
    "keep_model_versions": 1,
    "keep_group_versions": 1,
    "rerun_days": 0,
    "staging_min_age_hours": 0,
}


@dataclass(frozen=True)
class Policy:
    """What retention keeps (see the module's docstring for each key)."""

    keep_model_versions: int = 5
    keep_group_versions: int = 5
    rerun_days: int = 7
    staging: bool = True
    staging_min_age_hours: int = 24
    remote: bool = False

    @classmethod
    def from_params(cls, section: dict[str, Any], where: str = "params.yaml") -> Policy:
        """The policy a ``retention`` section sets, defaults for the keys it leaves out.

        Raises:
            ConfigError: an unknown key or a value of the wrong kind, one line naming the key.
        """
        known = {f.name: f for f in fields(cls)}
        for key, value in section.items():
            name = f"{where}: {SECTION}.{key}"
            if key not in known:
                raise ConfigError(f"{name} is not a retention setting; known: {', '.join(known)}")
            if key in WHOLE_NUMBERS:
                least = WHOLE_NUMBERS[key]
                if isinstance(value, bool) or not isinstance(value, int) or value < least:
                    raise ConfigError(f"{name} = {value!r}: must be a whole number >= {least}")
            elif not isinstance(value, bool):  # staging, remote
                raise ConfigError(f"{name} = {value!r}: must be true or false")
        return cls(**section)


def read_policy(path: Path) -> Policy:
    """The retention policy of the params file at ``path`` (defaults without a section).

    Raises:
        ConfigError: the file or its ``retention`` section is not valid (one line, naming the key).
    """
    section = load_params(path, SECTION)
    return Policy.from_params(section, str(path))
