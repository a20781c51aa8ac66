"""Publish and read immutable feature-group versions.

A group lives at ``data/<group>/feature_date=YYYY-MM-DD/part-0.parquet`` in the registry; the
whole ``data/<group>`` folder is one DVC output. Publishing a version writes the changed
partitions to a staging folder, swaps them in, ``dvc add``s the folder, commits, tags
``<group>/v<N>`` and pushes to the DVC remote, all under one lock. Reading a version goes
through DVC at that tag, so version 1 reads the same bytes after version 5 exists.
"""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml
from filelock import FileLock

from fti.errors import StoreError, VersionNotFoundError
from fti.store.registry_repo import git, open_dvc

GROUP_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
PARTITION = re.compile(r"^feature_date=(\d{4}-\d{2}-\d{2})$")
DATE_COLUMN = "feature_date"
LOCK_TIMEOUT_S = 600


@dataclass(frozen=True)
class PublishedVersion:
    group: str
    version: int
    git_tag: str
    git_rev: str
    dvc_md5: str
    changed_dates: list[date]


def check_group_name(group: str) -> str:
    """Group names become paths and tags: only lower-case letters, digits and underscores."""
    if not GROUP_NAME.match(group):
        raise StoreError(
            f"feature group name {group!r} is not allowed: use lower-case letters, digits and "
            "underscores, starting with a letter"
        )
    return group


def version_tag(group: str, version: int) -> str:
    return f"{check_group_name(group)}/v{version}"


def partition_dir(group_dir: Path, day: date) -> Path:
    return group_dir / f"{DATE_COLUMN}={day.isoformat()}"


class FeatureStore:
    """Front object of the feature store at ``path`` (a DVC data registry)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._datasets: dict[tuple[str, int, tuple[date, ...] | None], ds.Dataset] = {}
        if not (path / ".dvc").exists():
            raise StoreError(f"{path} is not an fti feature store; run `fti init` first")

    def group_dir(self, group: str) -> Path:
        return self.path / "data" / check_group_name(group)

    # ---- versions -------------------------------------------------------------------------
    def versions(self, group: str) -> list[int]:
        """Published version numbers of ``group``, ascending (from the registry's git tags)."""
        prefix = f"{check_group_name(group)}/v"
        tags = git(self.path, "tag", "--list", f"{prefix}*").splitlines()
        return sorted(int(t[len(prefix) :]) for t in tags if t[len(prefix) :].isdigit())

    def resolve(self, group: str, ref: str | int) -> int:
        """A version number from ``latest``, ``3``, ``v3`` or ``<group>/v3``.

        Raises:
            VersionNotFoundError: the group has no such version.
        """
        known = self.versions(group)
        text = str(ref).strip()
        if text == "latest":
            if not known:
                raise VersionNotFoundError(
                    f"feature group {group!r} has no versions yet; run `fti features run` first"
                )
            return known[-1]
        text = text.removeprefix(f"{group}/").removeprefix("v")
        if not text.isdigit() or int(text) not in known:
            raise VersionNotFoundError(
                f"feature group {group!r} has no version {ref!r}; known: {known or 'none'}"
            )
        return int(text)

    # ---- publishing -----------------------------------------------------------------------
    def publish(
        self, group: str, partitions: Mapping[date, pa.Table], message: str
    ) -> PublishedVersion:
        """Write ``partitions`` (replacing those dates) and publish the group as a new version.

        Raises:
            StoreError: the new partitions do not share the group's schema, or DVC/git failed;
                the store is left at its previous version.
        """
        if not partitions:
            raise StoreError(f"nothing to publish for feature group {group!r}: no partitions")
        group_dir = self.group_dir(group)
        with FileLock(str(self.path / ".publish.lock"), timeout=LOCK_TIMEOUT_S):
            self._restore_worktree(group)
            self._check_schema(group_dir, partitions)
            staging = self.path / ".staging" / uuid.uuid4().hex
            trash = self.path / ".trash" / staging.name
            try:
                for day, table in partitions.items():
                    target = partition_dir(staging, day)
                    target.mkdir(parents=True)
                    pq.write_table(table, target / "part-0.parquet", compression="zstd")
                group_dir.mkdir(parents=True, exist_ok=True)
                trash.mkdir(parents=True)
                for day in partitions:
                    live = partition_dir(group_dir, day)
                    if live.exists():
                        live.rename(trash / live.name)
                    partition_dir(staging, day).rename(live)
                version = (self.versions(group) or [0])[-1] + 1
                tag = version_tag(group, version)
                repo = open_dvc(self.path)
                repo.add([str(group_dir)])
                git(self.path, "add", "-A")
                git(self.path, "commit", "-q", "--allow-empty", "-m", f"{tag}: {message}")
                git(self.path, "tag", "-a", tag, "-m", message)
                repo.push()
            except Exception:
                self._restore_worktree(group)
                raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                shutil.rmtree(trash, ignore_errors=True)
            return PublishedVersion(
                group=group,
                version=version,
                git_tag=tag,
                git_rev=git(self.path, "rev-parse", "HEAD"),
                dvc_md5=self._dvc_md5(group),
                changed_dates=sorted(partitions),
            )

    def _check_schema(self, group_dir: Path, partitions: Mapping[date, pa.Table]) -> None:
        schemas = {str(t.schema) for t in partitions.values()}
        existing = sorted(group_dir.glob(f"{DATE_COLUMN}=*/part-0.parquet"))
        if existing:
            schemas.add(str(pq.read_schema(existing[0])))
        if len(schemas) > 1:
            raise StoreError(
                f"partitions for {group_dir.name!r} do not share one schema: {sorted(schemas)}"
            )

    def _restore_worktree(self, group: str) -> None:
        """Put the working copy back at the last published version (after a crash or failure)."""
        git(self.path, "reset", "-q", "--hard", "HEAD")
        group_dir = self.group_dir(group)
        dvc_file = group_dir.with_suffix(".dvc")
        if dvc_file.exists():
            open_dvc(self.path).checkout([str(dvc_file)], force=True)
        elif group_dir.exists():
            shutil.rmtree(group_dir)

    def _dvc_md5(self, group: str) -> str:
        relative = f"data/{group}.dvc"
        text = git(self.path, "show", f"HEAD:{relative}")
        return str(yaml.safe_load(text)["outs"][0]["md5"])

    # ---- reading --------------------------------------------------------------------------
    def _dataset(self, group: str, version: int, dates: Sequence[date] | None) -> ds.Dataset:
        # Versions are immutable, so one listing per (version, dates) serves every later call.
        key = (group, version, tuple(sorted(dates)) if dates is not None else None)
        if key not in self._datasets:
            self._datasets[key] = self._open_dataset(group, version, dates)
        return self._datasets[key]

    def _open_dataset(self, group: str, version: int, dates: Sequence[date] | None) -> ds.Dataset:
        from dvc.api import DVCFileSystem
        from pyarrow.fs import FSSpecHandler, PyFileSystem

        fs = DVCFileSystem(str(self.path), rev=version_tag(group, version))
        root = f"data/{group}"
        wanted = {d.isoformat() for d in dates} if dates is not None else None
        files = []
        for path in sorted(fs.find(root)):
            match = PARTITION.match(Path(path).parent.name)
            if match and path.endswith(".parquet") and (wanted is None or match.group(1) in wanted):
                files.append(path)
        if not files:
            what = f"dates {sorted(wanted)}" if wanted is not None else "any partition"
            raise VersionNotFoundError(f"{group} v{version} has no data for {what}")
        return ds.dataset(files, filesystem=PyFileSystem(FSSpecHandler(fs)), format="parquet")

    def partition_dates(self, group: str, version: int) -> list[date]:
        """Dates held by a version, read from its DVC manifest (no data read)."""
        from dvc.api import DVCFileSystem

        fs = DVCFileSystem(str(self.path), rev=version_tag(group, version))
        names = fs.ls(f"data/{group}", detail=False) if fs.exists(f"data/{group}") else []
        found = (PARTITION.match(Path(n).name) for n in names)
        return sorted(date.fromisoformat(m.group(1)) for m in found if m)

    def schema(self, group: str, version: int, dates: Sequence[date] | None = None) -> pa.Schema:
        """Column names and Arrow types of a version (of its partitions for ``dates``)."""
        return self._dataset(group, version, dates).schema

    def scanner(
        self,
        group: str,
        version: int,
        columns: Sequence[str] | None = None,
        dates: Sequence[date] | None = None,
        batch_size: int = 65_536,
    ) -> ds.Scanner:
        """A scan of a version that reads only ``columns`` and the partitions of ``dates``.

        ``.to_batches()`` streams record batches (bounded memory); ``.to_table()`` reads all.

        Raises:
            VersionNotFoundError: the version holds none of ``dates``.
            StoreError: a requested column is not in the version.
        """
        dataset = self._dataset(group, version, dates)
        self._check_columns(group, version, dataset.schema, columns)
        flt = None
        if dates is not None:
            flt = pc.field(DATE_COLUMN).isin(pa.array(sorted(dates), pa.date32()))
        return dataset.scanner(
            columns=list(columns) if columns else None, filter=flt, batch_size=batch_size
        )

    def read(
        self,
        group: str,
        version: int,
        columns: Sequence[str] | None = None,
        dates: Sequence[date] | None = None,
    ) -> pa.Table:
        """A version's rows as one table (use ``scanner(...).to_batches()`` for large reads)."""
        return self.scanner(group, version, columns, dates).to_table()

    @staticmethod
    def _check_columns(
        group: str, version: int, schema: pa.Schema, columns: Sequence[str] | None
    ) -> None:
        missing = [c for c in columns or [] if c not in schema.names]
        if missing:
            raise StoreError(
                f"{group} v{version} has no column(s) {', '.join(missing)}; it has {', '.join(schema.names)}"
            )
