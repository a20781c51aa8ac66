"""MkDocs hook for the command-line reference (docs/cli.md).

mkdocs-typer2 renders the reference by running ``typer fti.cli utils docs`` in a subprocess and,
when that fails, leaves the page without it and says nothing. This hook makes the build use the
``typer`` of the environment MkDocs runs in, fails the build when a command of the Typer
app is missing from the rendered page, so ``mkdocs build --strict`` catches a broken reference,
and shows each usage line as a code block (typer's ```console fences reach the page as inline
code, because mkdocs-typer2 renders them without the fenced-code extension).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError

CLI_PAGE = "cli.md"
USAGE = re.compile(r"<p><code>console\n(\$ [^<]*)</code></p>")


def on_config(config: Any, **kwargs: Any) -> Any:
    """Put this interpreter's scripts folder first on PATH, where mkdocs-typer2 finds ``typer``."""
    scripts = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([scripts, os.environ.get("PATH", "")])
    return config


def _command_paths(command: Any, path: list[str]) -> list[str]:
    """Every leaf command of a Typer/Click group, as ``fti group command``; hidden ones left out."""
    if getattr(command, "hidden", False):
        return []
    children = getattr(command, "commands", None)
    if not children:
        return [" ".join(path)]
    paths: list[str] = []
    for name, child in children.items():
        paths += _command_paths(child, [*path, name])
    return paths


def on_page_content(html: str, page: Any, **kwargs: Any) -> str:
    """Fail the build when the CLI page lacks a heading for any command of ``fti.cli:app``."""
    if page.file.src_uri != CLI_PAGE:
        return html
    import typer

    from fti.cli import app

    expected = _command_paths(typer.main.get_command(app), ["fti"])
    _, found, generated = html.partition('<div class="typer-docs">')
    headings = set(re.findall(r"<h[1-6][^>]*><code>([^<]*)</code>", generated if found else ""))
    missing = [name for name in expected if name not in headings]
    if missing:
        raise PluginError(
            f"{CLI_PAGE}: the generated reference lacks {', '.join(missing)}; run "
            "`.venv/bin/typer fti.cli utils docs --name fti` to see why"
        )
    return USAGE.sub(r"<pre><code>\1</code></pre>", html)
