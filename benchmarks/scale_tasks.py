"""The platform's tasks as ``bench_scale.py`` runs them, each in a fresh process as a Celery worker
runs it: one call of its ``fti.pipelines`` function, with settings found from a picklable
``Where``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Where:
    """Everything a task process needs to find its settings (picklable)."""

    home: str
    raw: str
    params: str
    db_url: str


def _settings(where: Where) -> Any:
    from fti.settings import Settings

    return Settings(
        home=where.home, raw_path=where.raw, params_file=where.params, db_url=where.db_url
    )


def _generate(raw: str, start: date, end: date, customers: int) -> int:
    from churn_demo.generate import generate_at_scale

    return len(generate_at_scale(Path(raw), start, end, customers))


def _initialise(where: Where) -> None:
    from fti.setup import initialise

    initialise(_settings(where))


def _groups(where: Where) -> list[str]:
    from fti.pipelines.runs import setup

    return [g.name for g in setup(_settings(where))[1].groups]


def _validate(where: Where, start: date, end: date, run_id: str) -> dict[str, Any]:
    from fti.pipelines.features import validate_raw_events

    return validate_raw_events(start, end, run_id, _settings(where))


def _plan(where: Where, group: str, start: date, end: date, run_id: str) -> int:
    from fti.pipelines.features import plan_group

    return plan_group(group, start, end, run_id, _settings(where))


def _build(
    where: Where, group: str, start: date, end: date, run_id: str, shard: int, shards: int
) -> str | None:
    from fti.pipelines.features import build_group

    return build_group(group, start, end, run_id, _settings(where), shard=shard, shards=shards)


def _publish(where: Where, group: str, path: str, run_id: str, shards: int) -> dict[str, Any]:
    from fti.pipelines.features import publish_group

    return publish_group(group, path, run_id, _settings(where), shards=shards)


def _training_set(where: Where, model: str, run_id: str) -> str:
    from fti.pipelines.training import build_training_set

    return build_training_set(model, None, None, run_id, _settings(where))


def _train(where: Where, path: str, run_id: str) -> int:
    from fti.pipelines.training import train_model

    return train_model(path, run_id, settings=_settings(where))


def _promote(where: Where, path: str, version: int, run_id: str) -> dict[str, Any]:
    from fti.pipelines.training import promote_if_better

    return promote_if_better(path, version, run_id, _settings(where))


def _score(where: Where, model: str, as_of: date, run_id: str) -> dict[str, Any]:
    from fti.pipelines.inference import score_batch

    return score_batch(model, as_of, run_id, settings=_settings(where))
