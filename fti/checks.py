"""What `fti check` checks beyond the definition itself: what `fti run` would trip on.

- **params.yaml**: one ``train.<model>`` section per model of the project and none for a model
  it does not have; each section is given to the model's estimator function as a run gives it,
  so a value the function cannot use (``alpha: abc`` where it calls ``float``) or a key it
  never reads (a misspelt ``alpah``) is named with its path in the file; scikit-learn's own
  check of its parameters (what ``fit`` runs first) judges the estimator it returns. A
  ``features`` list there must name features of the model. Its ``retention`` section
  (fti.retention.policy) holds only known keys with values of their kind. A top-level section
  fti does not read (``retension:``) is a note: a DVC stage of the team's may read it.
- **groups it reads** (``fti.read_groups``): each declared column and type against the newest
  published version of the other project's group in the catalog; a group not published yet is
  a note (awaited from its owner).
- **raw files**: the start date against each source's first file (``data_problems``), then
  that source's first file from the start date on, read and validated as a run validates it
  (``fti.validation``), and the keys of the project's entities in it as the run stages them
  (an ``int64`` entity whose key column holds ``SEA`` fails there).

- **partitioning**: a group the store holds by another ``partition`` (``day`` or ``month``)
  than its definition's is a note: its next publish rewrites every date the new way.
- **small partitions**: a group stored a file a day whose newest version holds fewer than
  ``SMALL_PARTITION_ROWS`` rows a date over ``SMALL_PARTITION_DATES`` dates or more is a note
  suggesting ``partition="month"``.
- **ownership**: when fti's database can be read, each source, group or model of the project
  that another project owns (fti.ownership): its validation, publish or registration would be
  refused.

Each problem is one line naming the file, the key or column and the rule, and what to do.
Rows a run would quarantine without failing are notes, not problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from fti.definitions import Model, Project, Source, data_problems, raw_files
from fti.errors import ConfigError, DefinitionError, InputFileError
from fti.params import read_params, unread_sections
from fti.settings import Settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

T = TypeVar("T")
SMALL_PARTITION_ROWS = 1_000  # fewer rows a date than this, on average, ...
SMALL_PARTITION_DATES = 28  # ... over at least this many dates: a note suggests month files


@dataclass
class Findings:
    """``problems``: `fti run` would fail on each (`fti check` exits 1); ``notes``: worth
    knowing, no failure; ``files``: per source, the raw file checked and what it held."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)


def check_files(project: Project, settings: Settings) -> Findings:
    """Check params.yaml and the raw files against a project whose definition is sound."""
    findings = Findings(
        problems=data_problems(project, settings.raw_path)
        + params_problems(project, settings.params_file)
        + retention_problems(settings.params_file)
        + access_problems(settings.params_file)
    )
    findings.notes += relayout_notes(project, settings.store_path)
    findings.notes += unread_sections(settings.params_file)
    _check_reads(project, settings, findings)
    for source in project.sources:
        _check_first_file(project, source, settings, findings)
    findings.problems += ownership_problems(project, settings.db_url)
    findings.notes += small_partition_notes(project, settings.db_url)
    return findings


def _check_reads(project: Project, settings: Settings, findings: Findings) -> None:
    """The project's read groups against the catalog (none read: the database is not asked)."""
    if not project.reads:
        return
    from sqlalchemy.exc import SQLAlchemyError

    from fti.db.engine import session_scope
    from fti.read_groups import catalog_findings

    try:
        with session_scope(settings.db_url) as session:
            found = catalog_findings(session, project)
    except SQLAlchemyError as exc:
        findings.problems.append(
            f"cannot read the store's catalog to check the groups project {project.name!r} "
            f"reads ({type(exc).__name__}); point FTI_DB_URL at the shared database and run "
            "`fti init`"
        )
        return
    findings.problems += found.problems
    findings.notes += found.notes


def relayout_notes(project: Project, store_path: Path) -> list[str]:
    """A note per group the store holds by another partitioning than its definition's: its
    next publish rewrites every date (``fti.store.layout.relayout_note``)."""
    from fti.store.layout import relayout_note, stored_period

    notes = []
    for group in project.groups:
        folder = store_path / "data" / group.name
        note = relayout_note(group.name, group.partition, stored_period(folder))
        if note is not None:
            notes.append(f"{group.noun} {note}")
    return notes


# ---- params.yaml ------------------------------------------------------------------------------
def params_problems(project: Project, path: Path) -> list[str]:
    """The problems of params.yaml's ``train`` section, one line each naming its key."""
    try:
        train = read_params(path).get("train")
    except ConfigError as exc:
        return [str(exc)]
    models = [model.name for model in project.models]
    if train is None:
        train = {}
    if not isinstance(train, dict):
        return [
            f"{path}: train must be a mapping with one section per model ({', '.join(models)}), "
            f"got {type(train).__name__}"
        ]
    problems = [
        f"{path}: train.{name} names no model of project {project.name!r} (it has "
        f"{', '.join(models)}); rename it or remove it"
        for name in train
        if name not in models
    ]
    for model in project.models:
        where = f"{path}: train.{model.name}"
        if model.name not in train:
            problems.append(
                f"{path}: train has no section for model {model.name!r}; add `{model.name}: {{}}` "
                "under train (its hyper-parameters; {} keeps the estimator's defaults)"
            )
        elif not isinstance(train[model.name], dict):
            got = "nothing" if train[model.name] is None else type(train[model.name]).__name__
            problems.append(
                f"{where} must be a mapping of hyper-parameters, got {got} (write {{}} for none)"
            )
        else:
            problems += _hyper_parameter_problems(project, model, train[model.name], where)
    return problems


def retention_problems(path: Path) -> list[str]:
    """The problem of params.yaml's ``retention`` section (fti.retention.policy), if any; a
    file that cannot be read is ``params_problems``' to report."""
    from fti.retention.policy import read_policy

    try:
        read_params(path)
    except ConfigError:
        return []
    try:
        read_policy(path)
    except ConfigError as exc:
        return [str(exc)]
    return []


def access_problems(path: Path) -> list[str]:
    """The problem of params.yaml's ``access`` section (fti.access: the roles that operate the
    project's DAGs), if any; a file that cannot be read is ``params_problems``' to report."""
    from fti.access import access_control

    try:
        access_control(read_params(path).get("access"), where=f"{path}:")
    except ConfigError:
        return []
    except ValueError as exc:
        return [str(exc)]
    return []


def _hyper_parameter_problems(
    project: Project, model: Model, section: dict[str, Any], where: str
) -> list[str]:
    """Build the model's estimator from ``section`` as training does (``features`` is not a
    hyper-parameter: it picks the features)."""
    problems = []
    params = dict(section)
    picked = params.pop("features", None)
    if picked is not None:
        if not isinstance(picked, list) or not all(isinstance(f, str) for f in picked):
            problems.append(f"{where}.features must be a list of 'group.column' names")
        else:
            try:
                project.model_features(model, picked)
            except DefinitionError as exc:
                problems.append(f"{where}.features: {exc}")
    function = getattr(model.estimator, "__name__", "the estimator function")
    read = _ReadKeys(params)
    try:
        estimator = model.estimator(read, [f.name for f in project.model_features(model)])
    except Exception as exc:  # noqa: BLE001 - the team's code: its failure is the finding
        said = f"{type(exc).__name__}: {exc}"
        if read.last is None:
            return [*problems, f"{where}: {function}(params, features) failed ({said})"]
        return [
            *problems,
            f"{where}.{read.last} = {params[read.last]!r}: {function} failed on it ({said}); "
            "give it a value of the type it expects",
        ]
    if not read.whole:
        asked = sorted(k for k in params if k in read.asked)
        problems += [
            f"{where}.{key}: {function} does not read this hyper-parameter (it reads "
            f"{', '.join(asked) or 'none of them'}); fix its name or remove it"
            for key in params
            if key not in read.asked
        ]
    return problems + _estimator_problems(estimator, params, where)


class _ReadKeys(dict[str, Any]):
    """Hyper-parameters that remember which keys the estimator function asked for (``asked``,
    ``last``); reading them whole (iterating, copying, ``**params``) asks for every key."""

    def __init__(self, values: dict[str, Any]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()
        self.last: str | None = None  # the latest key asked for that is there
        self.whole = False

    def _ask(self, key: Any) -> None:
        self.asked.add(key)
        if super().__contains__(key):
            self.last = key

    def __getitem__(self, key: str) -> Any:
        self._ask(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self._ask(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self._ask(key)
        return super().__contains__(key)

    def pop(self, key: str, *default: Any) -> Any:
        self._ask(key)
        return super().pop(key, *default)

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._ask(key)
        return super().setdefault(key, default)

    def _all(self) -> None:
        self.whole = True

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().__iter__()

    def keys(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().keys()

    def items(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().items()

    def values(self):  # type: ignore[no-untyped-def]
        self._all()
        return super().values()

    def copy(self) -> dict[str, Any]:
        self._all()
        return dict(super().items())

    def __or__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        self._all()
        return dict(super().items()) | other

    def __ror__(self, other: Any) -> dict[str, Any]:  # type: ignore[override]
        self._all()
        return other | dict(super().items())


SKLEARN_PARAMETER = re.compile(r"The '(\w+)' parameter of \w+ must be")


def _estimator_problems(estimator: Any, params: dict[str, Any], where: str) -> list[str]:
    """scikit-learn's check of the parameters of the estimator and of every estimator in it
    (``_validate_params``: what ``fit`` runs first), naming the params.yaml key when one
    key holds the refused value."""
    if not hasattr(estimator, "get_params"):
        return []
    try:
        nested = estimator.get_params(deep=True).values()
    except Exception:  # noqa: BLE001 - not scikit-learn's: nothing to check here
        return []
    parts = {id(p): p for p in [estimator, *nested] if hasattr(p, "_validate_params")}
    problems = []
    for part in parts.values():
        try:
            part._validate_params()
        except (TypeError, ValueError) as exc:
            problems.append(f"{where}{_key_of(part, exc, params)}: {exc}")
    return problems


def _key_of(part: Any, error: Exception, params: dict[str, Any]) -> str:
    """``.key = value`` of the one params.yaml key that holds the value scikit-learn refused."""
    named = SKLEARN_PARAMETER.search(str(error))
    if named is None:
        return ""
    value = part.get_params(deep=False).get(named.group(1))
    keys = [k for k, v in params.items() if _same(v, value)]
    return f".{keys[0]} = {params[keys[0]]!r}" if len(keys) == 1 else ""


def _same(written: Any, given: Any) -> bool:
    """Whether a params.yaml value is the one the estimator got (``-1`` and ``-1.0`` are)."""
    number = (int, float)
    if isinstance(written, bool) or isinstance(given, bool):
        return written is given
    if not (
        type(written) is type(given) or (isinstance(written, number) and isinstance(given, number))
    ):
        return False
    try:
        return bool(written == given)
    except (TypeError, ValueError):
        return False


# ---- raw files --------------------------------------------------------------------------------
def _check_first_file(
    project: Project, source: Source, settings: Settings, findings: Findings
) -> None:
    """Validate ``source``'s first raw file from the start date on, as its run would."""
    from fti.validation import is_over_threshold, read_raw_file, validate_frame

    files = raw_files(settings.raw_path, source)
    days = sorted(day for day in files if day >= project.first_date)
    if not days:
        findings.files[source.name] = "no raw file from the start date on yet"
        return
    day, path = days[0], files[days[0]]
    share, min_rows = settings.max_quarantine_share, settings.quarantine_min_rows
    try:
        raw = read_raw_file(path, source)
        result = validate_frame(raw.frame, source, day, path, raw.malformed, share, min_rows)
    except InputFileError as exc:
        findings.problems.append(str(exc))
        return
    unit = "row" if source.format == "parquet" else "line"
    findings.files[source.name] = (
        f"{path.name} checked, {result.rows_accepted} of {result.rows_read} rows accepted"
    )
    if result.rows_bad:
        first = result.quarantined.iloc[0]
        said = f"first: {unit} {first['row_number']}, {first['rule']}"
        rejected = result.over_threshold or result.rows_accepted == 0
        rejected = rejected or is_over_threshold(result.rows_bad, result.rows_read, share, min_rows)
        if rejected:
            findings.problems.append(
                f"{path}: {'at least ' if result.over_threshold else ''}{result.rows_bad} of "
                f"{result.rows_read} rows break a rule ({said}); `fti run` would reject the "
                f"file: fix it, or the schema of source {source.name!r}"
            )
            return
        findings.notes.append(
            f"{path}: {result.rows_bad} of {result.rows_read} rows would be quarantined "
            f"({said}); `fti run` sets them aside and goes on"
        )
    for entity in project.entities:
        if entity.key not in source.columns or entity.dtype != "int64":
            continue  # any value makes a string key
        bad = _first_non_integer(result.accepted[entity.key].to_numpy())
        if bad is None:
            continue
        (value,) = bad
        text = raw.frame[entity.key]
        lines = text.index[text == value] if isinstance(value, str) else text.index[text.isna()]
        at = f"{unit} {lines[0]}, " if len(lines) else ""
        findings.problems.append(
            f"{path}: {at}column {entity.key!r} holds {value!r}, not an int64 key of entity "
            f"{entity.name!r}; `fti run` would fail on it: declare the entity with "
            "dtype='string', or fix the file"
        )


def _first_non_integer(values: np.ndarray) -> tuple[Any] | None:
    """The first value that is no int64 key as a run stages keys (``fti.features.shards``), or
    None when every one is."""
    try:
        np.asarray(values, dtype="int64")
        return None
    except (TypeError, ValueError, OverflowError):
        pass
    for value in values:
        try:
            np.asarray([value], dtype="int64")
        except (TypeError, ValueError, OverflowError):
            return (value,)
    return None


# ---- ownership --------------------------------------------------------------------------------
def ownership_problems(project: Project, db_url: str) -> list[str]:
    """One line per source, group or model of ``project`` that another project owns; none
    when the database cannot be read."""
    from fti.ownership import MODEL, SOURCE, owned_elsewhere, refusal

    names = [(SOURCE, s.name) for s in project.sources]
    names += [(g.kind, g.name) for g in project.groups] + [(MODEL, m.name) for m in project.models]
    found = _from_database(db_url, lambda session: owned_elsewhere(session, project.name, names))
    return [refusal(kind, name, owner, project.name) for kind, name, owner in found or []]


def small_partition_notes(project: Project, db_url: str) -> list[str]:
    """A note per group stored a file a day whose newest version holds few rows a date over
    many dates (``SMALL_PARTITION_ROWS``, ``SMALL_PARTITION_DATES``): a file a month would
    keep a thirtieth of the files (each a folder, a cache file and a manifest entry)."""
    from fti.store.catalog import list_versions

    daily = [group for group in project.groups if group.partition == "day"]
    names = [group.name for group in daily]
    newest = _from_database(
        db_url, lambda session: {r.group_name: r for r in list_versions(session, groups=names)}
    )
    notes = []
    for group in daily:
        row = (newest or {}).get(group.name)
        if row is None or row.partitions < SMALL_PARTITION_DATES or row.min_date is None:
            continue
        per_date = row.row_count / row.partitions
        if per_date >= SMALL_PARTITION_ROWS:
            continue
        first, last = row.min_date, row.max_date or row.min_date
        months = (last.year - first.year) * 12 + last.month - first.month + 1
        notes.append(
            f"{group.noun} {group.name!r} holds {per_date:,.1f} rows a date over "
            f'{row.partitions:,} dates, a file each (v{row.version}): partition="month" would '
            f"keep them in {months:,} month file(s) (its next publish rewrites them so)"
        )
    return notes


def _from_database(db_url: str, read: Callable[[Session], T]) -> T | None:
    """``read(session)`` on fti's database; None when it cannot be read (not created, not
    migrated, not reachable)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from fti.db.engine import session_scope

    url = make_url(db_url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        return None  # no database yet (and reading would create the file)
    try:
        with session_scope(db_url) as session:
            return read(session)
    except SQLAlchemyError:
        return None
