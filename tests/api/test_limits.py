"""Limits: body size (413), budget limits from settings (422), submissions per minute (429)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import running_service

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def url(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("limits")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        max_request_bytes=20_000,
        max_trials_limit=50,
        max_parallelism_limit=4,
        max_epochs_limit=100,
        studies_per_minute=3,
    )
    with running_service(settings) as base:
        yield base


def n_studies(http: httpx.Client) -> int:
    return len(http.get("/api/v1/studies", params={"limit": 1000}).json()["items"])


def test_a_body_over_the_limit_is_413_and_stores_nothing(
    url: str, make_spec: Callable[..., Any]
) -> None:
    spec = make_spec(name="x" * 10, initial_trials=[{"lr": 0.01}] * 2000)
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/api/v1/studies", json=spec)
        assert response.status_code == 413 and response.json()["error"]["code"] == "too_large"

        def chunks() -> Iterator[bytes]:
            for _ in range(100):
                yield b" " * 1000

        streamed = http.post(
            "/api/v1/studies", content=chunks(), headers={"content-type": "application/json"}
        )
        assert streamed.status_code == 413
        assert n_studies(http) == 0


@pytest.mark.parametrize(
    ("field", "value"), [("max_trials", 51), ("parallelism", 5), ("max_epochs", 101)]
)
def test_budgets_over_the_service_limits_are_422(
    url: str, make_spec: Callable[..., Any], field: str, value: int
) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        response = http.post("/api/v1/studies", json=make_spec(budget={field: value}))
        assert response.status_code == 422
        assert response.json()["error"]["details"] == [
            {"loc": f"budget.{field}", "msg": response.json()["error"]["message"]}
        ]
        assert n_studies(http) == 0


def test_a_tenant_submitting_too_fast_gets_429_with_retry_after(
    url: str, make_spec: Callable[..., Any]
) -> None:
    spec = make_spec(budget={"max_trials": 1, "max_epochs": 1})
    with httpx.Client(base_url=url, timeout=30) as http:
        codes = [http.post("/api/v1/studies", json=spec).status_code for _ in range(3)]
        refused = http.post("/api/v1/studies", json=spec)
        assert codes == [201, 201, 201] and refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 60
        assert "at most 3 studies a minute" in refused.json()["error"]["message"]
        assert n_studies(http) == 3
