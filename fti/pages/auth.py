"""Who may see the fti pages and who may change a champion from them, and the CSRF checks of
the forms that do.

fti knows no login of its own: the app is given a :class:`PageAuth` (the Airflow plugin's,
``plugins/fti_plugin.py``, asks Airflow's auth manager) and every route depends on
:func:`current_user`. A form that changes an alias passes :func:`check_form`: the permission,
then the same-origin check, then the per-session token (an HMAC of the session's credential
with a server secret that a page of another site can read neither of).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any, Protocol
from urllib.parse import urlsplit

from fastapi import Request

MAX_REASON = 1000  # characters of a reason recorded in the alias history


class LoginRequired(Exception):
    """A browser navigation without a valid session: answered by a redirect to the login."""


class FormRefused(Exception):
    """A form post that changes nothing: answered with one line and the status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class PageAuth(Protocol):
    """What the pages need from the system that logs users in (Airflow's auth manager)."""

    async def user(self, request: Request) -> Any:
        """The user the request is authenticated as and allowed to see the pages; raises
        HTTPException (401, 403) otherwise, or LoginRequired for a browser navigation."""

    def may_change_aliases(self, user: Any, name: str) -> bool:
        """Whether ``user`` may point model ``name``'s aliases at another version."""

    def credential(self, request: Request) -> str:
        """The credential the request was authenticated with (token or session cookie)."""

    def secret_key(self) -> bytes:
        """A secret shared by every server of the deployment, never sent to a browser."""

    def public_url(self) -> str:
        """The URL users browse (``[api] base_url``); may name no host."""

    def login_url(self, request: Request) -> str:
        """Where a browser without a session logs in, coming back to this page afterwards."""

    def api_url(self, request: Request) -> str:
        """Where this server's REST API is reached, for the pages' own requests to it."""

    def root_path(self) -> str:
        """The path of the UI's root as the browser sees it (``/`` or ``/airflow/``)."""

    def actor(self, user: Any) -> str:
        """The user's name, as recorded in the alias history."""


def auth_of(request: Request) -> PageAuth:
    auth: PageAuth = request.app.state.auth
    return auth


async def current_user(request: Request) -> Any:
    """The dependency of every route: the user :class:`PageAuth` lets in."""
    return await auth_of(request).user(request)


def wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def may_change_aliases(request: Request, user: Any, name: str) -> bool:
    return auth_of(request).may_change_aliases(user, name)


def form_token(auth: PageAuth, request: Request) -> str:
    """The per-form CSRF token: an HMAC of the session's credential with the server's secret.
    A page of another site can neither read the credential (an http-only cookie) nor the key,
    so it cannot make the token."""
    message = b"fti-alias-form\0" + auth.credential(request).encode()
    return hmac.new(auth.secret_key(), message, hashlib.sha256).hexdigest()


def origin(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, default ports left out; None without a host."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme.lower()}://{host}" + (f":{port}" if port and port != default else "")


def check_same_origin(auth: PageAuth, request: Request) -> None:
    """Refuse a form posted from another origin: the browser's ``Origin`` (or, when it sends
    none, its ``Referer``) must be this server's own origin, that of the public URL when it
    names one (what users browse, in front of any proxy), else the request's own host."""
    own = origin(auth.public_url()) or origin(str(request.base_url))
    sent = request.headers.get("origin")
    if not sent or sent == "null":
        sent = request.headers.get("referer")
    if not sent:
        raise FormRefused(403, "Refused: the form was posted without an Origin or Referer.")
    if origin(sent) != own:
        raise FormRefused(403, "Refused: the form was posted from another site.")


def check_form(request: Request, user: Any, name: str, token: str) -> None:
    """What every alias-changing post must pass: the permission, then the CSRF checks."""
    auth = auth_of(request)
    if not auth.may_change_aliases(user, name):
        raise FormRefused(403, "Forbidden: changing a model's champion needs edit rights on DAGs.")
    check_same_origin(auth, request)
    if not hmac.compare_digest(token.encode(), form_token(auth, request).encode()):
        raise FormRefused(
            403, "Refused: the form's token does not match your session; reload the page."
        )


def reason(text: str) -> str:
    """The reason of a form, on one line; FormRefused (400) when it is empty or too long."""
    found = " ".join(text.split())
    if not found:
        raise FormRefused(400, "Not changed: a reason is required; it goes into the alias history.")
    if len(found) > MAX_REASON:
        raise FormRefused(400, f"Not changed: the reason is longer than {MAX_REASON} characters.")
    return found
