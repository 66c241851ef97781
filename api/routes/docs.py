"""`/docs` (Swagger UI) and `/redoc` (ReDoc) from files shipped in the package, not a CDN.

FastAPI's own pages load their scripts from a CDN, so that without internet they stay blank;
these are FastAPI's self-hosting recipe over the copies in `api/docs_assets/` (pinned
versions and licences in its README). Like the dashboard, the pages need no token: the
OpenAPI document is public, and every call made from them goes through the API's own checks.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse

router = APIRouter(include_in_schema=False)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "docs_assets"
ASSETS_URL = "/docs/assets"
VERSIONS = {"swagger-ui-dist": "5.36.0", "redoc": "2.5.4"}
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
# Only these are served: nothing else under the folder (licences, README) becomes a URL.
_ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
}
# Revalidate on every load (FileResponse's ETag makes that cheap), so an upgrade shows at once.
_HEADERS = {"Cache-Control": "no-cache"}


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Swagger UI over the OpenAPI document."""
    root = _root_path(request)
    return get_swagger_ui_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - Swagger UI",
        oauth2_redirect_url=root + OAUTH2_REDIRECT_URL,
        swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
        # Swagger UI's default sends the document's URL to an online validator for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    )


@router.get(OAUTH2_REDIRECT_URL)
def swagger_ui_oauth2_redirect() -> HTMLResponse:
    """Where an OAuth2 provider returns to Swagger UI."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """ReDoc over the OpenAPI document, with the system's fonts rather than Google's."""
    root = _root_path(request)
    return get_redoc_html(
        openapi_url=root + str(request.app.openapi_url),
        title=f"{request.app.title} - ReDoc",
        redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
        redoc_favicon_url=f"{root}{ASSETS_URL}/favicon-32x32.png",
        with_google_fonts=False,
    )


@router.get(ASSETS_URL + "/{name}")
def asset(name: str) -> FileResponse:
    """One of the pages' scripts, styles or icon; 404 for any other name."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise HTTPException(404, f"no docs asset {name!r}")
    return FileResponse(ASSETS_DIR / name, media_type=media_type, headers=_HEADERS)


def _root_path(request: Request) -> str:
    """The prefix a proxy serves the app under ('' when none), as FastAPI's own pages use it."""
    root: str = request.scope.get("root_path", "")
    return root.rstrip("/")
