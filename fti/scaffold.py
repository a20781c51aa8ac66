"""`fti new NAME`: write a small, working project package to start from (as `kedro new` or
`feast init` do).

The project's files come from the template folder ``fti/templates/project``: every file there
is a Jinja2 template (``*.jinja``, rendered and written without the suffix); the folder
``package`` becomes the package's name and a leading ``dot_`` a dot (``dot_env`` -> ``.env``),
so the wheel ships no hidden files and no importable modules of the template. The sample raw
files are generated here, from a seeded generator, rather than stored as template files.

The project is written into a temporary folder next to its destination and moved into place
at the end, so a failure leaves no half-written project behind.
"""

from __future__ import annotations

import csv
import importlib.util
import keyword
import tempfile
from dataclasses import dataclass
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


def create_project(name: str, parent: Path) -> Path:
    """Write a new project package ``parent/name`` and return its folder.

    The folder holds the package (``name/project.py``: the definitions), ``params.yaml``,
    sample raw files in ``data/raw/sales/``, a test of the feature functions, ``.env``
    (FTI_PROJECT, FTI_HOME, FTI_RAW_PATH, FTI_PARAMS_FILE, relative to the folder), a
    ``pyproject.toml`` and a README naming the next commands.

    Raises:
        ConfigError: ``name`` cannot be a project package (not a lower-case identifier, a
            keyword, a module that is already importable) or ``parent/name`` exists.
    """
    parent = Path(parent)
    if not parent.is_dir():
        raise ConfigError(f"cannot create project {name!r}: {parent} is not an existing folder")
    target = parent / name
    if target.exists():  # first: the folder itself may be what makes the name importable
        raise ConfigError(
            f"cannot create project {name!r}: {target} already exists; choose another name "
            "or remove it"
        )
    check_name(name)
    context = {
        "package": name,
        "start_date": SAMPLE.start.isoformat(),
        "end_date": SAMPLE.end.isoformat(),
        "stores": SAMPLE.stores,
    }
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{name}-") as scratch:
        staged = Path(scratch) / name
        render_template(files("fti").joinpath(*TEMPLATE), staged, name, context)
        write_sample(staged / "data" / "raw" / "sales", SAMPLE)
        if target.exists():  # created meanwhile: never move over someone else's folder
            raise ConfigError(f"cannot create project {name!r}: {target} already exists")
        staged.rename(target)
    return target.resolve()


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
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


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
