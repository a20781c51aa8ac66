"""The fti pages inside the Airflow UI: a FastAPI app mounted at /fti and a Browse menu entry.

The page reads fti's database when it is requested (never at import), using the same
settings (FTI_* environment variables) as the pipelines.

Airflow authenticates none of a plugin's FastAPI app (a mounted app inherits none of the core
API's dependencies), so every route here, the API docs included, depends on ``require_login``:
the same login as the Airflow UI, through the auth manager Airflow runs (simple, FAB, ...).

A model version's page can also make that version champion, or roll the champion back
(POST forms, see ``promote`` and ``roll_back``): that needs more than the login (the auth
manager's permission to edit the model's inference DAG) and a same-origin form (CSRF checks).
"""

from __future__ import annotations

import hashlib
import hmac
import html
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse

if TYPE_CHECKING:
    from collections.abc import Mapping

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from sqlalchemy.orm import Session

    from fti.monitoring.health import Failure, Health, RealizedStatus
    from fti.monitoring.runs import Runs


class LoginRequired(Exception):
    """A browser navigation without a valid session: answered by Airflow's login page."""


async def require_login(request: Request) -> BaseUser:
    """Let through only a user Airflow's auth manager authenticates and allows to see the UI.

    The user comes from a Bearer token or from the ``_token`` cookie the UI sets at login,
    exactly as for Airflow's own API (``get_user``): none is 401, an expired token 401, a
    forged one 403. The user must then be allowed ``AccessView.WEBSITE``, the permission of
    every role that may use the Airflow UI (FAB's "can read Website"; the simple auth
    manager's viewer and up): 403 otherwise. A browser navigation (Accept: text/html) without
    a valid session is sent to the login page instead, and back here afterwards.
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
        if relogin and _wants_html(request):
            raise LoginRequired from exc
        raise
    allowed = await run_in_threadpool(
        get_auth_manager().is_authorized_view, access_view=AccessView.WEBSITE, user=user
    )
    if not allowed:
        raise HTTPException(403, "Forbidden")
    return user


User = Annotated[BaseUser, Depends(require_login)]


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def login_url(request: Request) -> str:
    """Airflow's login entry (what its UI uses), coming back to this page afterwards.

    ``/api/v2/auth/login`` checks ``next`` (it must be under ``[api] base_url``) and forwards to
    the auth manager's own login page. Both paths are the browser's: under the base URL's path
    even when a proxy strips that prefix before the api-server.
    """
    from airflow.api_fastapi.app import API_ROOT_PATH

    path = request.url.path
    if not path.startswith(API_ROOT_PATH):
        path = API_ROOT_PATH.removesuffix("/") + path
    back = path + (f"?{request.url.query}" if request.url.query else "")
    return f"{API_ROOT_PATH}api/v2/auth/login?{urlencode({'next': back})}"


app = FastAPI(
    title="fti",
    description="Feature versions, models and prediction runs of fti",
    dependencies=[Depends(require_login)],
    # FastAPI's own docs routes would skip the app's dependencies: served below instead.
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
)


@app.exception_handler(LoginRequired)
async def _to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
    return RedirectResponse(login_url(request), status_code=303)


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> JSONResponse:
    return JSONResponse(app.openapi())


@app.get("/docs", include_in_schema=False)
def docs() -> HTMLResponse:
    from fastapi.openapi.docs import get_swagger_ui_html

    return get_swagger_ui_html(openapi_url="openapi.json", title="fti - Swagger UI")


@app.get("/redoc", include_in_schema=False)
def redoc() -> HTMLResponse:
    from fastapi.openapi.docs import get_redoc_html

    return get_redoc_html(openapi_url="openapi.json", title="fti - ReDoc")


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2933;max-width:80rem}
h1{font-size:1.4rem} h2{font-size:1.1rem;margin-top:2rem}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{border-bottom:1px solid #d9e2ec;padding:.3rem .5rem;text-align:left;white-space:nowrap}
th{background:#f0f4f8} .alias{background:#def7ec;border-radius:.3rem;padding:0 .3rem}
.failed{color:#b42318} .succeeded{color:#05603a} small{color:#627d98} img{max-width:100%}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value))


def _run_link(run_id: str) -> str:
    """Lineage run ids look like '<dag_id>/<airflow run id>': link those to the Airflow run page."""
    dag_id, _, airflow_run = run_id.partition("/")
    if not airflow_run:
        return _e(run_id)
    href = f"/dags/{quote(dag_id, safe='')}/runs/{quote(airflow_run, safe='')}"
    return f'<a href="{_e(href)}" target="_top">{_e(run_id)}</a>'


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body or '<tr><td>none yet</td></tr>'}</tbody></table>"


@app.get("/", response_class=HTMLResponse)
def index(page: int = Query(1, ge=1), per_page: int = Query(50, ge=1, le=500)) -> str:
    """Feature and label group versions, model versions (each with its own metric) and
    prediction runs, newest first, a page of each."""
    from sqlalchemy import func, select

    from fti.db.engine import session_scope
    from fti.db.tables import FeatureVersion, ModelVersion, PredictionRun
    from fti.inference.runs import list_runs
    from fti.registry.versions import aliases_by_version, list_versions
    from fti.settings import get_settings
    from fti.store.catalog import list_versions as list_feature_versions
    from fti.store.versions import FeatureStore

    settings = get_settings()
    offset = (page - 1) * per_page
    with session_scope(settings.db_url) as session:
        features = list_feature_versions(
            session, store=FeatureStore(settings.store_path), limit=per_page, offset=offset
        )
        models = list_versions(session, limit=per_page, offset=offset)
        tags = aliases_by_version(session)
        runs = list_runs(session, per_page, offset)
        # Every group each run read ({group: version}), not only its spine.
        read: dict[str, dict[str, int] | None] = dict(
            session.execute(
                select(PredictionRun.run_id, PredictionRun.feature_versions).where(
                    PredictionRun.run_id.in_([r["run_id"] for r in runs])
                )
            ).all()
        )
        pages = max(
            -(-(session.scalar(select(func.count()).select_from(table)) or 0) // per_page)
            for table in (FeatureVersion, ModelVersion, PredictionRun)
        )
    feature_rows = [
        [
            _e(f.group_name),
            _e(f.kind),
            f'<a href="features/{quote(f.group_name, safe="")}/{f.version}">v{f.version}</a>',
            _e(f.row_count),
            _e(f.partitions),
            f"{_e(f.min_date)} .. {_e(f.max_date)}",
            f"<small>{_e(f.dvc_md5)}</small>",
            _e(f.git_tag),
            _run_link(f.run_id),
        ]
        for f in features
    ]
    model_rows = [
        [
            _e(m.name),
            f'<a href="models/{quote(m.name, safe="")}/{m.version}">v{m.version}</a>',
            " ".join(
                f'<span class="alias">{_e(a)}</span>'
                for a in sorted(tags.get((m.name, m.version), []))
            ),
            _e(m.task),
            _e(m.metric),
            _metric(m.metrics.get(m.metric)),
            _group_versions(m.feature_versions or {m.feature_group: m.feature_version}),
            _versioned(m.label_group, m.label_version) if m.label_group else _e(m.label),
            _e(len(m.features)),
            f"{_e(m.train_start)} .. {_e(m.train_end)}",
            _run_link(m.run_id),
        ]
        for m in models
    ]
    run_rows = [
        [
            _run_link(r["run_id"]),
            _versioned(r["model_name"], r["model_version"]),
            _group_versions(read.get(r["run_id"]) or {})
            or _versioned(r["feature_group"], r["feature_version"]),
            _e(r["as_of_date"]),
            f'<span class="{_e(r["status"])}" title="{_e(r["error"] or "")}">{_e(r["status"])}</span>',
            _e(r["row_count"]),
            "<br>".join(_e(w["message"]) for w in r["warnings"]),
            _drift_link(r["run_id"], r["drift_breached"]),
        ]
        for r in runs
    ]
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fti</title>"
        f"<style>{STYLE}</style></head><body><h1>fti</h1>"
        "<p><a href='health'>Health</a>: is every group, label group and model fresh, "
        "and did a recent night fail?</p>"
        "<h2>Feature and label group versions</h2>"
        + _table(
            [
                "group",
                "kind",
                "version",
                "rows",
                "partitions",
                "dates",
                "DVC md5",
                "git tag",
                "run",
            ],
            feature_rows,
        )
        + "<h2>Model versions</h2><p>"
        + " ".join(
            f"<a href='models/{quote(n, safe='')}/metrics'>{_e(n)}: metrics over versions</a>"
            for n in sorted({m.name for m in models})
        )
        + "</p>"
        + _table(
            [
                "model",
                "version",
                "aliases",
                "task",
                "metric",
                "holdout value",
                "feature versions",
                "label version",
                "#",
                "training window",
                "run",
            ],
            model_rows,
        )
        + "<h2>Prediction runs</h2>"
        + _table(
            ["run", "model", "features", "as of", "status", "rows", "skew warnings", "drift"],
            run_rows,
        )
        + _pager(page, max(pages, 1), per_page)
        + "</body></html>"
    )


def _pager(page: int, pages: int, per_page: int) -> str:
    """Newer / older links: each section shows rows (page-1)*per_page .. page*per_page."""
    links = [f"page {page} of {pages}"]
    if page > 1:
        links.insert(0, f"<a href='?page={page - 1}&amp;per_page={per_page}'>&larr; newer</a>")
    if page < pages:
        links.append(f"<a href='?page={page + 1}&amp;per_page={per_page}'>older &rarr;</a>")
    return f"<p class='pager'>{' &middot; '.join(links)}</p>"


def _drift_link(run_id: str, breached: bool | None) -> str:
    if breached is None:
        return "&ndash;"
    href = f"drift?run_id={quote(run_id, safe='')}"
    label = '<span class="failed">breached</span>' if breached else "within thresholds"
    return f'<a href="{_e(href)}">{label}</a>'


@app.get("/drift", response_class=HTMLResponse)
def drift(run_id: str) -> HTMLResponse:
    """A prediction run's drift report: PSI per feature and training-vs-scored histograms."""
    from fti.db.engine import session_scope
    from fti.errors import FtiError
    from fti.monitoring.drift import Thresholds
    from fti.monitoring.report import drift_page
    from fti.params import load_params
    from fti.settings import get_settings

    settings = get_settings()
    thresholds = Thresholds.from_params(load_params(settings.params_file, "monitor"))
    with session_scope(settings.db_url) as session:
        try:
            return HTMLResponse(drift_page(session, run_id, thresholds))
        except FtiError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p>", status_code=404)


@app.get("/models/{name}/metrics", response_class=HTMLResponse)
def model_metrics(name: str) -> HTMLResponse:
    """A model's holdout metrics over its versions, as a chart and a table."""
    from fti.db.engine import session_scope
    from fti.errors import FtiError
    from fti.monitoring.report import metrics_page
    from fti.settings import get_settings

    with session_scope(get_settings().db_url) as session:
        try:
            return HTMLResponse(metrics_page(session, name))
        except FtiError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p>", status_code=404)


def _versioned(name: str | None, version: int | None) -> str:
    """``name vN``, or a dash for what a failed run never resolved."""
    return "&ndash;" if name is None or version is None else f"{_e(name)} v{_e(version)}"


def _group_versions(versions: dict[str, int]) -> str:
    """``group vN`` for each group a model version read, spine first."""
    return ", ".join(_versioned(group, version) for group, version in versions.items())


@app.get("/models/{name}/{version}", response_class=HTMLResponse)
def model_version(
    request: Request, name: str, version: int, user: User, event: int | None = None
) -> HTMLResponse:
    """One model version's full lineage (what `fti models show` prints), the champion with the
    forms that change it (for a user who may, see ``may_change_aliases``), its realized
    performance once labels landed (``report.realized_section``: the version and those scored
    on its dates) and the alias history.

    ``event`` is an alias change just made through a form (Post/Redirect/Get): the page says
    in one line what was recorded, read back from the history.
    """
    from fti.db.engine import session_scope
    from fti.errors import RegistryError
    from fti.monitoring.report import realized_section
    from fti.registry import aliases
    from fti.registry.versions import aliases_by_version, as_dict, get_version
    from fti.settings import get_settings

    with session_scope(get_settings().db_url) as session:
        try:
            row = get_version(session, name, version)
        except RegistryError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p>", status_code=404)
        lineage = as_dict(row, aliases_by_version(session, name).get((name, version)), full=True)
        events = {e.id: aliases.event_as_dict(e) for e in aliases.history(session, name)}
        champion = aliases.current(session, name, aliases.CHAMPION)
        served = last_served(session, name)
        realized = realized_section(session, name, version)
    facts = [
        [_e(key), _group_versions(value) if key == "feature_versions" and value else _e(value)]
        for key, value in lineage.items()
        if key != "run_id"
    ]
    facts.append(["run_id", _run_link(row.run_id)])
    history = [
        [
            _e(e["alias"]),
            _e(e["from_version"]),
            _e(e["to_version"]),
            _e(e["actor"]),
            _e(e["reason"]),
            _e(e["created_at"]),
        ]
        for e in events.values()
    ]
    done = events.get(event) if event is not None else None
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(name)} v{version}</title><style>{STYLE}</style></head><body>"
        f"<p><a href='../../'>&larr; fti</a></p><h1>{_e(name)} v{version}</h1>"
        + (f"<p class='note' role='status'>{_e(_recorded(done))}</p>" if done else "")
        + "<h2>Champion</h2>"
        + _serving_line(champion, served)
        + _champion_section(request, user, name, version, champion, list(events.values()))
        + "<h2>Lineage</h2>"
        + _table(["field", "value"], facts)
        + "<h2 id='realized'>Realized performance</h2>"
        + realized
        + "<h2>Alias history</h2>"
        + _table(["alias", "from", "to", "who", "why", "when"], history)
        + "</body></html>"
    )


def last_served(session: Session, name: str) -> tuple[int, datetime] | None:
    """The version ``fti serve`` last answered with for model ``name``, and when, from its
    request log (``served_predictions``); None when nothing was logged or the table is not
    there yet (a database before migration 0009)."""
    from sqlalchemy import DateTime, Integer, String, column, inspect, select, table

    if not inspect(session.connection()).has_table("served_predictions"):
        return None
    served = table(
        "served_predictions",
        column("model_name", String),
        column("model_version", Integer),
        column("served_at", DateTime(timezone=True)),
    )
    row = session.execute(
        select(served.c.model_version, served.c.served_at)
        .where(served.c.model_name == name)
        .order_by(served.c.served_at.desc())
        .limit(1)
    ).first()
    return (row[0], row[1]) if row else None


def _serving_line(champion: int | None, served: tuple[int, datetime] | None) -> str:
    """What the real-time service answers with: ``fti serve`` follows the champion alias."""
    target = f"v{champion}" if champion is not None else "none yet"
    line = f"<p class='serving'>Served by <code>fti serve</code>: champion &rarr; {target}"
    if served is not None:
        line += f"; last served: v{_e(served[0])} at {_e(served[1])}"
    return line + ".</p>"


def _recorded(event: dict[str, object]) -> str:
    was = f"v{event['from_version']}" if event["from_version"] is not None else "none"
    return (
        f"Recorded: {event['name']} {event['alias']} {was} -> v{event['to_version']} "
        f"by {event['actor']} ({event['reason']})."
    )


def _champion_section(
    request: Request,
    user: BaseUser,
    name: str,
    version: int,
    champion: int | None,
    events: list[dict[str, object]],
) -> str:
    """Who is champion; the forms only for a user who may change aliases: "Make champion" on
    any other version's page, "Roll back champion" on the champion's page when the champion
    has a previous holder to go back to."""
    from fti.registry.aliases import CHAMPION

    lines = [
        "<p>"
        + (
            f"No version of {_e(name)} is champion yet."
            if champion is None
            else f"v{champion} is champion" + (" (this version)." if champion == version else ".")
        )
        + "</p>"
    ]
    if not may_change_aliases(user, name):
        return "".join(lines)
    token = _form_token(request)
    reason = (
        f"<label>Reason <input name='reason' required maxlength='{MAX_REASON}' size='50' "
        "placeholder='why: recorded in the alias history'></label> "
    )
    hidden = f"<input type='hidden' name='token' value='{_e(token)}'>"
    if champion != version:
        lines.append(
            f"<form method='post' action='{version}/promote' class='alias-form'>"
            f"{hidden}{reason}<button type='submit'>Make champion</button></form>"
        )
    else:
        champion_events = [e for e in events if e["alias"] == CHAMPION]
        previous = champion_events[-1]["from_version"] if champion_events else None
        if previous is not None:
            lines.append(
                f"<form method='post' action='{version}/rollback' class='alias-form'>"
                f"{hidden}{reason}<button type='submit'>Roll back champion</button> "
                f"<small>to v{_e(previous)}, the version this one replaced; predictions "
                f"already written by v{version} stay until their dates are scored again "
                f"(<code>fti infer --model {_e(name)} --date D</code>)</small></form>"
            )
    return "".join(lines)


# ---- changing the champion from the page ------------------------------------------------------
MAX_REASON = 1000


class FormRefused(Exception):
    """A form post that changes nothing: answered with one line of HTML and the status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@app.exception_handler(FormRefused)
async def _refused(request: Request, exc: FormRefused) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'><title>fti: not changed</title>"
        f"<style>{STYLE}</style></head><body><p class='failed' role='alert'>{_e(exc)}</p>"
        f"<p><a href='../{quote(str(request.path_params.get('version', '')))}'>&larr; back</a></p>"
        "</body></html>",
        status_code=exc.status,
    )


def may_change_aliases(user: BaseUser, name: str) -> bool:
    """Whether ``user`` may point model ``name``'s aliases at another version.

    The auth manager decides, with its own check for what an alias change does: the champion
    alias is what the model's inference DAG (``{name}_inference``) scores with, so changing it
    is editing that DAG's behaviour: ``is_authorized_dag(method="PUT")`` on that DAG. With the
    FAB auth manager that is "can edit on DAGs" (roles User, Op, Admin; not Viewer) or "can
    edit" on that one DAG (per-DAG access control); with the simple auth manager the roles
    user, op and admin, not viewer. Airflow's other checks fit worse: ``is_authorized_view``
    (what viewing needs) is granted to every viewer, and ``is_authorized_custom_view`` is
    granted to every viewer by the simple auth manager whatever the method.
    """
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails

    return get_auth_manager().is_authorized_dag(
        method="PUT", details=DagDetails(id=f"{name}_inference"), user=user
    )


def _credential(request: Request) -> str:
    """The credential the request was authenticated with, as ``get_user`` picks it: an
    ``Authorization: Bearer`` header wins over the ``_token`` session cookie."""
    from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN

    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return request.cookies.get(COOKIE_NAME_JWT_TOKEN, "")


def _form_token(request: Request) -> str:
    """The per-form CSRF token: an HMAC of the session's credential with Airflow's
    ``[api] secret_key`` (shared by every api-server). A page of another site can neither read
    the credential (an http-only cookie) nor the key, so it cannot make the token."""
    from airflow.configuration import conf

    key = conf.get("api", "secret_key").encode()
    message = b"fti-alias-form\0" + _credential(request).encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _origin(url: str) -> str | None:
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


def _check_same_origin(request: Request) -> None:
    """Refuse a form posted from another origin: the browser's ``Origin`` (or, when it sends
    none, its ``Referer``) must be this Airflow's own origin, that of ``[api] base_url`` when it
    names one (what users browse, in front of any proxy), else the request's own host."""
    from airflow.api_fastapi import app as airflow_app

    own = _origin(airflow_app.API_BASE_URL) or _origin(str(request.base_url))
    sent = request.headers.get("origin")
    if not sent or sent == "null":
        sent = request.headers.get("referer")
    if not sent:
        raise FormRefused(403, "Refused: the form was posted without an Origin or Referer.")
    if _origin(sent) != own:
        raise FormRefused(403, "Refused: the form was posted from another site.")


def _check_form(request: Request, user: BaseUser, name: str, token: str) -> None:
    """What every alias-changing post must pass: the permission, then the CSRF checks."""
    if not may_change_aliases(user, name):
        raise FormRefused(403, "Forbidden: changing a model's champion needs edit rights on DAGs.")
    _check_same_origin(request)
    if not hmac.compare_digest(token.encode(), _form_token(request).encode()):
        raise FormRefused(
            403, "Refused: the form's token does not match your session; reload the page."
        )


def _reason(text: str) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise FormRefused(400, "Not changed: a reason is required; it goes into the alias history.")
    if len(reason) > MAX_REASON:
        raise FormRefused(400, f"Not changed: the reason is longer than {MAX_REASON} characters.")
    return reason


def _actor(user: BaseUser) -> str:
    """The Airflow user's name, as the auth manager gives it, for the alias history."""
    return (user.get_name() or user.get_id())[:200]


def _back(version: int, event: int) -> RedirectResponse:
    """Post/Redirect/Get: back to the version's page (relative, so under any base URL),
    which then shows the recorded change."""
    return RedirectResponse(f"../{version}?event={event}", status_code=303)


@app.post("/models/{name}/{version}/promote", response_class=HTMLResponse)
def promote(
    request: Request,
    name: str,
    version: int,
    user: User,
    reason: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Make ``version`` champion, recorded with the Airflow user's name and the reason: what
    ``fti models promote NAME VERSION --reason ...`` does (``aliases.set_alias``), without the
    training pipeline's metric gate (a person decides, as on the command line)."""
    from fti.db.engine import session_scope
    from fti.errors import RegistryError
    from fti.registry import aliases
    from fti.registry.versions import get_version, lock_model
    from fti.settings import get_settings

    _check_form(request, user, name, token)
    why = _reason(reason)
    with session_scope(get_settings().db_url, write=True) as session:
        lock_model(session, name)
        try:
            get_version(session, name, version)
        except RegistryError as exc:
            raise FormRefused(404, f"Not changed: {exc}") from exc
        if aliases.current(session, name, aliases.CHAMPION) == version:
            raise FormRefused(409, f"Not changed: {name} v{version} is already champion.")
        event = aliases.set_alias(session, name, aliases.CHAMPION, version, _actor(user), why)
        return _back(version, event.id)


@app.post("/models/{name}/{version}/rollback", response_class=HTMLResponse)
def roll_back(
    request: Request,
    name: str,
    version: int,
    user: User,
    reason: Annotated[str, Form()] = "",
    token: Annotated[str, Form()] = "",
) -> RedirectResponse:
    """Re-point champion from ``version`` to the version it replaced (``aliases.rollback``, what
    ``fti models rollback`` does), only while ``version`` is still champion: a form posted twice,
    or from a stale page, does not roll back a second time. Predictions are not re-scored here
    (that runs the model over every date, too long for a request): the page says how."""
    from fti.db.engine import session_scope
    from fti.errors import RegistryError
    from fti.registry import aliases
    from fti.registry.versions import lock_model
    from fti.settings import get_settings

    _check_form(request, user, name, token)
    why = _reason(reason)
    with session_scope(get_settings().db_url, write=True) as session:
        lock_model(session, name)
        held_by = aliases.current(session, name, aliases.CHAMPION)
        if held_by != version:
            now = f"v{held_by} is champion now" if held_by is not None else "it has no champion"
            raise FormRefused(
                409, f"Not changed: {name} v{version} is not champion ({now}); reload the page."
            )
        try:
            event = aliases.rollback(session, name, aliases.CHAMPION, _actor(user), why)
        except RegistryError as exc:
            raise FormRefused(409, f"Not changed: {exc}") from exc
        return _back(version, event.id)


@app.get("/features/{group}/{version}", response_class=HTMLResponse)
def feature_version(group: str, version: int) -> HTMLResponse:
    """One feature version: lineage, then each column's dtype and statistics."""
    from fti.db.engine import session_scope
    from fti.errors import FtiError
    from fti.settings import get_settings
    from fti.store.catalog import as_dict, get_version

    with session_scope(get_settings().db_url) as session:
        try:
            data = as_dict(get_version(session, group, version), full=True)
        except FtiError as exc:
            return HTMLResponse(f"<p>{_e(exc)}</p>", status_code=404)
    statistics = data.pop("statistics") or {}
    schema = data.pop("schema") or {}
    changed = data.pop("changed_dates") or []
    facts = [[_e(key), _e(value)] for key, value in data.items() if key != "run_id"]
    facts.append(
        [
            "changed dates",
            _e(f"{len(changed)}: {', '.join(changed[:5])}" + (" ..." if len(changed) > 5 else "")),
        ]
    )
    facts.append(["run_id", _run_link(data["run_id"])])
    columns = [
        [
            _e(name),
            _e(dtype),
            _e(stats.get("nulls")),
            _number(stats.get("min")),
            _number(stats.get("max")),
            _number(stats.get("mean")),
            _number((stats.get("quantiles") or {}).get("0.5")),
            _e(stats.get("distinct")),
            _e(", ".join(f"{k} ({v})" for k, v in list((stats.get("top") or {}).items())[:5])),
        ]
        for name, dtype in schema.items()
        for stats in [statistics.get(name, {})]
    ]
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(group)} v{version}</title><style>{STYLE}</style></head><body>"
        f"<p><a href='../../'>&larr; fti</a></p><h1>{_e(group)} v{version}</h1>"
        + _table(["field", "value"], facts)
        + "<h2>Columns</h2>"
        + _table(
            ["column", "dtype", "nulls", "min", "max", "mean", "median", "distinct", "most common"],
            columns,
        )
        + "</body></html>"
    )


def _number(value: object) -> str:
    return _e(f"{value:.4g}" if isinstance(value, float) else value)


def _metric(value: object) -> str:
    """A holdout metric's value (4 decimals), or a dash when the version has none."""
    if not isinstance(value, int | float):
        return "&ndash;"
    return _e(f"{value:.4f}")


# ---- platform health --------------------------------------------------------------------------
HEALTH_STYLE = (
    ".stale,.never,.below{color:#b42318;font-weight:bold} .fresh,.success,.ok{color:#05603a}"
    " .resolved{color:#627d98} code{white-space:pre} img{max-width:100%}"
)
NIGHTS_DEFAULT = 7  # fti.monitoring.health.NIGHTS (fti is not imported with the plugin)


@app.get("/health", response_class=HTMLResponse)
def health_page(
    request: Request, now: str | None = None, nights: int = Query(NIGHTS_DEFAULT, ge=1, le=366)
) -> HTMLResponse:
    """What `fti monitor health` says, as a page: the freshness of every feature group, label
    group and model (what catches up when one is late), the failures of the last ``nights``
    nights, charts of the rows read / quarantined and scored per night, and the pipelines' DAG
    runs of those nights from Airflow's REST API (``_dag_runs``): durations, retries, failed
    runs with their failed tasks.

    ``now`` (ISO; without offset: UTC) judges at another moment, as ``--now`` does.
    """
    from fti.db.engine import session_scope
    from fti.definitions import load_project
    from fti.monitoring.health import health, utc
    from fti.monitoring.realized import realized_rules
    from fti.settings import get_settings
    from fti.store.versions import FeatureStore

    try:
        moment = utc(datetime.fromisoformat(now)) if now else None
    except ValueError:
        return HTMLResponse(
            f"<p>{_e(repr(now))} is not an ISO date and time: use e.g. ?now=2026-05-01T06:00</p>",
            status_code=400,
        )
    settings = get_settings()
    project = load_project(settings.project)
    with session_scope(settings.db_url) as session:
        result = health(
            session,
            project,
            moment,
            nights,
            FeatureStore(settings.store_path),
            realized_rules(settings),
        )
        since = result.now.date() - timedelta(days=nights)
        nightly = _nightly(session, since, result.now.date())
    runs, missing = _dag_runs(request, settings, result.now, nights)
    return HTMLResponse(_health_html(result, nightly, runs, missing))


RUNS_TIMEOUT_SECONDS = 15.0  # the page waits this long for each request to the REST API


def _dag_runs(
    request: Request, settings: Any, now: datetime, nights: int
) -> tuple[Runs | None, str | None]:
    """The DAG runs of the project's pipelines (``fti.monitoring.runs``, what `fti monitor
    runs` reads) through the REST API of this api-server, as the viewing user: the request's
    own token (``_credential``: its Bearer header or the UI's session cookie) is sent on, so
    the user sees the runs Airflow lets them see. (None, one line saying why) when they
    cannot be read: the rest of the page does not depend on them."""
    import httpx

    from fti.errors import FtiError
    from fti.monitoring.runs import project_dags, read_runs

    try:
        dags = project_dags(settings)
        with httpx.Client(
            base_url=own_api_url(request),
            headers={"Authorization": f"Bearer {_credential(request)}"},
            timeout=RUNS_TIMEOUT_SECONDS,
        ) as client:
            runs = read_runs(
                client,
                dags,
                now,
                nights,
                url_setting="[api] base_url (AIRFLOW__API__BASE_URL)",
                credentials="log in to Airflow again",
            )
    except FtiError as exc:
        return None, _first_line(str(exc))
    return runs, None


def own_api_url(request: Request) -> str:
    """Where this api-server is reached, for the page's requests to its own REST API: ``[api]
    base_url`` when it names a host (what Airflow's UI uses too), else the host the request
    came to, under the base URL's path."""
    from airflow.api_fastapi import app as airflow_app

    if _origin(airflow_app.API_BASE_URL):
        return airflow_app.API_BASE_URL
    return f"{request.url.scheme}://{request.url.netloc}{airflow_app.API_ROOT_PATH}"


def _first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no reason given)"


def _nightly(session: Session, since: date, until: date) -> dict[str, Any]:
    """The validation runs and the prediction runs of the dates ``since`` .. ``until``."""
    from sqlalchemy import select

    from fti.db.tables import PredictionRun, ValidationRun

    validations = session.execute(
        select(
            ValidationRun.logical_date,
            ValidationRun.rows_read,
            ValidationRun.rows_quarantined,
            ValidationRun.run_id,
        )
        .where(ValidationRun.logical_date.between(since, until))
        .order_by(ValidationRun.logical_date, ValidationRun.id)
    ).all()
    predictions = session.scalars(
        select(PredictionRun)
        .where(PredictionRun.as_of_date.between(since, until))
        .order_by(PredictionRun.as_of_date, PredictionRun.model_name, PredictionRun.started_at)
    ).all()
    return {
        "dates": [since + timedelta(days=n) for n in range((until - since).days + 1)],
        "validations": validations,
        "predictions": predictions,
    }


def _realized_cells(status: RealizedStatus) -> list[str]:
    """A champion's realized row; the model links to its champion's page (the pictures)."""
    row = status.row()
    cells = ["&ndash;" if value is None else _e(value) for value in row.values()]
    if status.champion is not None:
        cells[0] = (
            f"<a href='models/{_e(status.model)}/{_e(status.champion)}#realized'>"
            f"{_e(status.model)}</a>"
        )
    cells[3] = f'<span class="{_e(status.status.replace(" ", "-"))}">{_e(status.status)}</span>'
    return cells


def _health_html(
    result: Health,
    nightly: dict[str, Any],
    runs: Runs | None = None,
    runs_missing: str | None = None,
) -> str:
    from fti.monitoring.health import REALIZED_COLUMNS
    from fti.monitoring.report import _img

    freshness = [
        [
            _e(f.kind),
            _e(f.name),
            f'<span class="{_e(f.status)}">{_e(f.status)}</span>',
            _e(f.newest_date) or "&ndash;",
            _e(f.expected_date) or "&ndash;",
            _e(f"{f.due_at:%Y-%m-%d %H:%M}") if f.due_at else "&ndash;",
            _e(f.age_hours) if f.age_hours is not None else "&ndash;",
            _e(f.days_behind) if f.days_behind and f.days_behind > 0 else "&ndash;",  # ahead: -1
            f"v{_e(f.version)}" if f.version is not None else "&ndash;",
            "<br>".join(f"<code>{_e(c)}</code>" for c in f.fill),
        ]
        for f in result.freshness
    ]
    recorded = {run.run_id: run.airflow_run_id for run in nightly["predictions"]}
    failures = [
        [
            _e(f.date),
            _e(f.kind.replace("_", " ")),
            _e(f.name),
            _airflow_run_link(f.run_id, recorded.get(f.run_id))
            if f.kind == "prediction_run"
            else _run_link(f.run_id),
            _e(f.reason),
            '<span class="resolved">resolved</span>'
            if f.resolved
            else '<span class="failed">unresolved</span>',
            "" if f.resolved else f"<code>{_e(_fix(f))}</code>",
        ]
        for f in result.failures
    ]
    read, quarantined, runs_of = _validation_nights(nightly)
    scored, predictions = _prediction_nights(nightly)
    dates: list[date] = nightly["dates"]
    problems = result.problems() + (runs.problems() if runs else [])
    verdict = (
        "<p class='fresh'>Healthy: everything is fresh and no failure is unresolved.</p>"
        if not problems and result.healthy
        else "<p class='failed' role='alert'>Unhealthy: "
        + _e(len(problems))
        + " problem(s), flagged below.</p>"
    )
    nights = result.nights
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>fti: health</title>"
        f"<style>{STYLE}{HEALTH_STYLE}</style></head><body>"
        "<p><a href='./'>&larr; fti</a></p><h1>Health</h1>"
        f"<form method='get' action='health'><label>At <input name='now' size='25' "
        f"value='{_e(result.now.isoformat())}'></label> <label>nights <input name='nights' "
        f"type='number' min='1' max='366' value='{nights}'></label> "
        "<button type='submit'>Judge</button> <a href='health'>now</a></form>"
        f"<p>Judged at {_e(f'{result.now:%Y-%m-%d %H:%M}')} UTC, as "
        f"<code>fti monitor health --now {_e(result.now.isoformat())} --nights {nights}</code>.</p>"
        + verdict
        + "<h2>Freshness</h2>"
        + _table(
            [
                "kind",
                "name",
                "status",
                "newest date",
                "expected date",
                "due at (UTC)",
                "age (hours)",
                "days behind",
                "version",
                "catch up with",
            ],
            freshness,
        )
        + "<h2>Realized performance of the champions</h2>"
        + "<p>Over the newest <code>monitor.realized.window_days</code> labelled dates, beside "
        + "the holdout figure; informs, never makes the page unhealthy.</p>"
        + _table(list(REALIZED_COLUMNS), [_realized_cells(r) for r in result.realized])
        + f"<h2>Failures of the last {nights} nights</h2>"
        + _table(
            ["date", "kind", "name", "run", "reason", "status", "what to do"],
            failures,
        )
        + f"<h2>Rows read and quarantined per night</h2>{_img(_read_chart(dates, read, quarantined))}"
        + _table(
            ["date", "rows read", "quarantined", "validation runs"],
            [
                [
                    _e(day),
                    _e(read[day]),
                    _e(quarantined[day]),
                    ", ".join(_run_link(r) for r in runs_of[day]),
                ]
                for day in dates
                if runs_of[day]
            ],
        )
        + f"<h2>Rows scored per model per night</h2>{_img(_scored_chart(dates, scored))}"
        + _table(["as of", "model", "status", "rows", "run"], predictions)
        + _runs_html(runs, runs_missing, nights)
        + "</body></html>"
    )


def _runs_html(runs: Runs | None, missing: str | None, nights: int) -> str:
    """The pipelines' DAG runs: a chart of their durations per night, the failed runs with
    their failed tasks, and every run, each linked to its Airflow page; or one line saying
    why they are missing."""
    from fti.monitoring.report import _img
    from fti.monitoring.runs import format_duration

    failed_heading = f"<h2>Failed DAG runs of the last {nights} nights</h2>"
    runs_heading = "<h2>Pipeline runs per night</h2>"
    if runs is None:
        why = f"<p class='failed' role='status'>DAG runs are not shown: {_e(missing)}</p>"
        return runs_heading + why + failed_heading + why
    minutes: dict[str, dict[date, float]] = {}
    for night in runs.per_night():
        minutes.setdefault(night.dag_id, {})[night.night] = night.duration / 60
    failed = [
        [
            _e(run.night),
            _e(run.dag_id),
            _airflow_run_link(f"{run.dag_id}/{run.run_id}", run.run_id),
            _e(", ".join(run.failed_tasks)) or "&ndash;",
            _e(run.retries),
            '<span class="resolved">resolved</span>'
            if run.resolved
            else '<span class="resolved">drift flagged</span>'
            if run.drift_flagged
            else '<span class="failed">unresolved</span>',
        ]
        for run in runs.runs
        if run.failed
    ]
    every = [
        [
            _e(run.night),
            _e(run.dag_id),
            _airflow_run_link(f"{run.dag_id}/{run.run_id}", run.run_id),
            _e(run.run_type),
            f'<span class="{_e(run.state)}">{_e(run.state)}</span>',
            _e(f"{run.start:%Y-%m-%d %H:%M:%S}") if run.start else "&ndash;",
            _e(format_duration(run.duration)) or "&ndash;",
            _e(run.retries),
            _e(", ".join(run.failed_tasks)),
        ]
        for run in runs.runs
    ]
    return (
        runs_heading
        + "<p>From Airflow's REST API: each run of the feature pipeline and of every model's "
        "training and inference DAG, in the night it processed; a night's duration adds up its "
        "runs.</p>"
        + _img(_bars_chart(runs.dates(), minutes, "minutes"))
        + _table(
            [
                "night",
                "pipeline",
                "run",
                "type",
                "state",
                "started (UTC)",
                "duration",
                "retries",
                "failed tasks",
            ],
            every,
        )
        + failed_heading
        + _table(["night", "pipeline", "run", "failed tasks", "retries", "status"], failed)
    )


def _fix(failure: Failure) -> str:
    """What to do about a failure: the part of its problem line after the reason."""
    return failure.problem().split(f": {failure.reason}; ", 1)[-1]


def _validation_nights(
    nightly: dict[str, Any],
) -> tuple[dict[date, int], dict[date, int], dict[date, list[str]]]:
    """Rows read and quarantined per logical date (a file that could not be read counts 0
    rows read), and the runs that validated each date's files."""
    read = dict.fromkeys(nightly["dates"], 0)
    quarantined = dict.fromkeys(nightly["dates"], 0)
    runs: dict[date, list[str]] = {day: [] for day in nightly["dates"]}
    for day, rows_read, rows_quarantined, run_id in nightly["validations"]:
        read[day] += rows_read or 0
        quarantined[day] += rows_quarantined or 0
        if run_id not in runs[day]:
            runs[day].append(run_id)
    return read, quarantined, runs


def _prediction_nights(
    nightly: dict[str, Any],
) -> tuple[dict[str, dict[date, int]], list[list[str]]]:
    """Rows scored per model and as-of date (a date scored again counts its latest
    successful run, whose slice replaced the earlier one), and a table row per run."""
    scored: dict[str, dict[date, int]] = {}
    rows = []
    for run in nightly["predictions"]:
        if run.status == "succeeded":
            scored.setdefault(run.model_name, {})[run.as_of_date] = run.row_count
        rows.append(
            [
                _e(run.as_of_date),
                _e(run.model_name),
                f'<span class="{_e(run.status)}" title="{_e(run.error or "")}">'
                f"{_e(run.status)}</span>",
                _e(run.row_count),
                _airflow_run_link(run.run_id, run.airflow_run_id),
            ]
        )
    return scored, rows


def _airflow_run_link(run_id: str, airflow_run_id: str | None) -> str:
    """A prediction run's id linked to the Airflow run fti recorded for it (a run of a mapped
    task carries a ``__N`` suffix its DAG run has not); a run from the CLI has none."""
    dag_id, _, _ = run_id.partition("/")
    if not airflow_run_id or not dag_id:
        return _e(run_id)
    href = f"/dags/{quote(dag_id, safe='')}/runs/{quote(airflow_run_id, safe='')}"
    return f'<a href="{_e(href)}" target="_top">{_e(run_id)}</a>'


def _read_chart(dates: list[date], read: dict[date, int], quarantined: dict[date, int]) -> Figure:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    places = list(range(len(dates)))
    ax.bar([p - 0.2 for p in places], [read[d] for d in dates], width=0.4, label="rows read")
    ax.bar(
        [p + 0.2 for p in places],
        [quarantined[d] for d in dates],
        width=0.4,
        color="#c0392b",
        label="quarantined",
    )
    _date_axis(ax, dates)
    ax.set_ylabel("rows")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _scored_chart(dates: list[date], scored: dict[str, dict[date, int]]) -> Figure:
    return _bars_chart(dates, dict(sorted(scored.items())), "rows scored")


def _bars_chart(dates: list[date], series: Mapping[str, Mapping[date, float]], unit: str) -> Figure:
    """One bar per series (model, pipeline) and date, side by side, in ``series``' order."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 2.8))
    ax = fig.subplots()
    width = 0.8 / max(len(series), 1)
    for n, (name, values) in enumerate(series.items()):
        ax.bar(
            [p - 0.4 + width * (n + 0.5) for p in range(len(dates))],
            [values.get(d, 0) for d in dates],
            width=width,
            label=name,
        )
    _date_axis(ax, dates)
    ax.set_ylabel(unit)
    if series:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _date_axis(ax: Axes, dates: list[date]) -> None:
    step = max(1, len(dates) // 15)  # at most ~15 labels
    ax.set_xticks(
        range(0, len(dates), step),
        [d.strftime("%m-%d") for d in dates[::step]],
        rotation=45,
        ha="right",
        fontsize=7,
    )


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
