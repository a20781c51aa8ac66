"""The manifest: the parse-time view of a project that the DAG files are generated from.

Airflow's dag-processor re-parses the DAG folder every few seconds; importing a project's
definitions there would import pandas, pandera and the team's feature code each time. So, as
dbt's manifest serves Cosmos, ``fti check`` (and ``fti init``, ``fti demo``, ``fti run``)
writes the names, dates and assets of the project into a small JSON file, and the DAG files
read only that. This module imports nothing heavy: the DAG files import it.

Where: one file per project, ``<FTI_MANIFESTS>/<project name>.json`` (``FTI_MANIFESTS``
defaults to ``$FTI_HOME/manifests``, ``FTI_HOME`` to ``.fti``); the DAG files read every one
there, so several projects share one Airflow deployment. An explicit ``FTI_MANIFEST_PATH`` is
that one file instead (one project, whose environment is the processes' own).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.definitions import Project

FORMAT = 1


def manifests_folder(environ: Mapping[str, str] | None = None) -> Path:
    """The folder of the deployment's manifests: ``FTI_MANIFESTS``, else ``$FTI_HOME/manifests``."""
    env = os.environ if environ is None else environ
    if env.get("FTI_MANIFESTS"):
        return Path(env["FTI_MANIFESTS"]).expanduser()
    return Path(env.get("FTI_HOME") or ".fti").expanduser() / "manifests"


def manifest_paths(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The manifests the DAG files read: ``FTI_MANIFEST_PATH`` alone when it is set, else every
    ``*.json`` of the manifests folder, sorted by name (a file per project)."""
    env = os.environ if environ is None else environ
    if env.get("FTI_MANIFEST_PATH"):
        return [Path(env["FTI_MANIFEST_PATH"]).expanduser()]
    return sorted(manifests_folder(env).glob("*.json"))


def project_dag_id(project: str, dag: str) -> str:
    """The id of a project-level DAG (``feature_pipeline``, ``retention``): the project's name
    as prefix, so several projects' DAGs share one Airflow. Model DAGs keep ``<model>_training``
    and ``<model>_inference``: a model name is unique in a deployment."""
    return f"{project}_{dag}"


def builds_groups(manifest: Mapping[str, Any]) -> bool:
    """Whether the project builds a feature or label group: one that only reads other projects'
    groups has no feature pipeline DAG."""
    return bool(manifest["feature_groups"] or manifest["labels"])


def fingerprint(reference: str) -> str:
    """sha256 of the source of the module that defines the project (stale-manifest check)."""
    module = sys.modules.get(reference.partition(":")[0])
    try:
        text = inspect.getsource(module) if module else reference
    except (OSError, TypeError):
        text = reference
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_of(
    project: Project, reference: str, environment: Mapping[str, str | None] | None = None
) -> dict[str, Any]:
    """What the DAG files need to know of a (checked) project, and nothing more.

    ``environment``: what differs per project in a deployment of several (``params_file``,
    ``raw_path``: absolute paths; ``folder``: put on the import path), which each task of the
    project runs with (``fti.deployment.project_env``); none: the processes' own.
    """
    extra = environment or {}
    return {
        "format": FORMAT,
        "project": project.name,
        "reference": reference,
        "params_file": extra.get("params_file"),
        "raw_path": extra.get("raw_path"),
        "folder": extra.get("folder"),
        "fingerprint": fingerprint(reference),
        "start_date": project.first_date.isoformat(),
        "sources": [s.name for s in project.sources],
        "feature_groups": [
            {"name": g.name, "entity": g.entity.name, "sources": [s.name for s in g.sources]}
            for g in project.feature_groups
        ],
        "labels": [
            {
                "name": g.name,
                "entity": g.entity.name,
                "sources": [s.name for s in g.sources],
                "horizon_days": g.horizon_days,
            }
            for g in project.labels
        ],
        "models": [
            {
                "name": m.name,
                "task": m.task,
                "metric": m.metric,
                "label": m.label.name,
                "groups": project.model_groups(m),
                "features": [f"{f.group}.{f.name}" for f in project.model_features(m)],
                "description": m.description,
            }
            for m in project.models
        ],
    }


def write_manifest(
    project: Project,
    reference: str,
    path: Path,
    environment: Mapping[str, str | None] | None = None,
) -> Path:
    """Write the manifest atomically (a reader never sees half a file); returns its path."""
    return write_data(manifest_of(project, reference, environment), path)


def write_data(data: dict[str, Any], path: Path) -> Path:
    """Write a manifest's ``data`` to ``path`` atomically; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")  # not *.json: never read as a manifest
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
    return path


def read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, or a FileNotFoundError that says how to make it."""
    source = path
    if not source.exists():
        raise FileNotFoundError(
            f"no fti manifest at {source}: run `fti check` (with the project's FTI_PROJECT and "
            "FTI_HOME) to write it, or point FTI_MANIFEST_PATH at it"
        )
    data = json.loads(source.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{source} has manifest format {data.get('format')}; rerun `fti check`")
    return dict(data)


def read_manifests(environ: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
    """Every manifest of the deployment (:func:`manifest_paths`), one project each, sorted by
    project name.

    Raises:
        FileNotFoundError: there is none; the message says how to write one.
        ValueError: one is unreadable, or two build the same group, source or model (the
            message names both projects and their files).
    """
    env = os.environ if environ is None else environ
    paths = manifest_paths(env)
    if not paths:
        raise FileNotFoundError(
            f"no fti manifest in {manifests_folder(env)}: run `fti check` in each project's "
            "folder (with the deployment's FTI_HOME or FTI_MANIFESTS) to write its manifest"
        )
    found = [(path, read_manifest(path)) for path in paths]
    problems = [
        f"{clash} ({a_path} and {b_path})"
        for i, (a_path, a) in enumerate(found)
        for b_path, b in found[i + 1 :]
        for clash in clashes(a, b)
    ]
    if problems:
        raise ValueError(
            "; ".join(problems) + ": a name belongs to one project of a deployment; rename it in "
            "one definition and rerun `fti check`, or remove one with `fti check --remove`"
        )
    return sorted((data for _, data in found), key=lambda data: str(data["project"]))


def built_names(manifest: Mapping[str, Any]) -> dict[str, set[str]]:
    """What a project's manifest builds, by kind: its sources, groups (feature and label
    groups share the store's names) and models."""
    return {
        "source": set(manifest["sources"]),
        "group": {g["name"] for g in [*manifest["feature_groups"], *manifest["labels"]]},
        "model": {m["name"] for m in manifest["models"]},
    }


def clashes(first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
    """Why two projects' manifests cannot share a deployment, one line each: the same project
    name, the same top-level package from two folders, or a source, group or model both build.
    Empty: they can."""
    a, b = str(first["project"]), str(second["project"])
    found = [f"projects {a!r} and {b!r}: the same project name"] if a == b else []
    package_a, package_b = (
        str(m["reference"]).partition(".")[0].partition(":")[0] for m in (first, second)
    )
    if package_a == package_b and first.get("folder") != second.get("folder"):
        found.append(
            f"projects {a!r} and {b!r} both import package {package_a!r}, from different "
            "folders (one interpreter imports it once)"
        )
    theirs = built_names(second)
    for kind, names in built_names(first).items():
        for name in sorted(names & theirs[kind]):
            found.append(f"projects {a!r} and {b!r} both build {kind} {name!r}")
    return found
