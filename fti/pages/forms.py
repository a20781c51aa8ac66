"""The forms of a model version's page that change its champion (POST, Post/Redirect/Get).

Each passes :func:`fti.pages.auth.check_form` (the permission, the same origin, the session's
token) before it reads the reason; a refusal changes nothing and says why in one line.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from fti.pages.auth import FormRefused, auth_of, check_form, current_user, reason
from fti.pages.render import render
from fti.pages.views.common import Link, Page

router = APIRouter()
User = Annotated[Any, Depends(current_user)]


def refused_page(request: Request, exc: FormRefused) -> HTMLResponse:
    """One line saying why nothing changed, and the way back to the version's page."""
    name = str(request.path_params.get("name", ""))
    version = str(request.path_params.get("version", ""))
    back = f"models/{name}/{version}" if name and version else "./"
    page = Page(
        "Not changed",
        [Link("fti", "./"), Link(name, ""), Link(f"v{version}", back), Link("not changed", "")],
    )
    return render(request, "refused.html", exc.status, page=page, message=str(exc), back=back)


def back_to(version: int, event: int) -> RedirectResponse:
    """Post/Redirect/Get: back to the version's page (relative, so under any base URL), which
    then shows the recorded change."""
    return RedirectResponse(f"../{version}?event={event}", status_code=303)


@router.post("/models/{name}/{version}/promote", response_class=HTMLResponse)
def promote(
    request: Request,
    name: str,
    version: int,
    user: User,
    reason_text: Annotated[str, Form(alias="reason")] = "",
    token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Make ``version`` champion, recorded with the user's name and the reason: what
    ``fti models promote NAME VERSION --reason ...`` does (``aliases.set_alias``), without the
    training pipeline's metric gate (a person decides, as on the command line)."""
    from fti.db.engine import session_scope
    from fti.errors import RegistryError
    from fti.registry import aliases
    from fti.registry.versions import get_version, lock_model
    from fti.settings import get_settings

    check_form(request, user, name, token)
    why = reason(reason_text)
    with session_scope(get_settings().db_url, write=True) as session:
        lock_model(session, name)
        try:
            get_version(session, name, version)
        except RegistryError as exc:
            raise FormRefused(404, f"Not changed: {exc}") from exc
        if aliases.current(session, name, aliases.CHAMPION) == version:
            raise FormRefused(409, f"Not changed: {name} v{version} is already champion.")
        actor = auth_of(request).actor(user)
        event = aliases.set_alias(session, name, aliases.CHAMPION, version, actor, why)
        return back_to(version, event.id)


@router.post("/models/{name}/{version}/rollback", response_class=HTMLResponse)
def roll_back(
    request: Request,
    name: str,
    version: int,
    user: User,
    reason_text: Annotated[str, Form(alias="reason")] = "",
    token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Re-point champion from ``version`` to the version it replaced (``aliases.rollback``,
    what ``fti models rollback`` does), only while ``version`` is still champion: a form posted
    twice, or from a stale page, does not roll back a second time. Predictions are not
    re-scored here (that runs the model over every date, too long for a request): the page
    says how."""
    from fti.db.engine import session_scope
    from fti.errors import RegistryError
    from fti.registry import aliases
    from fti.registry.versions import lock_model
    from fti.settings import get_settings

    check_form(request, user, name, token)
    why = reason(reason_text)
    with session_scope(get_settings().db_url, write=True) as session:
        lock_model(session, name)
        held_by = aliases.current(session, name, aliases.CHAMPION)
        if held_by != version:
            now = f"v{held_by} is champion now" if held_by is not None else "it has no champion"
            raise FormRefused(
                409, f"Not changed: {name} v{version} is not champion ({now}); reload the page."
            )
        try:
            event = aliases.rollback(
                session, name, aliases.CHAMPION, auth_of(request).actor(user), why
            )
        except RegistryError as exc:
            raise FormRefused(409, f"Not changed: {exc}") from exc
        return back_to(version, event.id)
