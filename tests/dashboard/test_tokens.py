"""With HPO_API_TOKENS set, the dashboard asks for a token and shows that tenant's studies only."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service
from tests.dashboard.helpers import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.ray]

TOKENS = {"alice": "tok-alice", "bob": "tok-bob"}


@pytest.fixture(scope="module")
def tenants(
    ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, int]]]:
    """A service with tokens and one (stopped) study per tenant; yields its URL and each
    tenant's study id."""
    root = tmp_path_factory.mktemp("dashboard-tokens")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        api_tokens=",".join(f"{tenant}:{token}" for tenant, token in TOKENS.items()),
    )
    body = {**FAST_SPEC, "budget": {"max_trials": 1, "max_epochs": 1, "parallelism": 1}}
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        ids = {}
        for tenant, token in TOKENS.items():
            headers = {"Authorization": f"Bearer {token}"}
            created = http.post(
                "/api/v1/studies", json={**body, "name": f"{tenant}-study"}, headers=headers
            )
            assert created.status_code == 201, created.text
            ids[tenant] = created.json()["id"]
            http.post(f"/api/v1/studies/{ids[tenant]}/stop", headers=headers)  # no training needed
        yield url, ids


def test_the_page_asks_for_a_token_and_then_shows_that_tenants_studies_only(
    tenants: tuple[str, dict[str, int]], page: Any
) -> None:
    url, ids = tenants
    page.goto(url)
    page.locator("[data-testid=auth-panel]").wait_for()
    assert page.locator("[data-testid=study-row]").count() == 0
    screenshot(page, "token-prompt")

    page.locator("[data-testid=token-input]").fill(TOKENS["alice"])
    page.locator("[data-testid=token-submit]").click()
    page.locator(f"[data-testid=study-row][data-study-id='{ids['alice']}']").wait_for()
    rows = page.locator("[data-testid=study-row]")
    assert rows.evaluate_all("rows => rows.map(r => Number(r.dataset.studyId))") == [ids["alice"]]
    assert page.locator("[data-testid=auth-panel]").is_hidden()
    screenshot(page, "studies-with-token")

    page.reload()  # the token is kept in localStorage
    page.locator(f"[data-testid=study-row][data-study-id='{ids['alice']}']").wait_for()
    page.goto(f"{url}/studies/{ids['bob']}")  # another tenant's study is not found
    page.locator("[data-testid=error]").wait_for()
    assert "does not exist" in page.locator("[data-testid=error]").inner_text()

    page.goto(f"{url}/cluster")  # other tenants' usage is one row, never named
    page.locator("[data-testid=tenant-row][data-tenant=others]").wait_for()
    nodes = httpx.get(
        f"{url}/api/v1/cluster", headers={"Authorization": f"Bearer {TOKENS['alice']}"}
    ).json()["nodes"]
    assert page.locator("[data-testid=node-row]").count() == len(nodes)
    assert "bob" not in page.locator("[data-testid=view]").inner_text()


def test_a_wrong_token_is_asked_for_again(tenants: tuple[str, dict[str, int]], page: Any) -> None:
    url, _ = tenants
    page.goto(url)
    page.locator("[data-testid=token-input]").fill("not-a-token")
    page.locator("[data-testid=token-submit]").click()
    page.locator("#auth-error").wait_for()
    assert "refused" in page.locator("#auth-error").inner_text()
    assert page.locator("[data-testid=auth-panel]").is_visible()
