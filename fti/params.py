"""ML hyper-parameters from params.yaml: one section per stage, shared by dvc.yaml and the DAGs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fti.errors import ConfigError

# The sections fti reads (a DVC stage of the team's own may read others from the same file).
SECTIONS = {
    "train": "each model's hyper-parameters",
    "promote": "the promotion gate",
    "monitor": "drift, realized performance and the judging clock",
    "shards": "sharded builds and scoring",
    "queues": "the Celery queue of each pipeline",
    "schedule": "the DAGs' schedules",
    "deadlines": "the DAGs' deadline alerts",
    "retention": "fti gc",
    "access": "the Airflow roles that may run the project",
    "data": "dvc.yaml's raw folder and range",
    "project": "dvc.yaml's package folder",
}


def unread_sections(path: Path) -> list[str]:
    """A note per top-level section of ``path`` that fti does not read (a misspelt
    ``retension:`` is silently ignored by every run); none when the file cannot be read."""
    try:
        found = read_params(path)
    except ConfigError:
        return []  # params_problems names it
    return [
        f"{path}: section {name!r} is not one fti reads ({', '.join(SECTIONS)}); fti ignores "
        "it: fix its name if it is meant for fti"
        for name in found
        if name not in SECTIONS
    ]


def read_params(path: Path) -> dict[str, Any]:
    """The whole of ``path``: a mapping of sections (an empty file is no sections).

    Raises:
        ConfigError: the file is missing, not YAML, or not a mapping of sections.
    """
    if not path.exists():
        raise ConfigError(
            f"{path}: params file not found; set FTI_PARAMS_FILE to the project's params.yaml"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: must be a mapping of sections (train:, promote:, ...), "
            f"got {type(data).__name__}"
        )
    return data


def load_params(path: Path, stage: str) -> dict[str, Any]:
    """The ``stage`` section of ``path``; an empty dict when the file has none."""
    section = read_params(path).get(stage, {})
    if not isinstance(section, dict):
        raise ConfigError(
            f"{path}: section {stage!r} must be a mapping, got {type(section).__name__}"
        )
    return section


def model_params(path: Path, model: str) -> dict[str, Any]:
    """A model's hyper-parameters: the ``train.<model>`` section of ``path`` (a copy)."""
    section = load_params(path, "train").get(model, {})
    if not isinstance(section, dict):
        raise ConfigError(
            f"{path}: train.{model} must be a mapping of hyper-parameters, "
            f"got {type(section).__name__}"
        )
    return dict(section)
