"""What every view model is made of: links (into fti's pages and out to Airflow's), chips,
breadcrumbs, and the status words of each kind mapped to Airflow's task-state colours."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

# fti's status words -> the Airflow task state whose colour they take (the stylesheet's
# .state-<name>): green for what is done and well, red for what failed, amber for what is
# missing, grey for what is neither.
STATES = {
    "succeeded": "success",
    "success": "success",
    "fresh": "success",
    "ok": "success",
    "within thresholds": "success",
    "resolved": "removed",
    "drift flagged": "up_for_retry",
    "failed": "failed",
    "stale": "failed",
    "below": "failed",
    "breached": "failed",
    "unresolved": "failed",
    "never": "upstream_failed",
    "running": "running",
    "queued": "queued",
    "scheduled": "scheduled",
    "up_for_retry": "up_for_retry",
    "upstream_failed": "upstream_failed",
    "skipped": "skipped",
    "deferred": "deferred",
    "not judged": "skipped",
    "none yet": "none",
    "features": "info",
    "labels": "labels",
    "champion": "success",
}


def state_of(status: str | None) -> str:
    """The Airflow state whose colour ``status`` takes (``none`` when it has none)."""
    return STATES.get((status or "").lower(), "none")


@dataclass(frozen=True)
class Link:
    """A link: ``top`` ones are Airflow's own pages, opened in the whole window (the fti
    pages sit in an iframe of Airflow's UI)."""

    text: str
    href: str
    top: bool = False
    title: str | None = None


@dataclass(frozen=True)
class Chip:
    """A short labelled value (a version, an alias, a feature), maybe a link."""

    text: str
    href: str | None = None
    title: str | None = None
    tone: str = "neutral"


@dataclass(frozen=True)
class Urls:
    """Where things are: fti's pages relative to the fti root (each page sets ``<base>`` to
    it), Airflow's pages under its root path (``/`` or ``[api] base_url``'s path)."""

    airflow_root: str = "/"

    def group_version(self, group: str, version: int) -> str:
        return f"features/{quote(group, safe='')}/{version}"

    def model_version(self, name: str, version: int) -> str:
        return f"models/{quote(name, safe='')}/{version}"

    def model_metrics(self, name: str) -> str:
        return f"models/{quote(name, safe='')}/metrics"

    def model_realized(self, name: str) -> str:
        return f"models/{quote(name, safe='')}/realized"

    def drift(self, run_id: str) -> str:
        return "drift?" + urlencode({"run_id": run_id})

    def airflow_dag(self, dag_id: str) -> str:
        return f"{self.airflow_root}dags/{quote(dag_id, safe='')}"

    def airflow_run(self, dag_id: str, run_id: str) -> str:
        return f"{self.airflow_root}dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"

    def lineage_run(self, run_id: str | None) -> Link | None:
        """A lineage run id, ``<dag_id>/<Airflow run id>``, linked to that run's page; an id
        of another shape (a run from the command line) as plain text."""
        if not run_id:
            return None
        dag_id, _, airflow_run = run_id.partition("/")
        if not airflow_run:
            return Link(run_id, "")
        return Link(
            run_id, self.airflow_run(dag_id, airflow_run), top=True, title="open the Airflow run"
        )

    def prediction_run(self, run_id: str, airflow_run_id: str | None) -> Link:
        """A prediction run's id linked to the Airflow run fti recorded for it (a run of a mapped
        task carries a ``__N`` suffix its DAG run has not); a run from the CLI links nowhere."""
        dag_id, _, _ = run_id.partition("/")
        if not airflow_run_id or not dag_id or dag_id == run_id:
            return Link(run_id, "")
        return Link(
            run_id, self.airflow_run(dag_id, airflow_run_id), top=True, title="open the Airflow run"
        )

    def group_chips(self, versions: dict[str, Any] | None) -> list[Chip]:
        """``group vN`` chips for each group a model version or run read, spine first."""
        return [
            Chip(
                f"{group} v{version}",
                self.group_version(group, int(version)),
                "feature group version",
            )
            for group, version in (versions or {}).items()
            if version is not None
        ]


@dataclass(frozen=True)
class Page:
    """What the base layout needs: the title, the breadcrumbs (the last one is this page), and
    the related pages linked at the top right."""

    title: str
    crumbs: list[Link]
    related: list[Link] = field(default_factory=list)
    rendered_at: datetime | None = None
