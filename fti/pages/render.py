"""Templates to HTML: one Jinja environment (autoescaped) with the formatting filters."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from fti.pages import format as fmt
from fti.pages.views.common import state_of

if TYPE_CHECKING:
    from fastapi import Request
    from fastapi.responses import HTMLResponse
    from jinja2 import Environment


@cache
def environment() -> Environment:
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=PackageLoader("fti.pages", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(fmt.FILTERS)
    env.filters["state"] = state_of
    env.tests.update(fmt.TESTS)
    env.globals["DASH"] = fmt.DASH
    return env


def relative_root(path: str, root_path: str = "") -> str:
    """The relative URL of the fti root from a page at ``path`` (``./``, ``../../``): every
    page sets it as ``<base href>``, so links work under any prefix a proxy adds or strips."""
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    depth = path.count("/") - 1
    return "../" * depth if depth > 0 else "./"


def render_text(template: str, **context: Any) -> str:
    """``template`` rendered with ``context`` (and ``root``, ``now`` unless given)."""
    context.setdefault("root", "./")
    context.setdefault("now", datetime.now(UTC))
    return environment().get_template(template).render(**context)


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page: ``template`` rendered for ``request`` (its ``<base>`` the fti root)."""
    from fastapi.responses import HTMLResponse

    root = relative_root(request.url.path, str(request.scope.get("root_path", "")))
    return HTMLResponse(render_text(template, root=root, **context), status_code=status_code)
