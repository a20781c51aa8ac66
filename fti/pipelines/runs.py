"""What every pipeline run starts from, and the days no run filled.

``setup`` reads the settings when a task runs (never when a DAG file is parsed) and loads the
checked project they name; ``check_dates`` refuses dates a run may not compute; ``report_gaps``
says which days a group or model has no output for (the feature DAG logs them: catch-up is off).
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from fti.db.engine import session_scope
from fti.definitions import Project, load_project
from fti.errors import FtiError
from fti.monitoring.gaps import Gap, missing_dates
from fti.settings import Settings, get_settings
from fti.store.versions import FeatureStore

log = logging.getLogger("fti.pipelines")  # every step's logger (see fti/pipelines/__init__.py)


def days(start: date, end: date) -> list[date]:
    if end < start:
        raise FtiError(f"date range is empty: end {end} is before start {start}")
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def setup(settings: Settings | None = None) -> tuple[Settings, Project]:
    """The settings (read now) and the checked project definition they name."""
    settings = settings or get_settings()
    return settings, load_project(settings.project)


def check_dates(project: Project, start: date, end: date) -> None:
    """Refuse dates before the project's start date: no run may "succeed" doing nothing."""
    if start < project.first_date:
        raise FtiError(
            f"{start} is before the start date {project.first_date} of project "
            f"{project.name!r}: run dates from then on (or move start_date in the definition)"
        )
    if end < start:
        raise FtiError(f"date range is empty: end {end} is before start {start}")


def find_gaps(through: date, settings: Settings | None = None) -> list[Gap]:
    """The dates missing from the project's start through ``through``: groups without the
    day's partition, models without the day's slice (fti.monitoring.gaps)."""
    settings, project = setup(settings)
    with session_scope(settings.db_url) as session:
        return missing_dates(FeatureStore(settings.store_path), session, project, through)


def report_gaps(through: date, settings: Settings | None = None) -> list[dict[str, Any]]:
    """Log the gaps through ``through``, a warning each with the command that fills it."""
    gaps = find_gaps(through, settings)
    for gap in gaps:
        ranges = ", ".join(f"{a}..{b}" if a != b else f"{a}" for a, b in gap.ranges())
        log.warning(
            "fti: %s %s has no %s for %s day(s) up to %s: %s; fill them with: %s",
            "model" if gap.kind == "predictions" else "group",
            gap.name,
            "predictions" if gap.kind == "predictions" else "partition",
            len(gap.days),
            through,
            ranges,
            "; ".join(gap.fill()[:3]),
        )
    return [gap.as_dict() for gap in gaps]
