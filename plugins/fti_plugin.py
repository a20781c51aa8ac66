"""The fti pages inside the Airflow UI: ``fti.pages``' app mounted at /fti, with Airflow's login
and permissions behind it, and two Browse menu entries.

The pages themselves (routes, view models, templates, charts) are ``fti.pages``, which knows
nothing of Airflow; this module is what ties them to it: :class:`AirflowAuth`.

Airflow authenticates none of a plugin's FastAPI app (a mounted app inherits none of the core
API's dependencies), so every route of the app, the API docs included, depends on
``AirflowAuth.user``: the same login as the Airflow UI, through the auth manager Airflow runs
(simple, FAB, ...). A model version's page can also make that version champion, or roll the
champion back: that needs more than the login (``may_change_aliases``: the auth manager's
permission to edit the model's inference DAG) and a same-origin form with the session's token
(``fti.pages.auth.check_form``, keyed with Airflow's ``[api] secret_key``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.plugins_manager import AirflowPlugin
from fastapi import HTTPException, Request

from fti.pages.app import create_app
from fti.pages.auth import LoginRequired, origin, wants_html


class AirflowAuth:
    """``fti.pages.auth.PageAuth`` through Airflow's auth manager and settings."""

    async def user(self, request: Request) -> BaseUser:
        """Let through only a user Airflow's auth manager authenticates and allows to see the UI.

        The user comes from a Bearer token or from the ``_token`` cookie the UI sets at login,
        exactly as for Airflow's own API (``get_user``): none is 401, an expired token 401, a
        forged one 403. The user must then be allowed ``AccessView.WEBSITE``, the permission of
        every role that may use the Airflow UI (FAB's "can read Website"; the simple auth
        manager's viewer and up): 403 otherwise. A browser navigation (Accept: text/html)
        without a valid session is sent to the login page instead, and back here afterwards.
        """
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
        from airflow.api_fastapi.core_api.security import bearer_scheme, get_user
        from starlette.concurrency import run_in_threadpool

        try:
            user = await get_user(request, bearer_credentials=await bearer_scheme(request))
        except HTTPException as exc:
            # What the Airflow UI treats as "log in again": no, expired or invalid credentials.
            relogin = exc.status_code == 401 or exc.detail == "Invalid JWT token"
            if relogin and wants_html(request):
                raise LoginRequired from exc
            raise
        allowed = await run_in_threadpool(
            get_auth_manager().is_authorized_view, access_view=AccessView.WEBSITE, user=user
        )
        if not allowed:
            raise HTTPException(403, "Forbidden")
        return user

    def may_change_aliases(self, user: BaseUser, name: str) -> bool:
        """Whether ``user`` may point model ``name``'s aliases at another version.

        The auth manager decides, with its own check for what an alias change does: the
        champion alias is what the model's inference DAG (``{name}_inference``) scores with, so
        changing it is editing that DAG's behaviour: ``is_authorized_dag(method="PUT")`` on that
        DAG. With the FAB auth manager that is "can edit on DAGs" (roles User, Op, Admin; not
        Viewer) or "can edit" on that one DAG (per-DAG access control: params.yaml ``access``
        grants it to a team's roles, ``fti.access``); with the simple auth manager the roles
        user, op and admin, not viewer. Airflow's other checks fit worse:
        ``is_authorized_view`` (what viewing needs) is granted to every viewer, and
        ``is_authorized_custom_view`` is granted to every viewer by the simple auth manager
        whatever the method.
        """
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

        return get_auth_manager().is_authorized_dag(
            method="PUT", details=DagDetails(id=f"{name}_inference"), user=user
        )

    def credential(self, request: Request) -> str:
        """The credential the request was authenticated with, as ``get_user`` picks it: an
        ``Authorization: Bearer`` header wins over the ``_token`` session cookie."""
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and value:
            return value.strip()
        return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")

    def secret_key(self) -> bytes:
        """Airflow's ``[api] secret_key``, shared by every api-server."""
        from airflow.configuration import conf

        return conf.get("api", "secret_key").encode()

    def public_url(self) -> str:
        """``[api] base_url``: what users browse, in front of any proxy."""
        from airflow.api_fastapi import app as airflow_app

        return str(airflow_app.API_BASE_URL)

    def login_url(self, request: Request) -> str:
        """Airflow's login entry (what its UI uses), coming back to this page afterwards.

        ``/api/v2/auth/login`` checks ``next`` (it must be under ``[api] base_url``) and
        forwards to the auth manager's own login page. Both paths are the browser's: under the
        base URL's path even when a proxy strips that prefix before the api-server.
        """
        from airflow.api_fastapi.app import API_ROOT_PATH

        path = request.url.path
        if not path.startswith(API_ROOT_PATH):
            path = API_ROOT_PATH.removesuffix("/") + path
        back = path + (f"?{request.url.query}" if request.url.query else "")
        return f"{API_ROOT_PATH}api/v2/auth/login?{urlencode({'next': back})}"

    def api_url(self, request: Request) -> str:
        """Where this api-server is reached, for the pages' requests to its own REST API:
        ``[api] base_url`` when it names a host (what Airflow's UI uses too), else the host
        the request came to, under the base URL's path."""
        from airflow.api_fastapi import app as airflow_app

        if origin(airflow_app.API_BASE_URL):
            return str(airflow_app.API_BASE_URL)
        return f"{request.url.scheme}://{request.url.netloc}{airflow_app.API_ROOT_PATH}"

    def root_path(self) -> str:
        from airflow.api_fastapi.app import API_ROOT_PATH

        return str(API_ROOT_PATH)

    def actor(self, user: Any) -> str:
        """The Airflow user's name, as the auth manager gives it, for the alias history."""
        return str(user.get_name() or user.get_id())[:200]


auth = AirflowAuth()
app = create_app(auth)


class FtiPlugin(AirflowPlugin):
    name = "fti"
    fastapi_apps = [{"app": app, "url_prefix": "/fti", "name": "fti"}]
    external_views = [
        {
            "name": "fti",
            "href": "/fti/",
            "destination": "nav",
            "url_route": "fti",
            "category": "browse",
        },
        {
            "name": "fti health",
            "href": "/fti/health",
            "destination": "nav",
            "url_route": "fti-health",
            "category": "browse",
        },
    ]
