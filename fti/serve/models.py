"""The models the service serves, one per (model, alias), swapped whole when an alias moves.

A request takes one ``Served`` snapshot at its start (``ModelHolder.get``) and uses only it,
so it never mixes two versions. A background thread (``ModelHolder.start``) looks the served
aliases up every ``poll_seconds``; when one points elsewhere it loads the new version, verifies
its artifact's sha256 (``fti.training.artifacts.load_artifact``, as batch inference does) and
only then replaces the reference: until that moment the old version answers. A version that
fails to load is not retried until its alias moves again, and the old one keeps answering.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fti.db.engine import session_scope
from fti.definitions import Project
from fti.errors import FtiError, RegistryError
from fti.inference.features import model_groups
from fti.registry import aliases
from fti.registry.versions import aliases_by_version, as_dict, get_version
from fti.training.artifacts import load_artifact

log = logging.getLogger(__name__)


class UnknownModelError(RegistryError):
    """A request named a model or alias that this service does not know."""


@dataclass(frozen=True)
class GroupFeatures:
    """One group a served model reads: its entity key, trained features and TTL in days."""

    group: str
    key: str
    features: list[dict[str, Any]]  # registry entries (name, dtype, group, ttl_days), in order
    ttl_days: int

    @property
    def columns(self) -> list[str]:
        return [f["name"] for f in self.features]


@dataclass(frozen=True)
class Served:
    """One loaded model version, as an alias pointed at it when it was loaded."""

    name: str
    alias: str
    version: int
    task: str
    estimator: Any
    groups: list[GroupFeatures]  # spine first
    features: list[str]  # the estimator's column order
    lineage: dict[str, Any]
    loaded_at: datetime
    # (group, online version) -> None when the online schema passed the skew guard, else why not
    checked: dict[tuple[str, int], str | None] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return f"{self.name} v{self.version}"


def load_served(db_url: str, project: Project, name: str, alias: str) -> Served:
    """Resolve ``alias`` of ``name`` (an alias, ``3`` or ``v3``) and load that version.

    Raises:
        UnknownModelError: the project has no such model, or the model no such alias/version.
        ArtifactIntegrityError: the artifact is missing, changed or not a safe format.
    """
    if name not in {m.name for m in project.models}:
        known = ", ".join(m.name for m in project.models) or "none"
        raise UnknownModelError(f"unknown model {name!r}; this service serves: {known}")
    with session_scope(db_url) as session:
        try:
            version = aliases.resolve(session, name, alias)
        except RegistryError as exc:
            raise UnknownModelError(str(exc)) from None
        row = get_version(session, name, version)
        held = aliases_by_version(session, name).get((name, version), [])
        lineage = as_dict(row, held, full=True)
    estimator = load_artifact(Path(row.artifact_uri), row.artifact_sha256)
    groups = [
        GroupFeatures(
            group=group,
            key=project.readable_group(group).entity.key,
            features=trained,
            ttl_days=int(trained[0].get("ttl_days", 0)),
        )
        for group, trained in model_groups(row.feature_group, row.features)
    ]
    return Served(
        name=name,
        alias=alias,
        version=row.version,
        task=row.task,
        estimator=estimator,
        groups=groups,
        features=[f["name"] for f in row.features],
        lineage=lineage,
        loaded_at=datetime.now(UTC),
    )


class ModelHolder:
    """The served models by (name, alias), the thread that follows their aliases, and what
    failed to load. ``on_swap(served)`` is called after each swap (the metrics' version)."""

    def __init__(
        self,
        db_url: str,
        project: Project,
        poll_seconds: float = 1.0,
        on_swap: Any = None,
    ) -> None:
        self.db_url = db_url
        self.project = project
        self.poll_seconds = poll_seconds
        self.on_swap = on_swap
        self._served: dict[tuple[str, str], Served] = {}
        self._failed: dict[tuple[str, str], tuple[int | None, str]] = {}
        self._load_lock = threading.Lock()  # one load at a time: no two copies of a model
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- what requests call
    def get(self, name: str, alias: str) -> Served:
        """The model an alias serves now: one snapshot for the whole request. An alias not
        served yet is loaded now (and followed from then on).

        Raises:
            UnknownModelError, ArtifactIntegrityError: as ``load_served``.
        """
        served = self._served.get((name, alias))
        if served is not None:
            return served
        with self._load_lock:
            served = self._served.get((name, alias))
            if served is None:
                served = self._swap_in(load_served(self.db_url, self.project, name, alias))
        return served

    def served(self) -> list[Served]:
        return list(self._served.values())

    def failures(self) -> dict[str, str]:
        failed = list(self._failed.items())  # a copy: the poll thread may add to it meanwhile
        return {f"{name}@{alias}": reason for (name, alias), (_, reason) in failed}

    # ---- following the aliases
    def load_champions(self) -> None:
        """Load the champion of every model of the project that has one (at start)."""
        for model in self.project.models:
            try:
                self.get(model.name, aliases.CHAMPION)
            except UnknownModelError as exc:
                log.warning("not serving %s yet: %s", model.name, exc)
                self._failed[(model.name, aliases.CHAMPION)] = (None, str(exc))
            except FtiError as exc:
                log.error("cannot serve %s: %s", model.name, exc)
                self._failed[(model.name, aliases.CHAMPION)] = (None, str(exc))

    def refresh(self) -> list[Served]:
        """Look every followed alias up once; load and swap in those that moved. Returns the
        newly served models."""
        wanted = set(self._served) | set(self._failed)
        with session_scope(self.db_url) as session:
            pointed = {
                key: aliases.current(session, *key)
                for key in wanted
                if not key[1].removeprefix("v").isdigit()  # a pinned version never moves
            }
        swapped = []
        for key, version in pointed.items():
            current = self._served.get(key)
            if version is None or (current is not None and current.version == version):
                continue
            failed = self._failed.get(key)
            if failed is not None and failed[0] == version:
                continue  # this version failed to load; wait for the alias to move again
            try:
                with self._load_lock:
                    swapped.append(self._swap_in(load_served(self.db_url, self.project, *key)))
            except FtiError as exc:
                log.error("%s@%s moved to v%s, which cannot be served: %s", *key, version, exc)
                self._failed[key] = (version, str(exc))
        return swapped

    def _swap_in(self, served: Served) -> Served:
        key = (served.name, served.alias)
        previous = self._served.get(key)
        self._served[key] = served  # one reference: a request sees the old or the new model
        self._failed.pop(key, None)
        log.info(
            "serving %s@%s v%s%s",
            served.name,
            served.alias,
            served.version,
            f" (was v{previous.version})" if previous else "",
        )
        if self.on_swap is not None:
            self.on_swap(served)
        return served

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._follow, name="fti-serve-aliases", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _follow(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.refresh()
            except Exception:  # noqa: BLE001 - a database hiccup: the next poll tries again
                log.exception("looking up the served aliases failed; retrying")
