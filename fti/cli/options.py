"""What `fti` commands take and share: the ``--json`` flag, dates, the settings, run ids."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from fti.settings import Settings

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
OwnerFilter = Annotated[
    str | None,
    typer.Option("--project", help="Only what this project owns (see the owner column)."),
]


def parse_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date in YYYY-MM-DD form") from exc


DateArg = Annotated[date, typer.Option(parser=parse_date, metavar="YYYY-MM-DD")]


def settings() -> Settings:
    """fti's settings, read from the environment when a command runs (not when `fti` loads)."""
    from fti.settings import get_settings

    return get_settings()


def cli_run_id(kind: str) -> str:
    """The run id of a pipeline run started from the command line, e.g. ``cli__train__<time>``."""
    return f"cli__{kind}__{datetime.now(UTC):%Y-%m-%dT%H:%M:%S.%fZ}"
