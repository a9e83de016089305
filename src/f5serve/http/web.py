"""The web page at ``/`` and the API docs at ``/docs`` and ``/redoc``, all served from the package.

Every asset (the page's HTML, CSS and JavaScript modules, Swagger UI and ReDoc) lies under
``web/`` in this package, so the page and the docs work on a machine without network access.
The page talks to the server only through the public HTTP API.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

WEB_DIR = Path(__file__).parent / "web"
ASSETS = "/web"
FAVICON = f"{ASSETS}/favicon.svg"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", headers={"Cache-Control": "no-cache"})


@router.get("/docs")
async def swagger_ui(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_swagger_ui_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API",
        swagger_js_url=f"{root}{ASSETS}/vendor/swagger-ui/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS}/vendor/swagger-ui/swagger-ui.css",
        swagger_favicon_url=f"{root}{FAVICON}",
        swagger_ui_parameters={"validatorUrl": None},  # the default badge calls swagger.io
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    root = _root(request)
    return get_redoc_html(
        openapi_url=f"{root}{request.app.openapi_url}",
        title=f"{request.app.title} - API",
        redoc_js_url=f"{root}{ASSETS}/vendor/redoc/redoc.standalone.js",
        redoc_favicon_url=f"{root}{FAVICON}",
        with_google_fonts=False,
    )


def install_web(app: FastAPI) -> None:
    """Add the page, the docs and the static assets to ``app`` (created with ``docs_url=None``)."""
    app.include_router(router)
    app.mount(ASSETS, StaticFiles(directory=WEB_DIR), name="web")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")
