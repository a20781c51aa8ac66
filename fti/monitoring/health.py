"""Platform health: is every group, label group and model fresh, and did a recent night fail?

Freshness compares the newest date each one holds with the newest date its declared
expectation (``fresh_by``, fti.definitions.Freshness) says is due at ``now``:

- a feature group: the ``max_date`` of its newest version in the catalog;
- a label group: the same, against the due night's date minus its horizon (labels mature);
- a model: the newest as-of date a prediction run scored successfully.

``fresh`` holds the due date (or nothing is due yet), ``stale`` lags behind it, ``never`` has
nothing yet though something is due. Judged on the data (``through``, fti.monitoring.clock), no
date after the newest raw date is due, whatever ``now``. Failures are what fti's own tables record for the last
``nights`` nights: prediction runs that failed (``resolved`` when a later run of the same model
and date succeeded) and raw files validation rejected. `fti monitor health` prints it all and
exits non-zero when something is stale, never published, or failed and unresolved.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fti.db.tables import FeatureVersion, ModelVersion, PredictionRun, ValidationRun
from fti.definitions import FeatureGroup, Freshness, LabelGroup, Model, Project
from fti.monitoring.gaps import Gap
from fti.monitoring.realized import (
    LabelReader,
    RealizedRules,
    Window,
    breaches_of,
    realized_windows,
)
from fti.ownership import FEATURES, LABELS, MODEL, SOURCE
from fti.registry import aliases
from fti.store.versions import FeatureStore

FRESH, STALE, NEVER = "fresh", "stale", "never"
# Realized performance of a champion: within its rules, worse than them, too few labelled rows
# in the window to judge, or nothing realized yet (labels not matured, or nothing scored).
WITHIN, BELOW, UNJUDGED, NONE_YET = "ok", "below", "not judged", "none yet"
REALIZED_COLUMNS = ("model", "owner", "champion", "realized", "status", "window", "rows", "holdout")
NIGHTS = 7  # failures of this many nights back are listed by default


@dataclass(frozen=True)
class FreshnessStatus:
    """The freshness of one feature group (``kind`` features), label group (labels) or model
    (predictions) at ``now``.

    ``newest_date``: the newest date it holds (None: nothing yet); ``expected_date``: the
    newest date due at ``now`` (None: nothing due yet, before the project's start);
    ``due_at``: when ``expected_date`` was due; ``version``: the group version or model
    version holding ``newest_date``, published (or scored) at ``published_at``;
    ``age_hours``: hours from the end of ``newest_date`` to ``now``; ``fill``: the commands
    that catch up.
    """

    kind: str
    name: str
    status: str
    newest_date: date | None
    expected_date: date | None
    due_at: datetime | None
    version: int | None
    published_at: datetime | None
    age_hours: float | None
    days_behind: int | None
    fill: list[str] = field(default_factory=list)
    owner: str | None = None  # the project that owns it (fti.ownership); None: not claimed yet

    @property
    def healthy(self) -> bool:
        return self.status == FRESH

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "owner": self.owner,
            "status": self.status,
            "newest_date": _iso(self.newest_date),
            "expected_date": _iso(self.expected_date),
            "due_at": _iso(self.due_at),
            "version": self.version,
            "published_at": _iso(self.published_at),
            "age_hours": self.age_hours,
            "days_behind": self.days_behind,
            "fill": self.fill,
        }

    def problem(self) -> str:
        """One line saying what is late and what to do (for stderr)."""
        what = {"features": "feature group", "labels": "label group"}.get(self.kind, "model")
        due = f"{self.expected_date} was due at {self.due_at:%Y-%m-%d %H:%M} UTC"
        if self.status == NEVER:
            held = "has nothing yet"
        else:
            held = f"is {self.days_behind} day(s) behind (newest {self.newest_date})"
        fix = f"; catch up with: {'; '.join(self.fill[:3])}" if self.fill else ""
        return f"{self.status}: {what} {self.name!r} {held}; {due}{fix}"


@dataclass(frozen=True)
class Failure:
    """A failure fti recorded: a failed prediction run (``kind`` prediction_run, ``name`` the
    model) or a raw file validation rejected (validation_run, ``name`` the source)."""

    kind: str
    name: str
    date: date
    run_id: str
    reason: str
    at: datetime | None
    resolved: bool
    owner: str | None = None  # of the model or the source (fti.ownership)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "owner": self.owner,
            "date": self.date.isoformat(),
            "run_id": self.run_id,
            "reason": self.reason,
            "at": _iso(self.at),
            "resolved": self.resolved,
        }

    def problem(self) -> str:
        if self.kind == "prediction_run":
            fix = f"fix the cause, then rerun: fti infer --model {self.name} --date {self.date}"
        else:
            # A DAG run's ref is '<dag id>/<run id>': its project's feature pipeline reruns it.
            dag, _, airflow_run = self.run_id.partition("/")
            rerun = (
                f"airflow backfill create --dag-id {dag} --from-date {self.date} "
                f"--to-date {self.date}"
                if airflow_run
                else f"fti features run --date {self.date}"
            )
            fix = f"fix or replace the file, then rerun the night: {rerun}"
        return (
            f"failed: {self.kind.replace('_', ' ')} {self.name} {self.date}: {self.reason}; {fix}"
        )


@dataclass(frozen=True)
class RealizedStatus:
    """How a model's champion did once the labels of what it scored landed: its realized
    metric over the pooled rows of the newest ``window_days`` labelled dates (params.yaml
    ``monitor.realized``), beside its holdout figure; ``breach`` says which rule it breaks. Shown, never counted in
    ``Health.healthy``: a breach is alerted through the webhook when the labels land."""

    model: str
    champion: int | None
    status: str
    window: Window | None
    breach: str | None
    owner: str | None = None  # of the model (fti.ownership)

    def row(self) -> dict[str, Any]:
        """One row of the realized table (``REALIZED_COLUMNS``), figures as short text."""
        window = self.window
        return {
            "model": self.model,
            "owner": self.owner,
            "champion": self.champion,
            "realized": window.figure if window else None,
            "status": self.status,
            "window": f"{window.first_date}..{window.last_date}" if window else None,
            "rows": window.rows if window else None,
            "holdout": None
            if window is None or window.holdout_value is None
            else f"{window.holdout_value:.4g}",
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "owner": self.owner,
            "champion": self.champion,
            "status": self.status,
            "window": self.window.as_dict() if self.window else None,
            "breach": self.breach,
        }


@dataclass(frozen=True)
class Health:
    """Freshness of everything the project defines and the recent failures, at ``now``;
    ``through``: the newest raw date when judged on the data (fti.monitoring.clock)."""

    now: datetime
    nights: int
    freshness: list[FreshnessStatus]
    failures: list[Failure]
    realized: list[RealizedStatus] = field(default_factory=list)
    through: date | None = None

    @property
    def healthy(self) -> bool:
        return all(f.healthy for f in self.freshness) and all(f.resolved for f in self.failures)

    def problems(self) -> list[str]:
        """One line per stale / never published item and per unresolved failure."""
        return [f.problem() for f in self.freshness if not f.healthy] + [
            f.problem() for f in self.failures if not f.resolved
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "healthy": self.healthy,
            "now": self.now.isoformat(),
            "newest_raw_date": _iso(self.through),
            "nights": self.nights,
            "freshness": [f.as_dict() for f in self.freshness],
            "failures": [f.as_dict() for f in self.failures],
            "realized": [r.as_dict() for r in self.realized],
        }


def health(
    session: Session,
    project: Project,
    now: datetime | None = None,
    nights: int = NIGHTS,
    store: FeatureStore | None = None,
    rules: RealizedRules | None = None,
    through: date | None = None,
) -> Health:
    """The project's health at ``now`` (default: the current time; naive means UTC).

    With ``store``, only catalog versions whose git tag exists count (a publish killed between
    its catalog row and its tag leaves a row for a version that does not exist), and the
    champions' realized performance is judged (its labels are read from it; without a store
    the realized table is empty). ``rules``: params.yaml's ``monitor.realized`` (default: its
    defaults). ``through``: no date after it is due (the newest raw date, judged on the data).
    """
    now = utc(now or datetime.now(UTC))
    rules = rules or RealizedRules.from_params({})
    labels = None if store is None else LabelReader.from_project(store, project)
    return Health(
        now=now,
        nights=nights,
        freshness=freshness(session, project, now, store, through),
        failures=failures(session, now, nights),
        realized=[]
        if labels is None
        else [realized_status(session, model.name, rules, labels) for model in project.models],
        through=through,
    )


# What owns a health item, as fti.ownership names it: by freshness kind and failure kind.
OWNED_AS = {
    "features": FEATURES,
    "labels": LABELS,
    "predictions": MODEL,
    "prediction_run": MODEL,
    "validation_run": SOURCE,
}


def with_owners(
    report: Health, owners: Mapping[tuple[str, str], str], project: str | None = None
) -> Health:
    """``report`` with each item's owner from ``owners`` (fti.ownership.owners); with
    ``project``, only the items that project owns."""
    freshness = [replace(f, owner=owners.get((OWNED_AS[f.kind], f.name))) for f in report.freshness]
    failures = [replace(f, owner=owners.get((OWNED_AS[f.kind], f.name))) for f in report.failures]
    realized = [replace(r, owner=owners.get((MODEL, r.model))) for r in report.realized]
    if project is not None:
        freshness = [f for f in freshness if f.owner == project]
        failures = [f for f in failures if f.owner == project]
        realized = [r for r in realized if r.owner == project]
    return replace(report, freshness=freshness, failures=failures, realized=realized)


def realized_status(
    session: Session, model: str, rules: RealizedRules, labels: LabelReader
) -> RealizedStatus:
    """The champion's realized performance over the pooled rows of the newest
    ``rules.window_days`` dates (``labels`` reads their labels)."""
    champion = aliases.current(session, model, aliases.CHAMPION)
    window = next(
        (
            w
            for w in realized_windows(session, model, rules.window_days, labels)
            if w.model_version == champion
        ),
        None,
    )
    breach = next((b.message for b in breaches_of([window] if window else [], rules)), None)
    if window is None:
        status = NONE_YET
    elif window.rows < rules.min_rows or window.value is None:
        status = UNJUDGED
    else:
        status = BELOW if breach else WITHIN
    return RealizedStatus(model, champion, status, window, breach)


def freshness(
    session: Session,
    project: Project,
    now: datetime,
    store: FeatureStore | None = None,
    through: date | None = None,
) -> list[FreshnessStatus]:
    """One row per feature group, label group and model, in the definition's order; with
    ``through``, no date after it is due."""
    now = utc(now)
    rows = [
        _group_freshness(session, project, group, now, store, through) for group in project.groups
    ]
    rows += [_model_freshness(session, project, model, now, through) for model in project.models]
    return rows


def _group_freshness(
    session: Session,
    project: Project,
    group: FeatureGroup | LabelGroup,
    now: datetime,
    store: FeatureStore | None,
    through: date | None,
) -> FreshnessStatus:
    query = (
        select(FeatureVersion)
        .where(FeatureVersion.group_name == group.name)
        .order_by(FeatureVersion.version.desc())
    )
    tagged = set(store.versions(group.name)) if store is not None else None
    newest = next(
        (row for row in session.scalars(query) if tagged is None or row.version in tagged), None
    )
    held = (newest.max_date, newest.version, newest.created_at) if newest else None
    return _judge(
        group.kind, group.name, group.fresh_by, group.horizon, project, held, now, through
    )


def _model_freshness(
    session: Session, project: Project, model: Model, now: datetime, through: date | None
) -> FreshnessStatus:
    newest_date = session.scalar(
        select(func.max(PredictionRun.as_of_date)).where(
            PredictionRun.model_name == model.name, PredictionRun.status == "succeeded"
        )
    )
    held = None
    if newest_date is not None:
        run = session.scalars(
            select(PredictionRun)
            .where(
                PredictionRun.model_name == model.name,
                PredictionRun.status == "succeeded",
                PredictionRun.as_of_date == newest_date,
            )
            .order_by(PredictionRun.finished_at.desc())
            .limit(1)
        ).one()
        held = (newest_date, run.model_version, run.finished_at)
    found = _judge("predictions", model.name, model.fresh_by, 0, project, held, now, through)
    trained = session.scalar(select(func.count()).where(ModelVersion.name == model.name))
    if found.fill and not trained:  # nothing to score with yet
        return replace(found, fill=[f"fti train --model {model.name}", *found.fill])
    return found


def _judge(
    kind: str,
    name: str,
    fresh_by: Freshness,
    horizon: int,
    project: Project,
    held: tuple[date | None, int | None, datetime | None] | None,
    now: datetime,
    through: date | None = None,
) -> FreshnessStatus:
    """Compare what is held (newest date, version, published at) with what is due at ``now``
    (no night after ``through``, when given).

    A label group's dates lag its runs by ``horizon`` days: the night of D publishes D - horizon.
    """
    night = fresh_by.expected_date(now)
    if through is not None:
        night = min(night, through)
    labelled = night - timedelta(days=horizon)
    expected = labelled if labelled >= project.first_date else None  # None: nothing due yet
    newest, version, published_at = held if held else (None, None, None)
    if expected is None or (newest is not None and newest >= expected):
        status = FRESH
    else:
        status = NEVER if newest is None else STALE
    fill: list[str] = []
    if status != FRESH and expected is not None:
        # A group catches up from the project's start; a model never scored from the due date
        # (its history before it was never meant to be scored).
        start = expected if kind == "predictions" else project.first_date
        first = newest + timedelta(days=1) if newest else start
        runs = [first + timedelta(days=n + horizon) for n in range((expected - first).days + 1)]
        fill = Gap(kind, name, runs, project.name).fill()
    return FreshnessStatus(
        kind=kind,
        name=name,
        status=status,
        newest_date=newest,
        expected_date=expected,
        due_at=fresh_by.due(night) if expected is not None else None,
        version=version,
        published_at=utc(published_at) if published_at else None,
        age_hours=_hours(now - _end_of(newest)) if newest else None,
        days_behind=(expected - newest).days if expected and newest else None,
        fill=fill,
    )


def failures(session: Session, now: datetime, nights: int = NIGHTS) -> list[Failure]:
    """Failed prediction runs and rejected raw files of the dates from ``nights`` nights
    before ``now`` through ``now``, newest first."""
    since = utc(now).date() - timedelta(days=nights)
    found: list[Failure] = []
    failed = session.scalars(
        select(PredictionRun).where(
            PredictionRun.status == "failed", PredictionRun.as_of_date >= since
        )
    ).all()
    succeeded = session.execute(
        select(PredictionRun.model_name, PredictionRun.as_of_date, PredictionRun.finished_at).where(
            PredictionRun.status == "succeeded", PredictionRun.as_of_date >= since
        )
    ).all()
    for run in failed:
        at = utc(run.finished_at or run.started_at)
        later = any(
            name == run.model_name and day == run.as_of_date and finished and utc(finished) >= at
            for name, day, finished in succeeded
        )
        found.append(
            Failure(
                "prediction_run",
                run.model_name,
                run.as_of_date,
                run.run_id,
                _one_line(run.error),
                at,
                later,
            )
        )
    rejected = session.scalars(
        select(ValidationRun).where(
            ValidationRun.status == "rejected", ValidationRun.logical_date >= since
        )
    )
    for row in rejected:
        found.append(
            Failure(
                "validation_run",
                row.source,
                row.logical_date,
                row.run_id,
                _one_line(f"{row.file}: {row.reason}" if row.reason else row.file),
                utc(row.created_at),
                False,  # the row is the file's latest validation: nothing replaced it yet
            )
        )
    return sorted(found, key=lambda f: (f.date, f.at or now), reverse=True)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive one is read as UTC: SQLite hands datetimes back naive)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _end_of(day: date) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), UTC)


def _hours(delta: timedelta) -> float:
    return round(delta.total_seconds() / 3600, 1)


def _one_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[0][:300] if lines else "(no reason recorded)"


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
