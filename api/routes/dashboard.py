"""The web dashboard: one HTML shell, its static files and Plotly from the installed package.

The pages need no token: every piece of data comes from the JSON API, which checks it.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "dashboard" / "static"
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Revalidate on every load (ETag/Last-Modified make that cheap), so an upgrade shows at once.
_HEADERS = {"Cache-Control": "no-cache"}


@router.get("/")
def studies_page() -> FileResponse:
    """The studies page."""
    return _page()


@router.get("/studies/{study_id}")
def study_page(study_id: int) -> FileResponse:
    """A study's page (the shell; the browser routes and fetches the data)."""
    return _page()


@router.get("/studies/{study_id}/trials/{number}")
def trial_page(study_id: int, number: int) -> FileResponse:
    """A study's page with one trial's details open."""
    return _page()


@router.get("/cluster")
def cluster_page() -> FileResponse:
    """The cluster page: nodes, slots, tenants' usage and the queue."""
    return _page()


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    """Plotly's browser bundle from the installed `plotly` package: no CDN, no build step."""
    return _file(_plotly_bundle())


@router.get("/static/{name:path}")
def static_file(name: str) -> FileResponse:
    """A file of the dashboard's; 404 for anything outside its folder."""
    path = (STATIC_DIR / name).resolve()
    if not path.is_relative_to(STATIC_DIR) or not path.is_file():
        raise HTTPException(404, f"no dashboard file {name!r}")
    return _file(path)


def _page() -> FileResponse:
    return _file(STATIC_DIR / "index.html")


def _file(path: Path) -> FileResponse:
    return FileResponse(path, media_type=_MEDIA_TYPES.get(path.suffix), headers=_HEADERS)


@functools.cache
def _plotly_bundle() -> Path:
    """The path of plotly.min.js; RuntimeError when the plotly package lacks it."""
    bundle = resources.files("plotly") / "package_data" / "plotly.min.js"
    if not bundle.is_file():
        raise RuntimeError(f"the plotly package has no package_data/plotly.min.js at {bundle}")
    return Path(str(bundle))
