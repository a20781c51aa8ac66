"""Publish and read immutable feature-group versions.

A group lives at ``data/<group>/feature_date=YYYY-MM-DD/part-0.parquet`` in the registry (or
``feature_month=YYYY-MM/part-0.parquet``, a file a month, see ``fti.store.layout``); the whole
``data/<group>`` folder is one DVC output. Publishing a version writes the changed
partitions to a staging folder, swaps them in, ``dvc add``s the folder, commits, tags
``<group>/v<N>`` and pushes to the DVC remote, all under one lock. Reading a version goes
through DVC at that tag, so version 1 reads the same bytes after version 5 exists.

What a group looks like in the registry (names, tags, partition folders, the schema file and
its evolution) is ``fti.store.layout``; how a publish that died is undone, ``fti.store.recovery``.
Both are imported back here, where the store's users import them from.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import yaml
from filelock import FileLock

from fti.errors import StoreError, VersionNotFoundError
from fti.store.layout import (
    DATE_COLUMN,
    PARTITION,  # noqa: F401 - for the store's users, who import it from here
    PARTITION_FILE,
    check_group_name,
    check_period,
    evolve_schema,
    held_dates,
    month_metadata,
    partition_dir,
    partition_of,
    schema_from_json,
    schema_to_json,
    stored_period,
    version_tag,
)
from fti.store.recovery import (  # the first two only for their users, who import them from here
    DVC_RWLOCK,  # noqa: F401
    FAULT_POINTS,  # noqa: F401
    IN_PROGRESS,
    PublishRecovery,
    fault_point,
)
from fti.store.registry_repo import cache_objects_dir, git, open_dvc

if TYPE_CHECKING:
    from dvc.repo import Repo

LOCK_TIMEOUT_S = 600
ROW_GROUP_ROWS = 128 * 1024  # streaming reads hold about one row group per column at a time
STREAMING: dict[str, Any] = {
    "use_threads": False,
    "batch_readahead": 1,
    "fragment_readahead": 1,
    "fragment_scan_options": ds.ParquetFragmentScanOptions(pre_buffer=False),
}
GRANULAR_ADD_MAX = 7  # at most this many new partitions: dvc add them one by one (see _dvc_add)


@dataclass(frozen=True)
class PublishedVersion:
    group: str
    version: int
    git_tag: str
    git_rev: str
    dvc_md5: str
    changed_dates: list[date]  # the partitions this version wrote
    dates: list[date]  # every partition the version holds
    schema: pa.Schema  # the version's declared schema (see evolve_schema)
    new: bool = True  # False: the partitions changed nothing, this is the existing latest version


def _md5_of(dvc_file_text: str) -> str:
    return str(yaml.safe_load(dvc_file_text)["outs"][0]["md5"])


def _write_file(table: pa.Table, folder: Path) -> None:
    folder.mkdir(parents=True)
    pq.write_table(
        table, folder / PARTITION_FILE, compression="zstd", row_group_size=ROW_GROUP_ROWS
    )


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, typed: a column it lacks is all null."""
    columns = [
        table.column(field.name).cast(field.type)
        if field.name in table.column_names
        else pa.nulls(table.num_rows, field.type)
        for field in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


def read_work_tree(
    store: FeatureStore,
    group: str,
    dates: Sequence[date],
    schema: pa.Schema | None = None,
    where: pc.Expression | None = None,
) -> pa.Table:
    """Rows of ``dates`` as the publish in progress wrote them (the version is not tagged yet),
    typed with ``schema`` when given; ``where`` filters them further."""
    return _read_days(store.group_dir(group), dates, schema, where)


def _read_days(
    group_dir: Path,
    dates: Sequence[date],
    schema: pa.Schema | None = None,
    where: pc.Expression | None = None,
) -> pa.Table:
    files = list(dict.fromkeys(str(_work_tree_file(group_dir, day)) for day in dates))
    flt = pc.field(DATE_COLUMN).isin(pa.array(sorted(dates), pa.date32()))
    dataset = ds.dataset(files, schema=schema, format="parquet")
    return dataset.to_table(filter=flt if where is None else flt & where)


class _Relaid(Mapping[date, pa.Table]):
    """A publish's new partitions plus every other date the work tree holds, each read from
    its old file when asked: what a publish that changes the group's layout writes."""

    def __init__(self, group_dir: Path, new: Mapping[date, pa.Table]) -> None:
        self.group_dir, self.new = group_dir, new
        self.new_dates = set(new)  # its keys (``in`` a Mapping would read the table)
        self.dates = sorted({*_partition_dates_in(group_dir), *self.new_dates})

    def __getitem__(self, day: date) -> pa.Table:
        if day in self.new_dates:
            return self.new[day]
        return _read_days(self.group_dir, [day])

    def __contains__(self, day: object) -> bool:
        return day in self.dates

    def __iter__(self) -> Iterator[date]:
        return iter(self.dates)

    def __len__(self) -> int:
        return len(self.dates)

    def only_new(
        self, on_written: Callable[[date, pa.Table], None] | None
    ) -> Callable[[date, pa.Table], None] | None:
        """``on_written`` for the new partitions only (the others' statistics are kept)."""
        if on_written is None:
            return None
        callback = on_written
        return lambda day, table: callback(day, table) if day in self.new_dates else None


def read_partition_in_work_tree(store: FeatureStore, group: str, day: date) -> pa.Table:
    """A partition as the publish in progress sees it (the version is not tagged yet)."""
    return read_work_tree(store, group, [day])


def _work_tree_file(group_dir: Path, day: date) -> Path:
    """The work tree's file holding ``day``: its month's when the group is stored by month."""
    month = partition_dir(group_dir, day, "month") / PARTITION_FILE
    return month if month.exists() else partition_dir(group_dir, day) / PARTITION_FILE


def _partition_dates_in(group_dir: Path) -> list[date]:
    """The dates the work tree holds: day folders' names, month files' metadata."""
    dates: list[date] = []
    for path in group_dir.iterdir():
        match partition_of(path.name):
            case ("day", day):
                dates.append(day)
            case ("month", _):
                dates += held_dates(pq.read_schema(path / PARTITION_FILE).metadata)
    return sorted(dates)


class FeatureStore(PublishRecovery):
    """Front object of the feature store at ``path`` (a DVC data registry)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._datasets: dict[tuple[str, int, tuple[date, ...] | None], ds.Dataset] = {}
        self._month_dates: dict[str, list[date]] = {}
        if not (path / ".dvc").exists():
            raise StoreError(f"{path} is not an fti feature store; run `fti init` first")
        # Where DVC keeps objects, from its config files (no DVC Repo, ~1 ms). When an object
        # is missing there, _fetch asks DVC itself and keeps its answer.
        self._cache_root = cache_objects_dir(path)

    def group_dir(self, group: str) -> Path:
        return self.path / "data" / check_group_name(group)

    # ---- versions -------------------------------------------------------------------------
    def versions(self, group: str) -> list[int]:
        """Published version numbers of ``group``, ascending (from the registry's git tags)."""
        prefix = f"{check_group_name(group)}/v"
        tags = git(self.path, "tag", "--list", f"{prefix}*").splitlines()
        return sorted(int(t[len(prefix) :]) for t in tags if t[len(prefix) :].isdigit())

    def every_version(self) -> dict[str, list[int]]:
        """Every group's published version numbers, ascending (one listing of the git tags)."""
        found: dict[str, list[int]] = {}
        for tag in git(self.path, "tag", "--list").splitlines():
            group, _, number = tag.rpartition("/v")
            if group and number.isdigit():
                found.setdefault(group, []).append(int(number))
        return {group: sorted(numbers) for group, numbers in found.items()}

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
        self,
        group: str,
        partitions: Mapping[date, pa.Table],
        message: str,
        record: Callable[[PublishedVersion], None] | None = None,
        reconcile: Callable[[dict[str, list[int]]], None] | None = None,
        on_written: Callable[[date, pa.Table], None] | None = None,
        on_tagged: Callable[[PublishedVersion], None] | None = None,
        period: str = "day",
    ) -> PublishedVersion:
        """Write ``partitions`` (replacing those dates) and publish the group as a new version.

        ``period``: a file a date (``day``) or a file a month (``month``, see
        ``fti.store.layout``). When it is not how the group is stored now, this version
        rewrites every date of the group the new way (earlier versions keep their files).

        One publisher at a time per store (a file lock); each step is safe to be killed in:

        1. recover from an earlier publish that died (see ``_recover``): temp folders and the
           locks git and DVC leave go, a commit that never got its tag is dropped, the work tree
           returns to the last version; then ``reconcile(tags)`` gets every group's published
           versions (``{group: versions}``, whichever group died), e.g. to delete the catalog
           rows of versions without a tag (a publish killed after ``record`` and before its
           tag leaves one) and complete those a publish killed before ``on_tagged`` left;
        2. the new partitions are written to a staging folder, then moved into the work tree;
           ``on_written(day, table)`` gets each one as it was asked from ``partitions``, once
           written (e.g. for its statistics, so no step reads a partition twice);
        3. ``dvc add`` (DVC re-hashes only new files) and a push of the objects this version
           adds (see ``_dvc_push``): the remote holds the data before anything names it;
        4. git commit of the ``.dvc`` file and the version's schema file (when the partitions
           change nothing, e.g. a rerun or a re-run backfill, no version is made and the
           latest one is returned with ``new=False``);
        5. ``record(published)``, e.g. the SQL catalog row, marked as not tagged yet (an
           upsert, so a retry rewrites it);
        6. the git tag ``<group>/v<N>``, the commit point: versions are listed from tags, so
           until it exists every reader sees the previous version, whole;
        7. ``on_tagged(published)``, e.g. mark the catalog row tagged and put the version
           online, in one transaction: what readers of SQL see follows the tag, never leads
           it (a kill before it is completed by the next publish's ``reconcile``).

        Raises:
            StoreError: the new partitions drop or retype a column of the group, ``period``
                is neither ``day`` nor ``month``, or DVC/git failed; the store is left at its
                previous version.
        """
        if not partitions:
            raise StoreError(f"nothing to publish for feature group {group!r}: no partitions")
        group_dir = self.group_dir(group)
        with FileLock(str(self.path / ".publish.lock"), timeout=LOCK_TIMEOUT_S):
            self._recover()
            check_period(group, period)
            tags = self.every_version()
            if reconcile is not None:
                reconcile(tags)
            known = tags.get(group, [])
            schema = evolve_schema(
                group, self._published_schema(group, known[-1]) if known else None, partitions
            )
            version = (known or [0])[-1] + 1
            tag = version_tag(group, version)
            self._write_marker(tag)
            try:
                folders = self._write_partitions(group_dir, partitions, schema, on_written, period)
                self._write_schema(group, schema)
                with open_dvc(self.path) as repo:  # one DVC Repo for add and push
                    self._dvc_add(repo, group_dir, folders)
                    if known and self._same_as(group, known[-1]):
                        self._recover()  # nothing changed: no new version (a rerun/re-backfill)
                        return self._published(group, known[-1])
                    self._dvc_push(repo, group, known[-1] if known else None)
                self._git_commit(f"{tag}: {message}")
                published = PublishedVersion(
                    group=group,
                    version=version,
                    git_tag=tag,
                    git_rev=git(self.path, "rev-parse", "HEAD"),
                    dvc_md5=self._dvc_md5(group, "HEAD"),
                    changed_dates=sorted(partitions),
                    dates=_partition_dates_in(group_dir),
                    schema=schema,
                )
                if record is not None:
                    record(published)
                self._git_tag(tag, message)
                if on_tagged is not None:
                    on_tagged(published)
            except BaseException:
                self._recover()
                raise
            (self.path / IN_PROGRESS).unlink()
            return published

    def recover(self) -> None:
        """Undo whatever an interrupted publish left (``_recover``); call it holding the
        store's publish lock, as ``publish`` does and retention (fti.retention.store) does."""
        self._recover()

    def _same_as(self, group: str, version: int) -> bool:
        """Whether the work tree now holds exactly ``version``: same DVC hash, same schema."""
        tag = version_tag(group, version)
        dvc_file = self.group_dir(group).with_suffix(".dvc")
        ours = _md5_of(dvc_file.read_text())
        return ours == self._dvc_md5(group, tag) and self._published_schema(
            group, version
        ) == schema_from_json(self.schema_file(group).read_text())

    def _published(self, group: str, version: int) -> PublishedVersion:
        """An existing version, as ``publish`` returns it when nothing changed."""
        tag = version_tag(group, version)
        return PublishedVersion(
            group=group,
            version=version,
            git_tag=tag,
            git_rev=git(self.path, "rev-parse", f"{tag}^{{commit}}"),
            dvc_md5=self._dvc_md5(group, tag),
            changed_dates=[],
            dates=self.partition_dates(group, version),
            schema=self._published_schema(group, version),
            new=False,
        )

    def _write_partitions(
        self,
        group_dir: Path,
        partitions: Mapping[date, pa.Table],
        schema: pa.Schema,
        on_written: Callable[[date, pa.Table], None] | None = None,
        period: str = "day",
    ) -> list[Path] | None:
        """Write to a staging folder, then swap the partition folders into the work tree;
        returns the folders swapped in, or None when the group changes its layout (``period``
        is not how the work tree is stored): then every date it holds is written again the
        new way and every folder is new.

        One partition is in memory at a time (``partitions`` may read each when asked; by
        month, one month with its kept rows), and each is asked for once: ``on_written`` sees
        the table that was asked for (only ``partitions``', not the dates written again).
        """
        staging = self.path / ".staging" / uuid.uuid4().hex
        stored = stored_period(group_dir)
        relayout = stored is not None and stored != period
        if relayout:
            partitions = _Relaid(group_dir, partitions)
            on_written = partitions.only_new(on_written)
        if period == "month":
            names = self._write_months(group_dir, staging, partitions, schema, on_written)
        else:
            names = []
            for day in sorted(partitions):
                table = partitions[day]
                target = partition_dir(staging, day)
                columns = [name for name in schema.names if name in table.column_names]
                typed = pa.schema([schema.field(name) for name in columns])
                # All-null columns take the version's type; an empty day is written typed.
                _write_file(
                    table.select(columns).cast(typed) if table.num_rows else typed.empty_table(),
                    target,
                )
                names.append(target.name)
                if on_written is not None:
                    on_written(day, table)
                fault_point("publish.partition")
        group_dir.mkdir(parents=True, exist_ok=True)
        trash = self.path / ".trash" / staging.name
        trash.mkdir(parents=True)
        if relayout:  # the old layout's folders go: the new one holds every date
            for old in [p for p in group_dir.iterdir() if partition_of(p.name)]:
                old.rename(trash / old.name)
        for name in names:
            live = group_dir / name
            if live.exists():
                live.rename(trash / name)
            (staging / name).rename(live)
        shutil.rmtree(staging.parent, ignore_errors=True)
        shutil.rmtree(trash.parent, ignore_errors=True)
        return None if relayout else [group_dir / name for name in names]

    @staticmethod
    def _write_months(
        group_dir: Path,
        staging: Path,
        partitions: Mapping[date, pa.Table],
        schema: pa.Schema,
        on_written: Callable[[date, pa.Table], None] | None,
    ) -> list[str]:
        """Stage one file a month: the month's rows the work tree holds of other dates, and
        the new dates' rows, sorted by date (a stable sort: a rerun writes the same bytes)."""
        months: dict[Path, list[date]] = {}
        for day in sorted(partitions):
            months.setdefault(partition_dir(group_dir, day, "month"), []).append(day)
        for live, days in months.items():
            held: set[date] = set(days)
            tables = []
            if (live / PARTITION_FILE).exists():
                kept = pq.read_table(live / PARTITION_FILE)
                held.update(held_dates(kept.schema.metadata))
                replaced = pc.field(DATE_COLUMN).isin(pa.array(days, pa.date32()))
                tables.append(_conform(kept.filter(~replaced), schema))
            for day in days:
                table = partitions[day]
                tables.append(_conform(table, schema))
                if on_written is not None:
                    on_written(day, table)
                fault_point("publish.partition")
            rows = pa.concat_tables(tables).sort_by(DATE_COLUMN)
            _write_file(rows.replace_schema_metadata(month_metadata(held)), staging / live.name)
        return [live.name for live in months]

    def _write_schema(self, group: str, schema: pa.Schema) -> None:
        self.schema_file(group).write_text(schema_to_json(schema))

    def _dvc_add(self, repo: Repo, group_dir: Path, folders: Sequence[Path] | None) -> None:
        """``dvc add`` what changed: the new partition folders into the group's directory
        (``folders`` None: every folder is new, the group changed its layout).

        Once the group is tracked, DVC's granular add builds just those folders and puts
        them into the version's tree in place of the old ones (``Output.apply``), so the cost
        follows the new partitions; adding the whole folder would walk and stat every
        partition of the history. The first version, and a publish of more than
        ``GRANULAR_ADD_MAX`` partitions (a backfill, where one walk is cheaper than updating
        the tree once per folder), add the whole folder.
        """
        tracked = group_dir.with_suffix(".dvc").exists()
        if tracked and folders is not None and len(folders) <= GRANULAR_ADD_MAX:
            repo.add([str(folder) for folder in folders])
        else:
            repo.add([str(group_dir)])

    def _dvc_push(self, repo: Repo, group: str, previous: int | None) -> None:
        """Put every object of the work tree's version of ``group`` on the DVC remote.

        The remote already holds every object of ``previous``: it was pushed before its tag,
        and DVC uploads a ``.dir`` manifest only after all its files. So only the files
        ``previous`` lacks and the new ``.dir`` (last) can be missing; DVC checks just those
        against the remote and uploads what is not there. The cost follows the new files,
        where ``dvc push`` would walk every file of the group. Without a previous version, or
        when its ``.dir`` is not on the remote (a new or emptied remote), every file of the
        new version is checked. A cloud-versioned or worktree remote gets ``dvc push``.
        """
        from dvc_data.hashfile.hash_info import HashInfo

        remote = repo.cloud.get_remote(None, "push")
        if remote.worktree or remote.fs.version_aware:
            repo.push()  # such a remote keeps files by path, not by hash: DVC's own push
            return
        self._cache_root = Path(repo.cache.local.path)  # where this add put the objects
        new_dir = _md5_of(self.group_dir(group).with_suffix(".dvc").read_text())
        wanted = {md5 for _, md5 in self._dir_entries(new_dir)}
        if previous is not None:
            old_dir = self._dvc_md5(group, version_tag(group, previous))
            if self._object(old_dir).exists() and remote.odb.exists(old_dir):
                wanted -= {md5 for _, md5 in self._dir_entries(old_dir)}
        objects = {HashInfo("md5", md5) for md5 in [*wanted, new_dir]}
        cache = repo.cache.local
        # DVC's transfer, as in its push, minus the remote index: checking that index would
        # look up every .dir it ever indexed (one per pushed version) on the remote.
        result = repo.cloud.transfer(cache, remote.odb, objects, cache_odb=cache)
        if result.failed:
            raise StoreError(
                f"dvc push of {group} failed for {len(result.failed)} object(s), e.g. "
                f"{sorted(h.value for h in result.failed)[:3]}: check the DVC remote and "
                "the DVC cache, then publish again"
            )

    def _git_commit(self, message: str) -> None:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "--allow-empty", "-m", message)

    def _git_tag(self, tag: str, message: str) -> None:
        git(self.path, "tag", "-a", tag, "-m", message)

    def schema_file(self, group: str) -> Path:
        return self.path / "data" / f"{check_group_name(group)}.schema.json"

    def _published_schema(self, group: str, version: int) -> pa.Schema:
        """The schema a version declares (older versions without the file: their first file's)."""
        tag = version_tag(group, version)
        try:
            return schema_from_json(git(self.path, "show", f"{tag}:data/{group}.schema.json"))
        except StoreError:
            return self._open_dataset(group, version, None, None).schema

    def _dvc_md5(self, group: str, rev: str) -> str:
        """The DVC hash (``<md5>.dir``) of the group's data at a git revision or tag."""
        return _md5_of(git(self.path, "show", f"{rev}:data/{group}.dvc"))

    # ---- reading --------------------------------------------------------------------------
    def _dataset(self, group: str, version: int, dates: Sequence[date] | None) -> ds.Dataset:
        # Versions are immutable, so one listing per (version, dates) serves every later call.
        key = (group, version, tuple(sorted(dates)) if dates is not None else None)
        if key not in self._datasets:
            schema = self._published_schema(group, version)
            self._datasets[key] = self._open_dataset(group, version, dates, schema)
        return self._datasets[key]

    def _open_dataset(
        self, group: str, version: int, dates: Sequence[date] | None, schema: pa.Schema | None
    ) -> ds.Dataset:
        """The version's Parquet files, read straight from the DVC cache (immutable objects)."""
        wanted = {d.isoformat() for d in dates} if dates is not None else None
        objects = [
            md5
            for day, md5 in self._manifest(group, version)
            if wanted is None or day.isoformat() in wanted
        ]
        if not objects:
            what = f"dates {sorted(wanted)}" if wanted is not None else "any partition"
            raise VersionNotFoundError(f"{group} v{version} has no data for {what}")
        objects = list(dict.fromkeys(objects))  # a month file holds many of the dates
        if not all(self._object(md5).exists() for md5 in objects):
            self._fetch(group, version)
        files = [str(self._object(md5)) for md5 in objects]
        return ds.dataset(files, schema=schema, format="parquet")

    def partition_dates(self, group: str, version: int) -> list[date]:
        """Dates held by a version, read from its DVC manifest (no data read)."""
        return [day for day, _ in self._manifest(group, version)]

    def _manifest(self, group: str, version: int) -> list[tuple[date, str]]:
        """(date, object md5) of each partition file of a version, from its ``.dir`` manifest.

        Read from git (the version's ``.dvc`` file at its tag) and the DVC cache, both
        immutable, so a reader never sees a publish in progress. A manifest missing from the
        cache (a second machine) is fetched from the DVC remote first.
        """
        dir_md5 = self._dvc_md5(group, version_tag(group, version))
        if not self._object(dir_md5).exists():
            self._fetch(group, version)
        found = []
        for relpath, md5 in self._dir_entries(dir_md5):
            folder, _, name = relpath.partition("/")
            match partition_of(folder) if name.endswith(".parquet") else None:
                case ("day", day):
                    found.append((day, md5))
                case ("month", _):
                    if not self._object(md5).exists():
                        self._fetch(group, version)
                    found += [(day, md5) for day in self._held_dates(md5)]
        return sorted(found)

    def _held_dates(self, md5: str) -> list[date]:
        """The dates a month file in the cache holds (its footer; objects are immutable)."""
        if md5 not in self._month_dates:
            metadata = pq.read_schema(self._object(md5)).metadata
            self._month_dates[md5] = held_dates(metadata)
        return self._month_dates[md5]

    def objects(self, group: str, version: int | None = None) -> set[str]:
        """The md5 of every DVC object a version of ``group`` reads: its ``.dir`` manifest and
        the files it lists (``version`` None: the work tree's, from ``data/<group>.dvc``). A
        manifest missing from the local cache is fetched from the DVC remote first."""
        if version is None:
            dir_md5 = _md5_of(self.group_dir(group).with_suffix(".dvc").read_text())
        else:
            dir_md5 = self._dvc_md5(group, version_tag(group, version))
        if not self._object(dir_md5).exists() and version is not None:
            self._fetch(group, version)
        if not self._object(dir_md5).exists():  # the work tree's own, not in the cache
            return {dir_md5}
        return {dir_md5, *(md5 for _, md5 in self._dir_entries(dir_md5))}

    def _dir_entries(self, dir_md5: str) -> list[tuple[str, str]]:
        """(relative path, md5) of each file a ``.dir`` manifest in the local cache lists."""
        entries = json.loads(self._object(dir_md5).read_text())
        return [(str(entry["relpath"]), str(entry["md5"])) for entry in entries]

    def _object(self, md5: str) -> Path:
        """Where DVC keeps an object in this store's cache (``files/md5/ab/cdef...``)."""
        return self._cache_root / md5[:2] / md5[2:]

    def _fetch(self, group: str, version: int) -> None:
        """Download a version's objects from the DVC remote into the local cache."""
        repo = open_dvc(self.path)
        self._cache_root = Path(repo.cache.local.path)  # DVC's own answer, in case ours differs
        fetched = repo.fetch(
            targets=[f"data/{group}.dvc"], revs=[version_tag(group, version)], workspace=False
        )
        logging.getLogger(__name__).info("fetched %s objects of %s v%s", fetched, group, version)

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
        where: pc.Expression | None = None,
        stream: bool = True,
    ) -> ds.Scanner:
        """A scan of a version that reads only ``columns`` and the partitions of ``dates``.

        ``where`` filters rows further (e.g. ``pc.field("customer_id").isin([...])``); with
        the date filter it is pushed down to Parquet row-group statistics.
        ``.to_batches()`` streams record batches (bounded memory); ``.to_table()`` reads all.

        Raises:
            VersionNotFoundError: the version holds none of ``dates``.
            StoreError: a requested column is not in the version.
        """
        dataset = self._dataset(group, version, dates)
        self._check_columns(group, version, dataset.schema, columns)
        flt = where
        if dates is not None:
            in_dates = pc.field(DATE_COLUMN).isin(pa.array(sorted(dates), pa.date32()))
            flt = in_dates if flt is None else flt & in_dates
        return dataset.scanner(
            columns=list(columns) if columns else None,
            filter=flt,
            batch_size=batch_size,
            # Streaming: while a slow consumer (a model) works, read-ahead is what memory grows
            # with. Arrow's threaded scan decodes far ahead whatever its read-ahead settings
            # (+0.9-1 GiB over a 1e7-row file, measured) and pre-buffers whole files; a single-
            # threaded scan without pre-buffering holds about one batch and reads local files
            # as fast. A whole-table read (``stream=False``) keeps Arrow's parallel read-ahead.
            **(STREAMING if stream else {}),
        )

    def read(
        self,
        group: str,
        version: int,
        columns: Sequence[str] | None = None,
        dates: Sequence[date] | None = None,
        where: pc.Expression | None = None,
    ) -> pa.Table:
        """A version's rows as one table (use ``scanner(...).to_batches()`` for large reads)."""
        scan = self.scanner(group, version, columns, dates, where=where, stream=False)
        return scan.to_table()

    @staticmethod
    def _check_columns(
        group: str, version: int, schema: pa.Schema, columns: Sequence[str] | None
    ) -> None:
        missing = [c for c in columns or [] if c not in schema.names]
        if missing:
            raise StoreError(
                f"{group} v{version} has no column(s) {', '.join(missing)}; it has {', '.join(schema.names)}"
            )
