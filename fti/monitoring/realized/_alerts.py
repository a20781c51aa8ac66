"""Alerts on realized performance: params.yaml's ``monitor.realized`` rules, each model
version's realized metric over the newest as-of dates (``Window``: the metric of the window's
pooled rows), the versions that break a rule (``Breach``), logged and posted to the notifier."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fti.db.engine import session_scope
from fti.db.tables import RealizedMetric
from fti.definitions import load_project
from fti.errors import ConfigError
from fti.manifest import project_dag_id
from fti.monitoring import notify
from fti.monitoring.realized._pool import LabelReader, pool_rows
from fti.monitoring.realized._tables import realized_rows
from fti.params import load_params
from fti.settings import Settings
from fti.store.versions import FeatureStore
from fti.training import metrics

log = logging.getLogger(__name__)

FEATURE_DAG = "feature_pipeline"  # the project's DAG whose publish of a label group judges them


class RealizedRules(BaseModel):
    """params.yaml's ``monitor.realized`` section: when realized performance is alarming.

    Over the newest ``window_days`` as-of dates of a model's realized metrics, each version's
    metric (over the window's rows pooled, as ``Window``) is judged once it has ``min_rows`` rows:
    worse than ``thresholds[model]`` (in the metric's direction: below for scores, above for
    losses), or worse than the version's holdout figure by more than ``holdout_margin``.
    """

    model_config = ConfigDict(extra="forbid")

    window_days: int = Field(28, ge=1)
    min_rows: int = Field(100, ge=1)
    holdout_margin: float | None = Field(None, ge=0)
    thresholds: dict[str, float] = Field(default_factory=dict)

    @classmethod
    def from_params(cls, section: dict[str, Any], where: str = "params.yaml") -> RealizedRules:
        """Raises ConfigError naming the file and the key when the section is malformed."""
        try:
            return cls.model_validate(section or {})
        except ValidationError as exc:
            problem = exc.errors()[0]
            key = ".".join(str(p) for p in problem["loc"])
            raise ConfigError(
                f"{where}: monitor.realized.{key}: {problem['msg']} (keys: window_days, "
                "min_rows, holdout_margin, thresholds: {model: value})"
            ) from exc


def realized_rules(settings: Settings) -> RealizedRules:
    """params.yaml's ``monitor.realized`` rules (its defaults when the section is absent).

    Raises:
        ConfigError: the section is malformed (names the file and the key).
    """
    section = load_params(settings.params_file, "monitor").get("realized") or {}
    return RealizedRules.from_params(section, str(settings.params_file))


@dataclass(frozen=True)
class Breach:
    """A model version whose realized metric over the window broke a rule."""

    model_name: str
    model_version: int
    alias: str | None
    metric: str
    value: float
    rows: int
    first_date: date
    last_date: date
    rule: str  # threshold | holdout
    limit: float

    @property
    def message(self) -> str:
        compared = (
            f"threshold {self.limit:.4g}"
            if self.rule == "threshold"
            else f"holdout {self.limit:.4g} minus the margin"
        )
        return (
            f"{self.model_name} v{self.model_version}: realized {self.metric} {self.value:.4g} "
            f"over {self.first_date}..{self.last_date} ({self.rows} rows) is worse than its "
            f"{compared}; see `fti monitor realized --model {self.model_name}`"
        )

    def as_dict(self) -> dict[str, Any]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return found | {
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
            "message": self.message,
        }


@dataclass(frozen=True)
class Window:
    """A model version's realized metric over the newest as-of dates of its model: the metric
    of the ``rows`` prediction/label rows of its ``dates`` dates ``first_date`` ..
    ``last_date`` pooled (an RMSE is the root of the mean squared error of those rows, a ROC
    AUC ranks all of them), never an average of the dates' values. ``value`` None: the metric
    is not defined on these rows, and ``reason`` says why."""

    model_name: str
    model_version: int
    alias: str | None
    metric: str
    value: float | None
    rows: int
    dates: int
    first_date: date
    last_date: date
    holdout_value: float | None
    reason: str | None = None

    @property
    def figure(self) -> str:
        """``metric value`` (4 significant digits), or ``metric: reason`` when undefined."""
        if self.value is None:
            return f"{self.metric}: {self.reason}"
        return f"{self.metric} {self.value:.4g}"

    def as_dict(self) -> dict[str, Any]:
        found = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return found | {
            "first_date": self.first_date.isoformat(),
            "last_date": self.last_date.isoformat(),
        }


def realized_windows(
    session: Session, model: str, window_days: int, labels: LabelReader
) -> list[Window]:
    """Each version of ``model`` with realized metrics in the newest ``window_days`` as-of
    dates any of its versions has, by version (empty: nothing recorded yet): its metric over
    the pooled rows of those dates, read one date at a time (``labels`` reads them)."""
    newest = session.scalar(
        select(func.max(RealizedMetric.as_of_date)).where(RealizedMetric.model_name == model)
    )
    if newest is None:
        return []
    first = newest - timedelta(days=window_days - 1)
    recorded = realized_rows(session, model, start=first, end=newest)
    pools = pool_rows(session, model, recorded, labels)
    found = []
    for version, pool in sorted(pools.items()):
        days = [r for r in recorded if r["model_version"] == version and r["rows"]]
        if not days or pool.rows == 0:
            continue
        value, reason = pool.value()
        found.append(
            Window(
                model,
                version,
                days[-1]["alias"],
                pool.metric,
                value,
                pool.rows,
                pool.dates,
                date.fromisoformat(days[0]["as_of_date"]),
                date.fromisoformat(days[-1]["as_of_date"]),
                days[-1]["holdout_value"],
                reason,
            )
        )
    return found


def realized_breaches(
    session: Session, model: str, rules: RealizedRules, labels: LabelReader
) -> list[Breach]:
    """The versions of ``model`` whose realized metric over the newest ``window_days`` as-of
    dates breaks ``rules`` (empty: nothing to alert about, or too few rows to judge)."""
    return breaches_of(realized_windows(session, model, rules.window_days, labels), rules)


def breaches_of(windows: Sequence[Window], rules: RealizedRules) -> list[Breach]:
    """The rules of ``rules`` that each of ``windows`` breaks; a window of fewer than
    ``min_rows`` rows, or whose metric is undefined, breaks none."""
    breaches = []
    for window in windows:
        if window.rows < rules.min_rows or window.value is None:
            continue
        higher = metrics.higher_is_better(window.metric)
        limits = []
        if window.model_name in rules.thresholds:
            threshold = rules.thresholds[window.model_name]
            limits.append(("threshold", threshold, threshold))
        holdout = window.holdout_value
        if rules.holdout_margin is not None and holdout is not None:
            margin = rules.holdout_margin if higher else -rules.holdout_margin
            limits.append(("holdout", holdout, holdout - margin))
        for rule, shown, limit in limits:
            if (window.value < limit) if higher else (window.value > limit):
                breaches.append(
                    Breach(
                        window.model_name,
                        window.model_version,
                        window.alias,
                        window.metric,
                        window.value,
                        window.rows,
                        window.first_date,
                        window.last_date,
                        rule,
                        shown,
                    )
                )
    return breaches


def realized_alerts(
    settings: Settings, models: Sequence[str], run_id: str | None = None
) -> list[Breach]:
    """The breaches of params.yaml's ``monitor.realized`` rules by ``models``, each logged as a
    warning and posted to ``FTI_ALERT_WEBHOOK_URL`` (``realized_below``, the same notifier as
    deadlines and failed tasks; ``run_id``: the feature run whose labels were judged). No
    section: the defaults, which judge nothing without ``thresholds`` or ``holdout_margin``."""
    rules = realized_rules(settings)
    if not rules.thresholds and rules.holdout_margin is None:
        return []  # nothing to judge against: no window is read
    project = load_project(settings.project)
    labels = LabelReader.from_project(FeatureStore(settings.store_path), project)
    feature_dag = project_dag_id(project.name, FEATURE_DAG)
    with session_scope(settings.db_url) as session:
        found = [b for model in models for b in realized_breaches(session, model, rules, labels)]
    for breach in found:
        log.warning("fti: realized performance alert: %s", breach.message)
        payload = notify.alert(
            event="realized_below",
            project=settings.project,
            dag_id=feature_dag,
            run_id=run_id or "",
            logical_date=None,
            what=f"model {breach.model_name} v{breach.model_version}",
            reason=breach.message,
            link=notify.run_link(os.environ.get("AIRFLOW__API__BASE_URL"), feature_dag, run_id)
            if run_id
            else "",
            breach=breach.as_dict(),
        )
        notify.send(payload, settings.alert_webhook_url)
    return found
