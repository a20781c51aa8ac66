"""Dates missing between the project's start and a day: groups without their partition, models
without their prediction slice.

Airflow's DAGs run with ``catchup=False``: a fresh deployment or a paused week leaves days that
no run processed, and nothing else says so. This module finds them; the feature pipeline logs
them, `fti monitor gaps` prints them with the command that fills them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from fti.db.tables import PredictionRun
from fti.definitions import Project
from fti.errors import VersionNotFoundError
from fti.manifest import project_dag_id
from fti.store.versions import FeatureStore


@dataclass(frozen=True)
class Gap:
    """Days of a group (``kind`` features / labels) or a model (predictions) not done.

    ``run_offset``: days from a missing date to the night that publishes it (a label group's
    horizon: the labels of L are published by the feature run of L + horizon). ``project``:
    whose feature pipeline (``<project>_feature_pipeline``) fills a group's gap."""

    kind: str
    name: str
    days: list[date]
    project: str
    run_offset: int = 0

    def ranges(self) -> list[tuple[date, date]]:
        """The days as contiguous (first, last) ranges."""
        found: list[tuple[date, date]] = []
        for day in self.days:
            if found and (day - found[-1][1]).days == 1:
                found[-1] = (found[-1][0], day)
            else:
                found.append((day, day))
        return found

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "days": len(self.days),
            "ranges": [[a.isoformat(), b.isoformat()] for a, b in self.ranges()],
            "fill": self.fill(),
        }

    def fill(self) -> list[str]:
        """The commands that fill the gap: a backfill of the feature pipeline (its new versions
        start training and scoring), or scoring the days."""
        if self.kind == "predictions":
            return [
                f"fti infer --model {self.name} --date {day.isoformat()}" for day in self.days[:31]
            ]
        shift = timedelta(days=self.run_offset)
        return [
            f"airflow backfill create --dag-id {project_dag_id(self.project, 'feature_pipeline')} "
            f"--from-date {(first + shift).isoformat()} --to-date {(last + shift).isoformat()}"
            for first, last in self.ranges()
        ]


def _span(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def missing_dates(
    store: FeatureStore, session: Session, project: Project, through: date
) -> list[Gap]:
    """Every group's dates from the project's start through ``through`` (a label group's
    through ``through`` - horizon) that its newest version lacks, and every model's dates that
    its spine group holds but no succeeded prediction run scored."""
    gaps = []
    held: dict[str, set[date]] = {}
    for group in project.groups:
        last = through - timedelta(days=group.horizon)
        held[group.name] = dates = _newest_dates(store, group.name)
        missing = [d for d in _span(project.first_date, last) if d not in dates]
        if missing:
            gaps.append(
                Gap(group.kind, group.name, missing, project.name, run_offset=group.horizon)
            )
    for model in project.models:
        spine = project.model_groups(model)[0]
        if spine not in held:  # a group it reads: watched for its model, not for gaps of its own
            held[spine] = _newest_dates(store, spine)
        scored = set(
            session.scalars(
                select(PredictionRun.as_of_date).where(
                    PredictionRun.model_name == model.name, PredictionRun.status == "succeeded"
                )
            )
        )
        newest = max(held[spine], default=None)
        if newest is None:
            continue
        # Days since the model was first scored (history before it was never meant to be).
        since = min(scored, default=newest)
        missing = [d for d in sorted(held[spine]) if since <= d <= through and d not in scored]
        if missing:
            gaps.append(Gap("predictions", model.name, missing, project.name))
    return gaps


def _newest_dates(store: FeatureStore, group: str) -> set[date]:
    """The dates the newest version of ``group`` holds (none when it has no version)."""
    try:
        return set(store.partition_dates(group, store.resolve(group, "latest")))
    except VersionNotFoundError:
        return set()
