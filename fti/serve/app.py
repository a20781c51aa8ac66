"""The scoring service: FastAPI routes over ``ModelHolder`` and ``score_entities``.

Routes: ``POST /models/{name}/predict``, ``POST /features/{group}`` (a feature group's online
rows, the records ``fti features get --json`` prints), ``GET /models/{name}``, ``GET /health``
(liveness, open), ``GET /ready`` (a model loaded, the online store reachable and holding its features),
``GET /metrics`` (Prometheus text). Every error answers ``{"error": "<one line>"}``; no stack
trace reaches a client (the service log has it, with the request id).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fti.definitions import Project, load_project
from fti.errors import ArtifactIntegrityError, FtiError, SkewError, StoreError
from fti.registry import aliases
from fti.serve.auth import require_token
from fti.serve.config import ServeConfig
from fti.serve.metrics import Metrics
from fti.serve.models import ModelHolder, Served, UnknownModelError
from fti.settings import Settings

log = logging.getLogger(__name__)


def _entity_text(value: Any) -> Any:
    """Entity keys are text; a JSON integer is accepted as its digits (not a bool or float)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


EntityKey = Annotated[
    str,
    BeforeValidator(_entity_text),
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
]


class EntitiesRequest(BaseModel):
    """``{"entities": ["494", "17"]}``: what ``POST /features/{group}`` reads."""

    model_config = ConfigDict(extra="forbid")

    entities: list[EntityKey] = Field(min_length=1)


class PredictRequest(EntitiesRequest):
    """``{"entities": ["494", "17"], "alias": "champion"}``: the alias is optional."""

    alias: str = Field(default=aliases.CHAMPION, pattern=r"^[A-Za-z0-9_.-]{1,100}$")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def status_of(exc: FtiError) -> int:
    """Unknown model or alias: 404. The model cannot be served now (features missing from the
    online store or of other dtypes, a bad artifact): 503."""
    if isinstance(exc, UnknownModelError):
        return 404
    if isinstance(exc, SkewError | StoreError | ArtifactIntegrityError):
        return 503
    return 500


def one_line(exc: RequestValidationError) -> str:
    """A request's validation errors as one line: where and what, at most three of them."""
    parts = []
    for problem in exc.errors()[:3]:
        where = ".".join(str(p) for p in problem.get("loc", ()) if p != "body")
        if problem.get("type") == "json_invalid":
            parts.append("the body is not valid JSON")
        else:
            parts.append(f"{where or 'body'}: {problem.get('msg', 'invalid')}")
    more = len(exc.errors()) - len(parts)
    return "malformed request: " + "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


class Metered:
    """Pure ASGI middleware: counts and times every request by route, and turns an unexpected
    exception into a one-line 500 (the traceback goes to the log only)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        started = False

        async def sending(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception:  # noqa: BLE001 - the client gets one line, the log the traceback
            request_id = uuid.uuid4().hex
            log.exception("request %s to %s failed", request_id, scope.get("path"))
            status = 500
            if not started:
                response = error(
                    500, f"internal error; the service log has the details (request {request_id})"
                )
                await response(scope, receive, send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(route, scope.get("method", ""), str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            if status >= 400:
                self.metrics.errors.labels(route, str(status)).inc()


def create_app(
    settings: Settings,
    config: ServeConfig,
    project: Project | None = None,
    today: Callable[[], date] | None = None,
) -> FastAPI:
    """The service for ``settings``' database and project; ``today`` is the day staleness is
    judged on, asked per request (default: as params.yaml's ``monitor.now`` says, else the UTC
    date; fti.monitoring.clock.serving_day)."""
    from fti.monitoring.clock import serving_day
    from fti.serve.scoring import score_entities

    project = project or load_project(settings.project)
    metrics = Metrics()
    clock = today or serving_day(None, settings, project)

    def on_swap(served: Served) -> None:
        metrics.model_version.labels(served.name, served.alias).set(served.version)

    holder = ModelHolder(settings.db_url, project, config.poll_seconds, on_swap)
    request_log = None
    if config.log:
        from fti.serve.log import RequestLog

        request_log = RequestLog(settings.db_url, metrics)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        holder.load_champions()
        holder.start()
        if request_log is not None:
            request_log.start()
        try:
            yield
        finally:
            holder.stop()
            if request_log is not None:
                request_log.stop()

    app = FastAPI(
        title="fti scoring service",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.config = config
    app.state.holder = holder
    app.state.metrics = metrics
    app.add_middleware(Metered, metrics=metrics)
    protected = [Depends(require_token)]

    def too_many(entities: list[str]) -> JSONResponse | None:
        if len(entities) <= config.max_entities:
            return None
        return error(
            413,
            f"{len(entities)} entities in one request; at most {config.max_entities} "
            "(FTI_SERVE_MAX_ENTITIES): split the request",
        )

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return error(exc.status_code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error(422, one_line(exc))

    @app.exception_handler(FtiError)
    async def fti_error(_: Request, exc: FtiError) -> JSONResponse:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        return error(status_of(exc), text or type(exc).__name__)

    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        log.error("database error: %s", exc)
        return error(503, "fti's database (the registry and online store) is not answering")

    @app.get("/health")
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/ready", dependencies=protected)
    def ready() -> JSONResponse:
        """Readiness: at least one model loaded; the online store answers and holds, with the
        trained dtypes, every feature of every served model."""
        from fti.serve.scoring import check_online

        served = holder.served()
        problems = [] if served else ["no model is loaded (has any model a champion?)"]
        models = {}
        for one in served:
            try:
                versions = check_online(one, settings.db_url)
            except FtiError as exc:
                problems.append(str(exc))
                versions = None
            models[f"{one.name}@{one.alias}"] = {
                "model_version": one.version,
                "feature_versions": versions,
            }
        body = {
            "ready": not problems,
            "models": models,
            "problems": problems,
            "not_served": holder.failures(),
        }
        return JSONResponse(body, status_code=200 if not problems else 503)

    @app.get("/metrics", dependencies=protected)
    def prometheus() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/models/{name}", dependencies=protected)
    def model(name: str) -> dict[str, Any]:
        """What the service serves of ``name``: each followed alias, its version and lineage."""
        served = [s for s in holder.served() if s.name == name]
        if not served:
            served = [holder.get(name, aliases.CHAMPION)]
        return {
            "model": name,
            "served": {
                s.alias: {
                    "model_version": s.version,
                    "loaded_at": s.loaded_at.isoformat(),
                    "lineage": s.lineage,
                }
                for s in served
            },
        }

    @app.post("/models/{name}/predict", dependencies=protected)
    def predict(name: str, body: PredictRequest) -> JSONResponse:
        refused = too_many(body.entities)
        if refused is not None:
            return refused
        request_id = uuid.uuid4().hex
        served = holder.get(name, body.alias)  # one snapshot for the whole request
        result = score_entities(
            served, settings.db_url, body.entities, clock(), config.stale == "refuse"
        )
        for outcome, count in result.counts.items():
            if count:
                metrics.entities.labels(name, outcome).inc(count)
        for age in result.ages:
            metrics.feature_age.labels(name).observe(age)
        if request_log is not None:
            request_log.add(served, request_id, result.predictions)
        return JSONResponse(
            {
                "request_id": request_id,
                "model": name,
                "model_version": served.version,
                "predictions": result.predictions,
            },
            headers={"X-Request-ID": request_id},
        )

    feature_groups = {g.name: g for g in project.readable_groups if g.kind == "features"}

    @app.post("/features/{group}", dependencies=protected)
    def features(group: str, body: EntitiesRequest) -> JSONResponse:
        """The online rows of ``body.entities`` of a feature group: one record per entity in
        the request's order, exactly what ``fti features get GROUP ... --json`` prints."""
        from fti.online.store import online_records

        refused = too_many(body.entities)
        if refused is not None:
            return refused
        if group not in feature_groups:
            labels = [g.name for g in project.readable_groups if g.kind == "labels"]
            what = "a label group (labels are not served online)" if group in labels else "unknown"
            return error(
                404,
                f"feature group {group!r} is {what}; this service serves: "
                f"{', '.join(feature_groups) or 'none'}",
            )
        version, rows = online_records(settings.db_url, group, body.entities)
        if version is None:
            return error(
                404,
                f"no version of {group} is online: publish one (`fti features run`) or run "
                f"`fti features materialise --group {group}`",
            )
        missing = sum(1 for r in rows if not r["found"])
        for outcome, count in (("found", len(rows) - missing), ("not_found", missing)):
            if count:
                metrics.feature_entities.labels(group, outcome).inc(count)
        return JSONResponse({"group": group, "version": version, "rows": rows})

    return app
