"""Several projects in one Airflow deployment: their manifests and each one's environment.

Each project's `fti check` writes its manifest into the deployment's manifests folder
(``FTI_MANIFESTS``, one ``<project>.json`` each; fti.manifest); the DAG files make every
project's DAGs from them. What differs per project (its definition, params.yaml, raw files and
folder) is in its manifest, and each of its tasks runs inside :func:`project_env`; what the
projects share (database, store, DVC remote, artifacts, staging) comes from the deployment's
environment. An explicit ``FTI_MANIFEST_PATH`` is one project's deployment, as before: its
manifest records no environment, and the processes' own is the project's.

Nothing here imports more than the settings: the DAG files call :func:`project_env` in every
task.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fti.errors import ConfigError
from fti.manifest import clashes, manifest_of, read_manifest, write_data

if TYPE_CHECKING:
    from fti.definitions import Project
    from fti.settings import Settings

# The manifest key of each per-project setting, and its environment variable.
PROJECT_VARIABLES = {
    "reference": "FTI_PROJECT",
    "params_file": "FTI_PARAMS_FILE",
    "raw_path": "FTI_RAW_PATH",
}


def project_folder(reference: str) -> Path | None:
    """The folder to put on the import path so ``reference`` (``package.module:attribute``)
    imports: the parent of its top-level package, or None for a module that is not a file."""
    module = reference.split(":", 1)[0]
    try:
        spec = importlib.util.find_spec(module.split(".", 1)[0])
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.origin or spec.origin in ("built-in", "frozen"):
        return None
    origin = Path(spec.origin)
    package = origin.parent if origin.name == "__init__.py" else origin
    return package.parent.resolve()


def manifest_target(settings: Settings, project: str) -> Path:
    """Where ``project``'s manifest goes: ``FTI_MANIFEST_PATH`` when set, else
    ``<FTI_MANIFESTS>/<project>.json``."""
    return settings.manifest_path or settings.manifests / f"{project}.json"


def project_environment(settings: Settings) -> dict[str, str | None]:
    """What a manifest records of the project's own environment (absolute paths)."""
    folder = project_folder(settings.project)
    return {
        "params_file": str(settings.params_file.resolve()),
        "raw_path": str(settings.raw_path.resolve()),
        "folder": str(folder) if folder else None,
    }


def publish_manifest(project: Project, settings: Settings) -> Path:
    """Write the project's manifest where the DAG files read it; returns its path.

    Into the manifests folder it goes with the project's environment, after every other
    project's manifest there was checked for a clash. With ``FTI_MANIFEST_PATH`` it is that one
    file, without an environment (the processes' own is the project's).

    Raises:
        ConfigError: another project there has the same name or builds a group, source or
            model of the same name (the message names it and its file).
    """
    target = manifest_target(settings, project.name)
    if settings.manifest_path is not None:
        return write_data(manifest_of(project, settings.project), target)
    data = manifest_of(project, settings.project, project_environment(settings))
    for other in sorted(settings.manifests.glob("*.json")):
        theirs = read_manifest(other)
        if other == target and theirs.get("reference") == settings.project:
            continue  # this project's own manifest, rewritten
        if other == target:
            problems = [
                f"{other} is the manifest of project {project.name!r} from "
                f"{theirs.get('reference')!r}, not {settings.project!r}"
            ]
        else:
            problems = [f"{clash} ({other})" for clash in clashes(data, theirs)]
        if problems:
            raise ConfigError(
                "; ".join(problems) + ": the manifest was not written (a name belongs to one "
                "project of a deployment); rename it in this definition, or remove the other "
                "project with `fti check --remove` in its folder"
            )
    return write_data(data, target)


def project_manifest_path(settings: Settings) -> Path:
    """The manifest of the settings' project (``FTI_PROJECT``): ``FTI_MANIFEST_PATH`` when set,
    else the one in the manifests folder whose reference it is (the project is not imported).

    Raises:
        ConfigError: there is none.
    """
    if settings.manifest_path is not None:
        return settings.manifest_path
    for path in sorted(settings.manifests.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            if read_manifest(path).get("reference") == settings.project:
                return path
    raise ConfigError(
        f"no manifest of {settings.project} in {settings.manifests}: run `fti check` "
        "in the project's folder to write it"
    )


def remove_manifest(settings: Settings) -> tuple[str, Path]:
    """Delete the settings' project's manifest: its DAGs disappear at the next parse of the
    DAG folder; its data, versions and registry rows stay. Returns (project name, path).

    Raises:
        ConfigError: the project has no manifest to remove.
    """
    path = project_manifest_path(settings)
    try:
        name = str(read_manifest(path)["project"])
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot remove {path}: {exc}") from None
    path.unlink()
    return name, path


@contextlib.contextmanager
def project_env(manifest: Mapping[str, Any]) -> Iterator[None]:
    """Run the block in the manifest's project: its ``FTI_PROJECT``, params file and raw path
    (those it records) set, its folder first on the import path; everything restored afterwards
    (``dag.test()`` runs several projects' tasks in one interpreter).

    Settings are read when a step runs (``get_settings()``), so the block's steps see these.
    """
    values = {
        variable: str(manifest[key])
        for key, variable in PROJECT_VARIABLES.items()
        if manifest.get(key)
    }
    saved = {variable: os.environ.get(variable) for variable in values}
    folder = manifest.get("folder")
    path = list(sys.path)
    os.environ.update(values)
    if folder and folder not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        yield
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value
        sys.path[:] = path
