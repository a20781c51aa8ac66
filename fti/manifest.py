"""The manifest: the parse-time view of a project that the DAG files are generated from.

Airflow's dag-processor re-parses the DAG folder every few seconds; importing a project's
definitions there would import pandas, pandera and the team's feature code each time. So, as
dbt's manifest serves Cosmos, ``fti check`` (and ``fti init``, ``fti demo``, ``fti run``)
writes the names, dates and assets of the project into a small JSON file, and the DAG files
read only that. This module imports nothing heavy: the DAG files import it.

Where: ``FTI_MANIFEST_PATH``, else ``$FTI_HOME/manifest.json`` (``FTI_HOME`` defaults to ``.fti``).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fti.definitions import Project

FORMAT = 1


def manifest_path(environ: dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("FTI_MANIFEST_PATH"):
        return Path(env["FTI_MANIFEST_PATH"]).expanduser()
    return Path(env.get("FTI_HOME") or ".fti").expanduser() / "manifest.json"


def fingerprint(reference: str) -> str:
    """sha256 of the source of the module that defines the project (stale-manifest check)."""
    module = sys.modules.get(reference.partition(":")[0])
    try:
        text = inspect.getsource(module) if module else reference
    except (OSError, TypeError):
        text = reference
    return hashlib.sha256(text.encode()).hexdigest()


def manifest_of(project: Project, reference: str) -> dict[str, Any]:
    """What the DAG files need to know of a (checked) project, and nothing more."""
    return {
        "format": FORMAT,
        "project": project.name,
        "reference": reference,
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


def write_manifest(project: Project, reference: str, path: Path | None = None) -> Path:
    """Write the manifest atomically (a reader never sees half a file); returns its path."""
    target = path or manifest_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest_of(project, reference), indent=2))
    tmp.replace(target)
    return target


def read_manifest(path: Path | None = None) -> dict[str, Any]:
    """The manifest, or a FileNotFoundError that says how to make it."""
    source = path or manifest_path()
    if not source.exists():
        raise FileNotFoundError(
            f"no fti manifest at {source}: run `fti check` (with the project's FTI_PROJECT and "
            "FTI_HOME) to write it, or point FTI_MANIFEST_PATH at it"
        )
    data = json.loads(source.read_text())
    if data.get("format") != FORMAT:
        raise ValueError(f"{source} has manifest format {data.get('format')}; rerun `fti check`")
    return dict(data)
