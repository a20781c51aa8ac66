"""Airflow's REST API v2, read with httpx (fti never imports Airflow): a client built from the
settings (a token, or a username and password exchanged for one), paged listings, and one
``AirflowApiError`` that says what failed and what fixes it (the api-server down, refused
credentials, a forbidden user, an answer that is not the API's).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx

from fti.errors import ConfigError, FtiError

if TYPE_CHECKING:
    from fti.settings import Settings

API = "/api/v2"
PAGE = 100  # Airflow's largest page ([api] maximum_page_limit's default)
TIMEOUT_SECONDS = 30.0
URL_SETTING = "FTI_AIRFLOW_API_URL"
CREDENTIALS = (
    "set FTI_AIRFLOW_API_TOKEN to a valid token, or FTI_AIRFLOW_API_USERNAME and "
    "FTI_AIRFLOW_API_PASSWORD to an Airflow user's"
)


class AirflowApiError(FtiError):
    """Airflow's REST API could not be reached, refused the request or answered an error
    (``status``: its HTTP status; None when there was no answer)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def api_client(settings: Settings, timeout: float = TIMEOUT_SECONDS) -> httpx.Client:
    """An httpx client of the Airflow REST API the settings name (``airflow_api_url``), with
    their credentials: a token as is, or a username and password exchanged at ``/auth/token``
    (the simple and the FAB auth manager's) for a token, exchanged again when it expires.

    Raises:
        ConfigError: no URL is set, or a username without a password (or the reverse).
    """
    url = settings.airflow_api_url
    if not url:
        raise ConfigError(
            f"{URL_SETTING} is not set: set it to the URL of Airflow's api-server "
            "(e.g. http://localhost:8080), and its credentials: " + CREDENTIALS
        )
    token = settings.airflow_api_token
    username = settings.airflow_api_username
    password = settings.airflow_api_password
    if token is None and (username is None) != (password is None):
        given, missing = ("USERNAME", "PASSWORD") if password is None else ("PASSWORD", "USERNAME")
        raise ConfigError(
            f"FTI_AIRFLOW_API_{given} is set without FTI_AIRFLOW_API_{missing}: set both, "
            "or FTI_AIRFLOW_API_TOKEN instead"
        )
    auth: httpx.Auth | None = None
    headers = {}
    if token is not None:
        headers["Authorization"] = f"Bearer {token.get_secret_value()}"
    elif username is not None and password is not None:
        auth = PasswordAuth(
            f"{url.rstrip('/')}/auth/token", username, password.get_secret_value(), timeout
        )
    return httpx.Client(base_url=url, headers=headers, auth=auth, timeout=timeout)


class PasswordAuth(httpx.Auth):
    """A JWT from Airflow's ``/auth/token`` for a username and password, fetched at the first
    request and again when the API answers 401 (the token expired)."""

    requires_response_body = True

    def __init__(self, token_url: str, username: str, password: str, timeout: float) -> None:
        self.token_url = token_url
        self.credentials = {"username": username, "password": password}
        self.timeout = timeout
        self.token: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is None:
            self.token = yield from self._login()
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            self.token = yield from self._login()
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    def _login(self) -> Generator[httpx.Request, httpx.Response, str]:
        response = yield httpx.Request(
            "POST",
            self.token_url,
            json=self.credentials,
            extensions={"timeout": httpx.Timeout(self.timeout).as_dict()},
        )
        if response.status_code >= 400:
            raise AirflowApiError(
                f"Airflow at {self.token_url} refused the login of user "
                f"{self.credentials['username']!r} ({response.status_code} "
                f"{_detail(response)}): check FTI_AIRFLOW_API_USERNAME and "
                "FTI_AIRFLOW_API_PASSWORD, or set FTI_AIRFLOW_API_TOKEN",
                response.status_code,
            )
        return str(response.json()["access_token"])


@dataclass(frozen=True)
class _Api:
    """The API through ``client``; what to tell when it fails: the setting that gave its URL
    and what fixes refused credentials."""

    client: httpx.Client
    url_setting: str
    credentials: str

    @property
    def base(self) -> str:
        return str(self.client.base_url).rstrip("/")

    def call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        where = f"{self.base}{path}"
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise AirflowApiError(
                f"Airflow's REST API did not answer {method} {where} in time: check that the "
                f"api-server runs there and is not overloaded, and that {self.url_setting} is "
                "its URL"
            ) from None
        except httpx.TransportError as exc:  # refused, unknown host, TLS...
            raise AirflowApiError(
                f"cannot reach Airflow's REST API at {where} ({exc or type(exc).__name__}): "
                f"check that the api-server runs there, or set {self.url_setting} to its URL"
            ) from None
        if response.status_code == 401:
            raise AirflowApiError(
                f"Airflow's REST API refused the credentials for {method} {where} (401 "
                f"{_detail(response)}): {self.credentials}",
                401,
            )
        if response.status_code == 403:
            raise AirflowApiError(
                f"Airflow's REST API forbids {method} {where} to this user (403): give the "
                "user read access to the DAGs' runs and task instances",
                403,
            )
        if response.is_error:
            raise AirflowApiError(
                f"Airflow's REST API answered {method} {where} with {response.status_code} "
                f"{_detail(response)}",
                response.status_code,
            )
        try:
            body = response.json()
        except ValueError:
            raise AirflowApiError(
                f"{where} did not answer JSON: is {self.url_setting} ({self.base}) the URL of "
                "Airflow's api-server (not of its UI behind another path)?"
            ) from None
        return dict(body)

    def get_all(self, path: str, key: str, page: int, **params: Any) -> list[dict[str, Any]]:
        """Every item of a paged GET listing (``limit``/``offset``), in ``order_by`` order."""
        return self._all("GET", path, key, page, lambda n: {"params": {**params, **n}})

    def post_all(self, path: str, key: str, page: int, **body: Any) -> list[dict[str, Any]]:
        """Every item of a paged POST listing (``page_limit``/``page_offset`` in the body)."""

        def json_body(n: dict[str, int]) -> dict[str, Any]:
            return {"json": {**body, "page_limit": n["limit"], "page_offset": n["offset"]}}

        return self._all("POST", path, key, page, json_body)

    def _all(self, method: str, path: str, key: str, page: int, request: Any) -> list[Any]:
        items: list[dict[str, Any]] = []
        while True:
            answer = self.call(method, path, **request({"limit": page, "offset": len(items)}))
            batch = list(answer.get(key) or [])
            items += batch
            total = answer.get("total_entries")
            # Airflow may answer fewer than asked ([api] maximum_page_limit): the total decides.
            if not batch or (len(items) >= total if total is not None else len(batch) < page):
                return items


def _quote(part: str) -> str:
    from urllib.parse import quote

    return quote(part, safe="")


def _detail(response: httpx.Response) -> str:
    """The API's ``detail`` (or the body's start), on one line."""
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    text = " ".join(str(detail).split())
    return text[:300]
