"""The pages: each handler gathers a view model (``fti.pages.views``) and renders its template."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse

from fti.pages.auth import auth_of, current_user, form_token, may_change_aliases
from fti.pages.render import render
from fti.pages.views.common import Link, Page, Urls

router = APIRouter()
User = Annotated[Any, Depends(current_user)]
NIGHTS_DEFAULT = 7  # fti.monitoring.health.NIGHTS
RUNS_TIMEOUT_SECONDS = 15.0  # the health page waits this long for each request to the REST API
HOME = Link("fti", "./")


def urls(request: Request) -> Urls:
    return Urls(airflow_root=auth_of(request).root_path())


def not_found(request: Request, message: str, crumbs: list[Link] | None = None) -> HTMLResponse:
    page = Page("Not found", [HOME, *(crumbs or []), Link("not found", "")])
    return render(request, "error.html", 404, page=page, message=message)


@router.get("/", response_class=HTMLResponse)
def index(
    request: Request,
    page: int = Query(1, ge=1),
    per_page: int = Query(50, ge=1, le=500),
    project: str | None = None,
) -> HTMLResponse:
    """Every model's champion at a glance; feature and label group versions, model versions
    (each with its own metric and owner) and prediction runs, newest first, a page of each;
    ``project``: only what that project owns (fti.ownership)."""
    from fti.db.engine import session_scope
    from fti.pages.views.catalog import index as index_view
    from fti.settings import get_settings

    with session_scope(get_settings().db_url) as session:
        view = index_view(session, urls(request), page, per_page, project or None)
    return render(request, "index.html", page=Page("fti", [Link("fti", "")]), view=view)


@router.get("/features/{group}/{version}", response_class=HTMLResponse)
def feature_version(request: Request, group: str, version: int) -> HTMLResponse:
    """One feature or label group version: lineage, its columns' statistics, who used it."""
    from fti.db.engine import session_scope
    from fti.errors import FtiError
    from fti.pages.views.catalog import group_version
    from fti.settings import get_settings

    trail = [Link("feature groups", "./#groups"), Link(group, "")]
    with session_scope(get_settings().db_url) as session:
        try:
            view = group_version(session, group, version, urls(request))
        except FtiError as exc:
            return not_found(request, str(exc), trail)
    page = Page(f"{group} v{version}", [HOME, *trail, Link(f"v{version}", "")])
    return render(request, "group_version.html", page=page, view=view)


@router.get("/models/{name}/metrics", response_class=HTMLResponse)
def model_metrics(request: Request, name: str) -> HTMLResponse:
    """A model's holdout metrics over its versions, as charts and a table."""
    from fti.db.engine import session_scope
    from fti.errors import FtiError
    from fti.pages.views.models import model_metrics as metrics_view
    from fti.settings import get_settings

    trail = [Link("models", "./#models"), Link(name, "")]
    with session_scope(get_settings().db_url) as session:
        try:
            view = metrics_view(session, name, urls(request))
        except FtiError as exc:
            return not_found(request, str(exc), trail)
    page = Page(f"{name}: metrics over versions", [HOME, *trail, Link("metrics over versions", "")])
    return render(request, "model_metrics.html", page=page, view=view)


@router.get("/models/{name}/realized", response_class=HTMLResponse)
def model_realized(request: Request, name: str) -> HTMLResponse:
    """How a model's predictions turned out once their labels landed, every version."""
    from fti.db.engine import session_scope
    from fti.pages.views.monitoring import realized
    from fti.settings import get_settings

    trail = [Link("models", "./#models"), Link(name, "")]
    with session_scope(get_settings().db_url) as session:
        view = realized(session, name, urls(request))
    page = Page(f"{name}: realized performance", [HOME, *trail, Link("realized performance", "")])
    return render(request, "realized.html", page=page, view=view, urls=urls(request))


@router.get("/models/{name}/{version}", response_class=HTMLResponse)
def model_version(
    request: Request, name: str, version: int, user: User, event: int | None = None
) -> HTMLResponse:
    """One model version: holdout metrics, lineage (feature and label group versions as
    links), its features grouped by group, the champion with the forms that change it (for a
    user who may), its prediction runs, its realized performance and the alias history.

    ``event`` is an alias change just made through a form (Post/Redirect/Get): the page says
    in one line what was recorded, read back from the history.
    """
    from fti.db.engine import session_scope
    from fti.errors import RegistryError
    from fti.pages.views.models import model_version as version_view
    from fti.pages.views.monitoring import realized
    from fti.settings import get_settings

    trail = [Link("models", "./#models"), Link(name, "")]
    with session_scope(get_settings().db_url) as session:
        try:
            view = version_view(session, name, version, urls(request), event)
        except RegistryError as exc:
            return not_found(request, str(exc), trail)
        performance = realized(session, name, urls(request), version)
    editable = may_change_aliases(request, user, name)
    page = Page(f"{name} v{version}", [HOME, *trail, Link(f"v{version}", "")])
    return render(
        request,
        "model_version.html",
        page=page,
        view=view,
        realized=performance,
        token=form_token(auth_of(request), request) if editable else None,
    )


@router.get("/drift", response_class=HTMLResponse)
def drift(request: Request, run_id: str) -> HTMLResponse:
    """A prediction run's drift report: PSI per feature and training-vs-scored histograms."""
    from fti.db.engine import session_scope
    from fti.errors import FtiError
    from fti.monitoring.drift import Thresholds
    from fti.pages.views.monitoring import drift as drift_view
    from fti.params import load_params
    from fti.settings import get_settings

    settings = get_settings()
    thresholds = Thresholds.from_params(load_params(settings.params_file, "monitor"))
    with session_scope(settings.db_url) as session:
        try:
            view = drift_view(session, run_id, thresholds, urls(request))
        except FtiError as exc:
            return not_found(request, str(exc), [Link("prediction runs", "./#runs")])
    trail = [Link("models", "./#models"), Link(view.model_name, "")]
    if view.model_version is not None:
        trail.append(
            Link(
                f"v{view.model_version}",
                urls(request).model_version(view.model_name, view.model_version),
            )
        )
    page = Page(f"Drift of {run_id}", [HOME, *trail, Link(f"drift on {view.run.as_of_date}", "")])
    return render(request, "drift.html", page=page, view=view)


@router.get("/health", response_class=HTMLResponse)
def health(
    request: Request,
    now: str | None = None,
    nights: int = Query(NIGHTS_DEFAULT, ge=1, le=366),
    owner: str | None = Query(None, alias="project"),
) -> HTMLResponse:
    """What `fti monitor health` says, as a page: the freshness of every feature group, label
    group and model (what catches up when one is late), the champions' realized performance,
    the failures of the last ``nights`` nights, the rows read / quarantined and scored per
    night, and the pipelines' DAG runs of those nights from Airflow's REST API.

    ``now`` judges at another moment, as ``--now`` does: ``clock``, ``data`` (the newest raw
    date) or an ISO date and time (without offset: UTC); default: params.yaml's ``monitor.now``.
    Each group, model and failure shows its owner; ``project``: only what that project owns,
    as ``--project`` does (the nightly rows read and scored stay the whole platform's).
    """
    from fti.db.engine import session_scope
    from fti.definitions import load_project
    from fti.errors import FtiError
    from fti.monitoring.clock import judging_moment, past_data_hint
    from fti.monitoring.health import health as judge
    from fti.monitoring.health import with_owners
    from fti.monitoring.realized import realized_rules
    from fti.ownership import owners
    from fti.pages.views.health import health_page, nightly
    from fti.settings import get_settings
    from fti.store.versions import FeatureStore

    page = Page("Health", [HOME, Link("health", "")])
    settings = get_settings()
    project = load_project(settings.project)
    try:
        moment = judging_moment(now, settings, project)
    except (ValueError, FtiError) as exc:
        message = f"{exc}: use e.g. ?now=2026-05-01T06:00, ?now=clock or ?now=data"
        return render(request, "error.html", 400, page=page, message=message)
    with session_scope(settings.db_url) as session:
        result = judge(
            session,
            project,
            moment.at,
            nights,
            FeatureStore(settings.store_path),
            realized_rules(settings),
            moment.through,
        )
        result = with_owners(result, owners(session), owner or None)
        validations, predictions = nightly(
            session, result.now.date() - timedelta(days=nights), result.now.date()
        )
    runs, missing = dag_runs(request, settings, result.now, nights)
    hint = past_data_hint(moment, [f.days_behind for f in result.freshness])
    view = health_page(
        result, validations, predictions, urls(request), runs, missing, hint, owner or None
    )
    return render(request, "health.html", page=page, view=view)


def dag_runs(request: Request, settings: Any, now: datetime, nights: int) -> tuple[Any, str | None]:
    """The DAG runs of the project's pipelines (``fti.monitoring.runs``, what `fti monitor
    runs` reads) through the REST API of this server, as the viewing user: the request's own
    credential (its Bearer header or the UI's session cookie) is sent on, so the user sees the
    runs Airflow lets them see. (None, one line saying why) when they cannot be read: the rest
    of the page does not depend on them."""
    import httpx

    from fti.errors import FtiError
    from fti.monitoring.runs import project_dags, read_runs

    auth = auth_of(request)
    try:
        dags = project_dags(settings)
        with httpx.Client(
            base_url=auth.api_url(request),
            headers={"Authorization": f"Bearer {auth.credential(request)}"},
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
        return None, first_line(str(exc))
    return runs, None


def first_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0] if lines else "(no reason given)"
