"""What `fti` commands print: listings as a table or JSON (:func:`emit`) on :data:`console`,
and an error as one line per problem on stderr with exit code 1 (:class:`OneLineErrors`).

Commands print through ``output.console`` rather than a name imported from here, so that a
test (or anything else) can swap the console in this one place.
"""

from __future__ import annotations

import errno
import json
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from fti.errors import FtiError

DEBUG_HINT = "rerun with --debug (or FTI_DEBUG=1) to see the traceback"

console = Console()


# ---- listings ---------------------------------------------------------------------------------
def emit(
    rows: Sequence[dict[str, Any]] | dict[str, Any], as_json: bool, columns: list[str] | None = None
) -> None:
    """Print JSON (array, or one object) or a table of ``columns``."""
    if as_json:
        typer.echo(json.dumps(rows, indent=2, default=str))
        return
    if isinstance(rows, dict):
        for key, value in rows.items():
            console.print(
                f"[bold]{key}[/]: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}"
            )
        return
    if not rows:
        console.print("(none)")
        return
    columns = columns or list(rows[0])
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    if _table_width(columns, cells) > console.width:
        _print_records(columns, cells)
        return
    table = Table(*columns)
    for line in cells:
        table.add_row(*line)
    console.print(table)


def _table_width(columns: list[str], cells: list[list[str]]) -> int:
    """Characters a rich table of these cells needs without shrinking any column: the widest
    value (or header) of each column, plus a border and a space either side of each."""
    widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(columns)]
    return sum(widths) + 3 * len(columns) + 1


def _print_records(columns: list[str], cells: list[list[str]]) -> None:
    """One block per row, one line per column (psql's expanded display, `\\x`): what a table
    too wide for the terminal prints instead of headers shrunk to `┃ as_… ┃`."""
    width = max(len(name) for name in columns)
    for number, line in enumerate(cells, 1):
        console.print(f"-[ RECORD {number} ]" + "-" * max(0, width - 10), highlight=False)
        for name, value in zip(columns, line, strict=True):
            console.print(f"{name:<{width}} | {value}", highlight=False, soft_wrap=True)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


# ---- errors -----------------------------------------------------------------------------------
class OneLineErrors(TyperGroup):
    """The `fti` command group: an error ends as one line per problem on stderr, exit code 1.

    Every command runs inside :meth:`invoke`, so this is the one place errors are turned into
    messages (see :func:`explain`); ``--debug`` or ``FTI_DEBUG=1`` lets the traceback through.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exit codes, Ctrl-C and usage errors (exit code 2) are typer's to print
        except Exception as exc:
            if ctx.params.get("debug"):  # --debug, or FTI_DEBUG through the option's envvar
                raise
            fail(exc)


def fail(exc: Exception) -> NoReturn:
    """Print ``exc`` as `error:` lines on stderr (see :func:`explain`) and exit with code 1."""
    for line in explain(exc):
        typer.echo(f"error: {line}", err=True)
    raise typer.Exit(1) from None


def explain(exc: Exception) -> list[str]:
    """What went wrong, as one line per problem that names the setting or file and what to do.

    fti's own errors carry their message; a bad setting, an unreachable database and a file
    that cannot be opened are a user's to fix, so they get a message too; anything else is
    a bug or a case fti does not handle yet, and says how to get the traceback.
    """
    from pydantic import ValidationError
    from sqlalchemy.exc import DBAPIError

    from fti.settings import setting_problems

    if isinstance(exc, FtiError):
        return [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        return setting_problems(exc)
    if isinstance(exc, DBAPIError):
        return [_database_problem(exc)]
    if isinstance(exc, OSError) and exc.filename is not None:
        return [_file_problem(exc)]
    return [
        f"unexpected {type(exc).__name__}: {first_line(exc)} (a bug in fti, or a case it does "
        f"not handle yet: {DEBUG_HINT} and report it)"
    ]


def first_line(exc: BaseException) -> str:
    """The first non-blank line of ``exc``'s message (its type's name when it has none)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def _database_problem(exc: Any) -> str:
    """A failed connection or statement, with the database it was for (password hidden)."""
    url = _configured_database()
    reason = first_line(exc.orig if exc.orig is not None else exc)
    sqlite = url.startswith("sqlite")
    if exc.statement is None:  # SQLAlchemy raised it while connecting
        hint = (
            "run `fti init` to create FTI_HOME and its database, or set FTI_DB_URL"
            if sqlite
            else "check that the server is running and FTI_DB_URL's host, port, user and database"
        )
        return f"cannot connect to the database FTI_DB_URL={url}: {reason}; {hint}"
    if "no such table" in reason or getattr(exc.orig, "sqlstate", None) == "42P01":
        return f"the database FTI_DB_URL={url} lacks fti's tables ({reason}); run `fti init`"
    return f"database error at FTI_DB_URL={url}: {reason} ({DEBUG_HINT})"


def _configured_database() -> str:
    """FTI_DB_URL as it may be printed (password hidden)."""
    from fti.settings import get_settings, hide_password

    try:
        return hide_password(get_settings().db_url)
    except FtiError:
        return "(see FTI_DB_URL)"


_FILE_HINTS = {
    errno.ENOENT: "check the path",
    errno.EACCES: "check its permissions",
    errno.EPERM: "check its permissions",
    errno.EROFS: "choose a writable place",
    errno.ENOSPC: "free some space",
    errno.EISDIR: "give a file, not a folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "move it out of the way",
}


def _file_problem(exc: OSError) -> str:
    """A file or folder that could not be opened or written, by name, with what to do."""
    names = str(exc.filename) + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
    reason = (exc.strerror or type(exc).__name__).lower()
    hint = _FILE_HINTS.get(exc.errno or 0, DEBUG_HINT)
    return f"{names}: {reason}; {hint}"
