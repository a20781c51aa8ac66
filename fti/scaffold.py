"""`fti new NAME`: write a small, working project package to start from (as `kedro new` or
`feast init` do).

The project's files come from the template folder ``fti/templates/project``: every file there
is a Jinja2 template (``*.jinja``, rendered and written without the suffix); the folder
``package`` becomes the package's name and a leading ``dot_`` a dot (``dot_env`` -> ``.env``),
so the wheel ships no hidden files and no importable modules of the template. The sample raw
files are generated here, from a seeded generator, rather than stored as template files.

With ``reads`` (`fti new DIR --reads OWNER.GROUP`, from ``read_specs``), the project reads
those feature groups of another project instead of building its own: each is declared as a
``ReadGroup`` with the columns and types of its newest published version in the catalog, and
the model uses them; its label group stays its own (the reader writes what fits, see the
project's README).

The project is written into a temporary folder and moved into place at the end (the folder
renamed, or, into an existing empty folder such as the current one of `fti new .`, its entries
moved in), so a failure leaves no half-written project behind.
"""

from __future__ import annotations

import csv
import importlib.util
import keyword
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from fti.definitions import NAME
from fti.errors import ConfigError

TEMPLATE = ("templates", "project")  # inside the fti package
SUFFIX = ".jinja"
PACKAGE_FOLDER = "package"  # the template folder that becomes the package
DOT_PREFIX = "dot_"
SALES_COLUMNS = ["sale_id", "store_id", "closed_at", "customers", "sales"]
SAMPLE_ENTITY = ("store", "store_id", "int64")  # the template's entity: name, key, dtype
# Names the template's module already binds: a read group or entity of such a name is renamed.
TEMPLATE_NAMES = {"store", "sales", "sales_next_7d", "sales_forecast", "project", "pd", "pa"}
KEY_DTYPES = {"int64": "int64", "string": "string", "large_string": "string"}


@dataclass(frozen=True)
class Sample:
    """The sample raw data a new project starts with: ``stores`` stores over ``days`` days."""

    start: date = date(2025, 1, 1)
    days: int = 120
    stores: int = 5
    seed: int = 16

    @property
    def end(self) -> date:
        return self.start + timedelta(days=self.days - 1)


SAMPLE = Sample()


@dataclass(frozen=True)
class ReadSpec:
    """A feature group a new project reads: ``owner.name`` as its newest published version
    ``version`` holds it (``key``: the entity key column and its dtype, ``features``: the
    other columns and their Arrow types)."""

    owner: str
    name: str
    version: int
    key: str
    key_dtype: str
    features: dict[str, str] = field(default_factory=dict)


def read_specs(db_url: str, refs: Sequence[str]) -> list[ReadSpec]:
    """``OWNER.GROUP`` references resolved against the catalog's newest tagged versions.

    Raises:
        ConfigError: a reference is not ``OWNER.GROUP``, the catalog has no published version
            of the group, it is a label group, or its key column is not int64 or string.
    """
    from fti.db.engine import session_scope
    from fti.store.catalog import list_versions
    from fti.store.versions import DATE_COLUMN

    specs = []
    with session_scope(db_url) as session:
        for ref in dict.fromkeys(refs):
            owner, dot, group = ref.partition(".")
            if not dot or not NAME.match(owner) or not NAME.match(group):
                raise ConfigError(
                    f"--reads {ref!r}: write it as OWNER.GROUP, the owning project's name and "
                    "the group's, e.g. retail.customer_profile"
                )
            versions = list_versions(session, group)
            if not versions:
                raise ConfigError(
                    f"--reads {ref}: the catalog has no published version of group {group!r} "
                    f"(unknown, or not published yet by project {owner!r}); check the name and "
                    "that FTI_DB_URL is the owner's database, or publish it there first"
                )
            newest = versions[-1]
            if newest.kind != "features":
                raise ConfigError(
                    f"--reads {ref}: {group!r} is a label group; `fti new --reads` reads feature "
                    "groups: declare it as a ReadLabelGroup(name, entity, owner, horizon_days) "
                    "in the new project by hand (its horizon is the owner's)"
                )
            schema = dict(newest.schema)
            key = next(c for c in schema if c != DATE_COLUMN)
            if schema[key] not in KEY_DTYPES:
                raise ConfigError(
                    f"--reads {ref}: its key column {key!r} is {schema[key]}, not an int64 or "
                    "string entity key"
                )
            features = {c: t for c, t in schema.items() if c not in (key, DATE_COLUMN)}
            specs.append(
                ReadSpec(owner, group, newest.version, key, KEY_DTYPES[schema[key]], features)
            )
    return specs


def reads_context(reads: Sequence[ReadSpec]) -> dict[str, Any]:
    """What the templates need of ``reads``: the read groups (with the variable of their
    entity), the entities to declare besides the template's, and those entities' names."""
    taken = set(TEMPLATE_NAMES)
    groups: list[dict[str, Any]] = []
    entities: dict[tuple[str, str], dict[str, Any]] = {}
    for spec in reads:
        if (spec.key, spec.key_dtype) == SAMPLE_ENTITY[1:]:
            entity = "store"
        else:
            if (spec.key, spec.key_dtype) not in entities:
                name = spec.key.removesuffix("_id") if spec.key != "_id" else spec.key
                name = name if NAME.match(name) and name not in taken else f"{name}_entity"
                taken.add(name)
                entities[spec.key, spec.key_dtype] = {
                    "var": name,
                    "name": name,
                    "key": spec.key,
                    "dtype": spec.key_dtype,
                    "groups": [],
                }
            entities[spec.key, spec.key_dtype]["groups"].append(spec.name)
            entity = entities[spec.key, spec.key_dtype]["var"]
        var = spec.name if spec.name not in taken else f"{spec.name}_read"
        taken.add(var)
        groups.append(
            {
                "var": var,
                "name": spec.name,
                "owner": spec.owner,
                "version": spec.version,
                "entity": entity,
                "features": spec.features,
            }
        )
    return {
        "reads": groups,
        "entities": list(entities.values()),
        "foreign": [e["name"] for e in entities.values()],
    }


def create_project(name: str, parent: Path, reads: Sequence[ReadSpec] = ()) -> Path:
    """Write a new project package ``parent/name`` and return its folder.

    The folder holds the package (``name/project.py``: the definitions), ``params.yaml``,
    sample raw files in ``data/raw/sales/``, a test of the feature functions, ``.env``
    (FTI_PROJECT, FTI_HOME, FTI_RAW_PATH, FTI_PARAMS_FILE, relative to the folder), a
    ``pyproject.toml`` and a README naming the next commands. ``reads``: feature groups of
    other projects its model reads (``read_specs``) instead of a feature group of its own. ``parent/name`` may exist as
    an empty folder (nothing in it but a ``.git``): the project is written into it.

    Raises:
        ConfigError: ``name`` cannot be a project package (not a lower-case identifier, a
            keyword, a module that is already importable) or ``parent/name`` exists and is
            not an empty folder.
    """
    parent = Path(parent)
    if not parent.is_dir():
        raise ConfigError(f"cannot create project {name!r}: {parent} is not an existing folder")
    target = parent / name
    into = target.is_dir() and _empty(target)
    if target.exists() and not into:
        raise ConfigError(
            f"cannot create project {name!r}: {target} already exists and is not an empty "
            "folder; choose another name or an empty folder"
        )
    check_name(name)
    context = {
        "package": name,
        "start_date": SAMPLE.start.isoformat(),
        "end_date": SAMPLE.end.isoformat(),
        "stores": SAMPLE.stores,
        **reads_context(reads),
    }
    # The scratch folder: inside the empty folder written into (its parent may not be
    # writable), else beside the new folder (so the move is a rename on one file system).
    with tempfile.TemporaryDirectory(dir=target if into else parent, prefix=f".{name}-") as scratch:
        staged = Path(scratch) / name
        render_template(files("fti").joinpath(*TEMPLATE), staged, name, context)
        write_sample(staged / "data" / "raw" / "sales", SAMPLE)
        if into:
            _move_into(staged, target)
        elif target.exists():  # created meanwhile: never move over someone else's folder
            raise ConfigError(f"cannot create project {name!r}: {target} already exists")
        else:
            staged.rename(target)
    return target.resolve()


def _empty(folder: Path) -> bool:
    """Whether ``folder`` holds nothing a project could clash with (a ``.git`` is fine)."""
    return all(entry.name == ".git" for entry in folder.iterdir())


def _move_into(staged: Path, target: Path) -> None:
    """Move the entries of ``staged`` into the folder ``target``; on a failure, those moved
    go back, so ``target`` is left as it was."""
    moved: list[Path] = []
    try:
        for entry in sorted(staged.iterdir()):
            destination = target / entry.name
            if destination.exists():  # created meanwhile: never move over someone else's file
                raise ConfigError(f"cannot create the project in {target}: {destination} appeared")
            entry.rename(destination)
            moved.append(destination)
    except BaseException:
        for path in moved:
            path.rename(staged / path.name)
        raise


def check_name(name: str) -> None:
    """Refuse a name that cannot be a project package, with a one-line reason.

    The name is the package's (``FTI_PROJECT=name.project:project``) and the project's (in
    store paths, git tags and DAG ids), so it is a lower-case identifier; it may not be a
    keyword, nor a module that is already importable (the project's folder on PYTHONPATH
    would shadow it, e.g. ``random`` or ``pandas``).

    Raises:
        ConfigError: the name and what is wrong with it.
    """
    if not name.isidentifier():
        reason = "is not a Python identifier (letters, digits and _, not starting with a digit)"
    elif keyword.iskeyword(name):
        reason = "is a Python keyword"
    elif not NAME.match(name):
        reason = "must be lower case, start with a letter and have at most 63 characters"
    elif _importable(name):
        reason = "is already an importable module; a project of that name would shadow it"
    else:
        return
    raise ConfigError(f"project name {name!r} {reason}: choose another, e.g. 'my_sales'")


def _importable(name: str) -> bool:
    """Whether ``name`` is a module or regular package already (a namespace package, any
    folder of that name on the path, such as the empty folder the project goes into, is not:
    a regular package wins over it wherever it is)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None


def render_template(
    template: Traversable, target: Path, package: str, context: dict[str, Any]
) -> list[Path]:
    """Render every ``*.jinja`` file under ``template`` into ``target`` (the package folder
    renamed to ``package``, ``dot_`` to ``.``); returns the files written."""
    import jinja2

    environment = jinja2.Environment(
        undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False
    )
    written = []
    for source, parts in _template_files(template, ()):
        path = target.joinpath(*(_output_name(part, package) for part in parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(environment.from_string(source.read_text("utf-8")).render(context))
        written.append(path)
    return written


def _template_files(
    folder: Traversable, parts: tuple[str, ...]
) -> list[tuple[Traversable, tuple[str, ...]]]:
    """The template files under ``folder`` with their relative paths, in a stable order."""
    found = []
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            found += _template_files(entry, (*parts, entry.name))
        elif entry.name.endswith(SUFFIX):
            found.append((entry, (*parts, entry.name)))
    return found


def _output_name(part: str, package: str) -> str:
    """A template path part as written: suffix dropped, ``package`` renamed, ``dot_`` a dot."""
    part = part.removesuffix(SUFFIX)
    if part == PACKAGE_FOLDER:
        return package
    if part.startswith(DOT_PREFIX):
        return "." + part.removeprefix(DOT_PREFIX)
    return part


def write_sample(folder: Path, sample: Sample = SAMPLE) -> list[Path]:
    """One CSV a day in ``folder``: a row per store with the day's customers and sales.

    Deterministic for a ``sample``: each store has its own level, weekends sell more, sales
    grow slowly, and every day has some noise, so next week's sales are learnable from the
    last weeks'. Returns the files written.
    """
    import numpy as np

    rng = np.random.default_rng(sample.seed)
    level = rng.uniform(800, 2500, sample.stores)
    weekday = np.array([0.9, 0.85, 0.9, 1.0, 1.15, 1.35, 0.85])  # Monday .. Sunday
    basket = rng.uniform(18, 30, sample.stores)  # mean spend per customer
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for offset in range(sample.days):
        day = sample.start + timedelta(days=offset)
        growth = 1 + 0.002 * offset
        sales = level * weekday[day.weekday()] * growth * rng.lognormal(0, 0.08, sample.stores)
        customers = rng.poisson(sales / basket)
        closing = rng.integers(19, 23, sample.stores)  # the hour each store closed
        path = folder / f"{day.isoformat()}.csv"
        with path.open("w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(SALES_COLUMNS)
            for store in range(sample.stores):
                writer.writerow(
                    [
                        f"{day:%Y%m%d}-{store + 1}",
                        store + 1,
                        f"{day.isoformat()}T{closing[store]:02d}:00:00",
                        int(customers[store]),
                        f"{sales[store]:.2f}",
                    ]
                )
        written.append(path)
    return written
