"""GET /metrics with tenant tokens: a tenant sees its own series and an `others` total;
only the operator's HPO_METRICS_TOKEN sees every tenant by name."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service, wait_for_study

pytestmark = pytest.mark.ray

TOKENS = {"acme": "tok-acme", "globex": "tok-globex"}
OPERATOR_TOKEN = "tok-operator"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def url(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A service where both tenants have run a study, so both have series of their own."""
    root = tmp_path_factory.mktemp("metrics-tenancy")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        api_tokens=",".join(f"{t}:{token}" for t, token in TOKENS.items()),
        metrics_token=SecretStr(OPERATOR_TOKEN),
    )
    spec = {**FAST_SPEC, "budget": {"max_trials": 1, "max_epochs": 1, "parallelism": 1}}
    with running_service(settings) as base:
        for tenant, token in TOKENS.items():
            with httpx.Client(base_url=base, headers=bearer(token), timeout=30) as http:
                created = http.post("/api/v1/studies", json={**spec, "name": f"{tenant}-study"})
                assert created.status_code == 201, created.text
                wait_for_study(http, created.json()["id"])
        yield base


def tenant_slots(body: str) -> dict[str, float]:
    """`hpo_tenant_slots` by tenant label."""
    return {
        sample.labels["tenant"]: sample.value
        for family in text_string_to_metric_families(body)
        for sample in family.samples
        if sample.name == "hpo_tenant_slots"
    }


@pytest.mark.parametrize(("tenant", "other"), [("acme", "globex"), ("globex", "acme")])
def test_a_tenant_sees_its_own_series_and_others_but_no_other_name(
    url: str, tenant: str, other: str
) -> None:
    response = httpx.get(f"{url}/metrics", headers=bearer(TOKENS[tenant]), timeout=30)
    assert response.status_code == 200
    assert other not in response.text
    assert set(tenant_slots(response.text)) == {tenant, "others"}


def test_the_operator_token_sees_every_tenant(url: str) -> None:
    response = httpx.get(f"{url}/metrics", headers=bearer(OPERATOR_TOKEN), timeout=30)
    assert response.status_code == 200
    assert set(tenant_slots(response.text)) == set(TOKENS)


@pytest.mark.parametrize("headers", [{}, bearer("nope"), bearer(OPERATOR_TOKEN + "x")])
def test_no_token_or_a_wrong_one_is_401(url: str, headers: dict[str, str]) -> None:
    response = httpx.get(f"{url}/metrics", headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_the_operator_token_comes_from_its_variable_and_is_never_printed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPO_METRICS_TOKEN", OPERATOR_TOKEN)
    settings = Settings(data_dir=tmp_path)
    assert settings.metrics_token is not None
    assert settings.metrics_token.get_secret_value() == OPERATOR_TOKEN
    assert OPERATOR_TOKEN not in repr(settings) and OPERATOR_TOKEN not in str(settings)
    assert OPERATOR_TOKEN not in settings.model_dump_json()
