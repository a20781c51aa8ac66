"""The fti pages as a FastAPI app: every route behind the login a :class:`PageAuth` checks.

``create_app(auth)`` is what the Airflow plugin mounts at ``/fti`` (with Airflow's auth
manager behind ``auth``). The app reads fti's database when a page is requested (never at
import), with the same settings (FTI_* environment variables) as the pipelines.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from fti.pages import forms, routes
from fti.pages.auth import FormRefused, LoginRequired, PageAuth, current_user

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"fti.css": "text/css", "fti.js": "text/javascript"}


def create_app(auth: PageAuth) -> FastAPI:
    """The pages, the forms that change a champion, the static files and the API docs, each
    route depending on :func:`fti.pages.auth.current_user` (FastAPI's own docs routes would
    skip the app's dependencies: they are served here instead)."""
    app = FastAPI(
        title="fti",
        description="Feature versions, models and prediction runs of fti",
        dependencies=[Depends(current_user)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.auth = auth
    app.include_router(routes.router)
    app.include_router(forms.router)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, exc: LoginRequired) -> RedirectResponse:
        return RedirectResponse(auth.login_url(request), status_code=303)

    @app.exception_handler(FormRefused)
    async def refused(request: Request, exc: FormRefused) -> HTMLResponse:
        return forms.refused_page(request, exc)

    @app.get("/static/{name}", include_in_schema=False)
    def static(name: str) -> FileResponse:
        if name not in STATIC_FILES:
            raise HTTPException(404, "Not Found")
        return FileResponse(
            STATIC / name, media_type=STATIC_FILES[name], headers={"Cache-Control": "max-age=300"}
        )

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

    return app
