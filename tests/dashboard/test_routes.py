"""The dashboard's routes without a browser: the shell, its files, Plotly, and nothing else."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from service.settings import Settings


class Client:
    """Requests straight to the app, without its lifespan: these routes need no database or Ray."""

    def __init__(self, app: FastAPI):
        self.app = app

    def get(self, path: str) -> httpx.Response:
        async def fetch() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://dash") as http:
                return await http.get(path)

        return asyncio.run(fetch())


@pytest.fixture
def client(tmp_path: Path) -> Client:
    return Client(create_app(Settings(data_dir=tmp_path, api_tokens="alice:tok-alice")))


@pytest.mark.parametrize("path", ["/", "/cluster", "/studies/3", "/studies/3/trials/7"])
def test_every_page_is_the_html_shell_and_needs_no_token(client: Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/static/app.js">' in response.text


def test_static_files_are_served_with_their_types(client: Client) -> None:
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")


def test_plotly_comes_from_the_installed_package(client: Client) -> None:
    response = client.get("/static/plotly.min.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert len(response.content) > 1_000_000 and b"plotly" in response.content[:2000].lower()


@pytest.mark.parametrize("name", ["nope.js", "..%2F..%2Fapp.py", "%2Fetc%2Fpasswd", ""])
def test_anything_outside_the_static_folder_is_404(client: Client, name: str) -> None:
    assert client.get(f"/static/{name}").status_code == 404


def test_the_dashboard_is_not_part_of_the_api_schema(client: Client) -> None:
    paths = client.app.openapi()["paths"]
    assert not [p for p in paths if p in ("/", "/cluster") or p.startswith(("/static", "/studies"))]
