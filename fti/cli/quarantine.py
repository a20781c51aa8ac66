"""`fti quarantine …`: raw rows set aside by validation, to inspect, export, fix and readmit."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from fti.cli import output
from fti.cli.options import JsonFlag, parse_date, settings
from fti.errors import InputFileError

quarantine_app = typer.Typer(help="Raw rows set aside by validation.", no_args_is_help=True)


@quarantine_app.command("list")
def quarantine_list(as_json: JsonFlag = False, limit: int = 100) -> None:
    """Quarantined raw rows: file, line, column, rule and the original values."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import list_rows

    with session_scope(settings().db_url) as session:
        rows = list_rows(session, limit)
    output.emit(rows, as_json, ["id", "file", "row_number", "column", "rule", "file_status"])


@quarantine_app.command("show")
def quarantine_show(row_id: int, as_json: JsonFlag = False) -> None:
    """One quarantined row: file, line, column, rule, original values and the file's accounting."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import show_row

    def run() -> dict[str, Any]:
        with session_scope(settings().db_url) as session:
            return show_row(session, row_id)

    output.emit(run(), as_json)


@quarantine_app.command("export")
def quarantine_export(
    date_: Annotated[str, typer.Option("--date", help="Logical date (YYYY-MM-DD).")],
    source: Annotated[
        str | None, typer.Option(help="Source name (default: the project's first source).")
    ] = None,
    out: Annotated[str | None, typer.Option(help="CSV file to write (default: stdout).")] = None,
) -> None:
    """A day's quarantined rows as CSV (quarantine_id, line, rule, columns), to fix and readmit."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import export_rows

    s = settings()
    chosen = _source(s, source)
    with session_scope(s.db_url) as session:
        rows = export_rows(session, chosen, parse_date(date_))
    text = rows.to_csv(index=False)
    if out:
        with open(out, "w", encoding="utf-8") as handle:
            handle.write(text)
        output.console.print(f"{len(rows)} quarantined row(s) written to {out}")
    else:
        typer.echo(text, nl=False)


@quarantine_app.command("readmit")
def quarantine_readmit(
    fixed: Annotated[str, typer.Argument(help="CSV from `fti quarantine export`, rows fixed.")],
    source: Annotated[
        str | None, typer.Option(help="Source name (default: the project's first source).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate fixed rows again and move those that pass into their day's accepted events."""
    from fti.db.engine import session_scope
    from fti.features.quarantine import readmit
    from fti.pipelines.features import quarantine_root

    s = settings()

    def run() -> dict[str, Any]:
        rows = _read_fixed_rows(fixed)
        with session_scope(s.db_url, write=True) as session:
            result = readmit(session, _source(s, source), rows, s.staging_path, quarantine_root(s))
        if result["readmitted"]:
            result["next"] = "rerun the feature pipeline for those dates to publish the rows"
        return result

    output.emit(run(), as_json)


def _read_fixed_rows(path: str) -> Any:
    """The rows of a CSV written by `fti quarantine export` and fixed by hand, all as text."""
    import pandas as pd

    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError as exc:
        raise InputFileError(
            f"{path}: no such file; give the CSV that `fti quarantine export --out FILE` wrote, "
            "with its rows fixed"
        ) from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputFileError(
            f"{path}: not a CSV from `fti quarantine export` ({output.first_line(exc)}); export "
            "the rows again with `fti quarantine export --out FILE` and fix them there"
        ) from exc


def _source(s: Any, name: str | None) -> Any:
    """The project's source called ``name`` (its first source when no name is given)."""
    from fti.definitions import load_project

    project = load_project(s.project)
    return project.source(name) if name else project.sources[0]
