"""`/docs` and `/redoc` in a real browser with every other host cut off, as without internet."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from service.settings import Settings
from tests.conftest import running_service
from tests.dashboard.helpers import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.ray]


@dataclass
class Offline:
    """A page that reaches only the service: other hosts' requests are aborted and recorded."""

    page: Any
    url: str
    elsewhere: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def url(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service with tokens configured: the docs must load without one all the same."""
    root: Path = tmp_path_factory.mktemp("docs")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        api_tokens="alice:tok-alice",
        prewarm_slots=False,
    )
    with running_service(settings) as base:
        yield base


@pytest.fixture
def offline(page: Any, url: str) -> Offline:
    seen = Offline(page, url)
    service = urlsplit(url).netloc

    def route(request_route: Any) -> None:
        if urlsplit(request_route.request.url).netloc == service:
            request_route.continue_()
        else:
            seen.elsewhere.append(request_route.request.url)
            request_route.abort()

    def answered(response: Any) -> None:
        if response.status >= 400:
            seen.failed.append(f"{response.status} {response.url}")

    page.context.route("**/*", route)
    page.on("response", answered)
    return seen


def test_swagger_ui_renders_the_operations_from_the_service_alone(offline: Offline) -> None:
    page = offline.page
    page.goto(f"{offline.url}/docs")
    page.locator(".opblock").first.wait_for()
    paths = page.locator(".opblock .opblock-summary-path").all_inner_texts()
    assert "/api/v1/studies" in [p.strip() for p in paths], paths
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("hpo-service")
    screenshot(page, "docs-swagger-ui")
    assert offline.elsewhere == [] and offline.failed == []


def test_redoc_renders_its_menu_with_operations_from_the_service_alone(offline: Offline) -> None:
    page = offline.page
    page.goto(f"{offline.url}/redoc")
    menu = page.locator(".menu-content")
    menu.locator("[data-item-id='tag/studies']").wait_for()  # the tags show, their items fold
    assert menu.locator("[data-item-id*='/operation/']").count() > 5
    assert menu.locator("[data-item-id$='/operation/submit_study']").count() == 1
    assert page.locator("[id$='/operation/submit_study'] h2").first.is_visible()
    assert page.locator("h1").first.inner_text().startswith("hpo-service")
    screenshot(page, "docs-redoc")
    assert offline.elsewhere == [] and offline.failed == []
