"""`/docs` and `/redoc` without a browser: they load only the package's own files."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from api.app import create_app
from api.routes.docs import ASSETS_DIR, VERSIONS
from service.settings import Settings
from tests.dashboard.test_routes import Client

# src=, href= and url: '...' (Swagger UI's and ReDoc's spec URL) in the pages' HTML.
_REFERENCE = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url:\s*["']([^"']+)["']""")
_SPEC_URL = re.compile(r"""spec-url\s*=\s*["']([^"']+)["']""")


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(create_app(Settings(data_dir=tmp_path, api_tokens="alice:tok-alice")))


def references(html: str) -> list[str]:
    found = [a or b for a, b in _REFERENCE.findall(html)] + _SPEC_URL.findall(html)
    return [url for url in found if not url.startswith("#")]


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_a_docs_page_references_only_same_origin_urls_that_answer(
    client: Client, page: str
) -> None:
    response = client.get(page)
    assert response.status_code == 200, response.text
    urls = references(response.text)
    assert "/openapi.json" in urls and any(u.endswith(".js") for u in urls), urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), url
        assert client.get(url).status_code == 200, url


def test_swagger_ui_asks_no_online_validator(client: Client) -> None:
    assert '"validatorUrl": null' in client.get("/docs").text


def test_the_oauth2_redirect_page_is_served(client: Client) -> None:
    response = client.get("/docs/oauth2-redirect")
    assert response.status_code == 200 and "oauth2" in response.text.lower()


@pytest.mark.parametrize(
    ("name", "media_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript"),
        ("swagger-ui.css", "text/css"),
        ("redoc.standalone.js", "text/javascript"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_assets_are_the_vendored_files_with_their_types(
    client: Client, name: str, media_type: str
) -> None:
    response = client.get(f"/docs/assets/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith(media_type)
    assert response.content == (ASSETS_DIR / name).read_bytes()


@pytest.mark.parametrize("name", ["README.md", "LICENSE.redoc", "..%2Fdocs.py", "nope.js"])
def test_nothing_else_is_an_asset(client: Client, name: str) -> None:
    assert client.get(f"/docs/assets/{name}").status_code == 404


def test_the_readme_beside_the_assets_names_the_pinned_versions() -> None:
    notes = (ASSETS_DIR / "README.md").read_text()
    for package, version in VERSIONS.items():
        assert f"`{package}@{version}`" in notes


def test_docs_routes_are_not_part_of_the_api_schema(client: Client) -> None:
    paths = client.app.openapi()["paths"]
    assert not [p for p in paths if p.startswith(("/docs", "/redoc"))]


def test_the_redoc_bundle_loads_no_logo_from_a_cdn() -> None:
    assert b"cdn.redoc.ly" not in (ASSETS_DIR / "redoc.standalone.js").read_bytes()
