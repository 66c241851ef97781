"""Tokens and tenants: 401 without a valid token, 404 for another tenant's studies everywhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import running_service, wait_for_study

pytestmark = pytest.mark.ray

ALICE, BOB = {"Authorization": "Bearer tok-alice"}, {"Authorization": "Bearer tok-bob"}


@pytest.fixture(scope="module")
def url(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("tenancy")
    tokens = root / "tokens"
    tokens.write_text("# tenant:token\nalice:tok-alice\nbob:tok-bob\n")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}", data_dir=root / "data", api_tokens=f"@{tokens}"
    )
    with running_service(settings) as base:
        yield base


@pytest.fixture(scope="module")
def alice_study(url: str) -> dict[str, Any]:
    from tests.conftest import FAST_SPEC

    with httpx.Client(base_url=url, headers=ALICE, timeout=30) as http:
        created = http.post("/api/v1/studies", json={**FAST_SPEC, "name": "alice's"})
        assert created.status_code == 201, created.text
        return wait_for_study(http, created.json()["id"])


def id_routes(study_id: int) -> list[tuple[str, str]]:
    base = f"/api/v1/studies/{study_id}"
    return [
        ("GET", base),
        ("GET", f"{base}/trials"),
        ("GET", f"{base}/trials/0"),
        ("GET", f"{base}/best"),
        ("GET", f"{base}/events"),
        ("GET", f"{base}/history"),
        ("GET", f"{base}/importance"),
        ("GET", f"{base}/curves?top=1"),
        ("GET", f"{base}/best/checkpoint"),
        ("POST", f"{base}/stop"),
        ("POST", f"{base}/resume"),
        ("DELETE", base),
    ]


def test_another_tenant_gets_404_on_every_route_that_takes_an_id(
    url: str, alice_study: dict[str, Any]
) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        for method, path in id_routes(alice_study["id"]):
            response = http.request(method, path, headers=BOB)
            assert response.status_code == 404, (method, path, response.text)
            assert (
                response.json()["error"]["message"] == f"study {alice_study['id']} does not exist"
            )
        assert http.get(f"/api/v1/studies/{alice_study['id']}", headers=ALICE).status_code == 200


def test_lists_show_only_the_callers_studies(
    url: str, alice_study: dict[str, Any], make_spec: Callable[..., Any]
) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        bobs = http.post(
            "/api/v1/studies",
            json=make_spec(name="bob's", budget={"max_trials": 1, "max_epochs": 1}),
            headers=BOB,
        ).json()
        with httpx.Client(base_url=url, headers=BOB) as as_bob:
            wait_for_study(as_bob, bobs["id"])
        seen_by_bob = {s["id"] for s in http.get("/api/v1/studies", headers=BOB).json()["items"]}
        seen_by_alice = {
            s["id"] for s in http.get("/api/v1/studies", headers=ALICE).json()["items"]
        }
    assert (
        seen_by_bob == {bobs["id"]}
        and alice_study["id"] in seen_by_alice
        and bobs["id"] not in seen_by_alice
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer nope"},
        {"Authorization": "tok-alice"},
        {"Authorization": "Basic tok-alice"},
    ],
)
def test_a_missing_or_wrong_token_is_401_everywhere_but_healthz(
    url: str, alice_study: dict[str, Any], headers: dict[str, str]
) -> None:
    with httpx.Client(base_url=url, timeout=30) as http:
        routes = [
            *id_routes(alice_study["id"]),
            ("GET", "/api/v1/studies"),
            ("POST", "/api/v1/studies"),
            ("GET", "/api/v1/schema/study"),
            ("GET", "/readyz"),
            ("GET", "/metrics"),
        ]
        for method, path in routes:
            response = http.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.headers["www-authenticate"] == "Bearer"
        assert http.get("/healthz", headers=headers).status_code == 200


def test_malformed_tokens_fail_at_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be tenant:token"):
        Settings(api_tokens="alice", data_dir=tmp_path).tenants_by_token()


def test_the_openapi_document_declares_the_bearer_scheme_on_api_routes(url: str) -> None:
    document = httpx.get(f"{url}/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A token of HPO_API_TOKENS, when it is set.",
    }
    submit = document["paths"]["/api/v1/studies"]["post"]
    assert submit["security"] == [{"HTTPBearer": []}]
    assert document["paths"]["/metrics"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]
