"""What a team writes to bring its own data: sources, a feature group, a label, a model.

The fti core runs any ``Project``; the churn demo (``churn_demo.project``) is one of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import pandas as pd
import pandera.pandas as pa

from fti.errors import ConfigError


@dataclass(frozen=True)
class Source:
    """Raw input files, one per logical date: ``<raw>/<name>/<YYYY-MM-DD>.csv``.

    ``schema`` is a pandera schema that coerces the string columns read from the file to
    their types and checks the row rules; ``time_column`` must fall inside the logical date.
    """

    name: str
    schema: pa.DataFrameSchema
    id_column: str
    time_column: str

    @property
    def columns(self) -> list[str]:
        return list(self.schema.columns)


@dataclass(frozen=True)
class FeatureGroup:
    """A table keyed by (entity, date) computed from ``lookback_days`` of validated events.

    ``build(events, dates)`` returns one row per entity per date in ``dates``, with the
    entity column, a ``feature_date`` column and the feature columns.
    """

    name: str
    entity: str
    lookback_days: int
    build: Callable[[pd.DataFrame, Sequence[date]], pd.DataFrame]


@dataclass(frozen=True)
class Label:
    """``build(events, keys)`` gives a 0/1 label for each (entity, label date) key.

    A label for date D is known only ``horizon_days`` later: training uses matured ones only.
    """

    name: str
    horizon_days: int
    build: Callable[[pd.DataFrame, pd.DataFrame], pd.Series]


@dataclass(frozen=True)
class ModelSpec:
    """The estimator a project trains.

    ``make_estimator(params, features)``: params from params.yaml's train section, features the
    columns it will be fitted on (``features`` here unless a training run picks others).
    """

    name: str
    features: list[str]
    make_estimator: Callable[[dict[str, Any], list[str]], Any]
    metric: str = "roc_auc"
    label_every_days: int = 7
    holdout_share: float = 0.25
    training_days: int = 120


@dataclass(frozen=True)
class Project:
    name: str
    source: Source
    feature_group: FeatureGroup
    label: Label
    model: ModelSpec
    extra: dict[str, Any] = field(default_factory=dict)


def load_project(reference: str) -> Project:
    """Import ``module:attribute`` (FTI_PROJECT) and check it is a Project."""
    module_name, _, attribute = reference.partition(":")
    try:
        project = getattr(importlib.import_module(module_name), attribute or "project")
    except (ImportError, AttributeError) as exc:
        raise ConfigError(
            f"cannot load project definition {reference!r}: {exc}. "
            "Set FTI_PROJECT to 'package.module:attribute' of an installed module."
        ) from exc
    if not isinstance(project, Project):
        raise ConfigError(
            f"{reference!r} is a {type(project).__name__}, not an fti.project.Project"
        )
    return project
