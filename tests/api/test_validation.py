"""Bad input gets a 422 that names the field, and nothing is stored."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml

pytestmark = pytest.mark.ray

BAD_SPACES: dict[str, tuple[dict[str, Any], str]] = {
    "unknown hyperparameter": ({"foo": {"type": "float", "low": 0, "high": 1}}, "space.foo"),
    "low above high": ({"lr": {"type": "float", "low": 0.5, "high": 0.1}}, "space.lr.high"),
    "log with low 0": (
        {"lr": {"type": "float", "low": 0.0, "high": 1, "log": True}},
        "space.lr.low",
    ),
    "log with low < 0": (
        {"hidden_units": {"type": "int", "low": -1, "high": 8, "log": True}},
        "space.hidden_units.low",
    ),
    "empty choices": (
        {"optimizer": {"type": "categorical", "choices": []}},
        "space.optimizer.choices",
    ),
    "unknown type": ({"lr": {"type": "gaussian", "low": 0, "high": 1}}, "space.lr.type"),
    "unknown optimizer among the choices": (
        {"optimizer": {"type": "categorical", "choices": ["adam", "lion"]}},
        "space.optimizer.choices",
    ),
    "dropout bound the worker refuses": (
        {"dropout": {"type": "float", "low": 0.1, "high": 1.5}},
        "space.dropout.high",
    ),
}


@pytest.fixture
def client(sqlite_service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_service_url, timeout=30) as http:
        yield http


def _assert_names_field(response: httpx.Response, field: str) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert field in [d["loc"] for d in error["details"]], error
    assert field in error["message"]


def _n_studies(client: httpx.Client) -> int:
    return len(client.get("/api/v1/studies", params={"limit": 1000}).json()["items"])


@pytest.mark.parametrize("case", list(BAD_SPACES))
def test_bad_space_is_422_naming_the_field_and_stores_nothing(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]], case: str
) -> None:
    space, field = BAD_SPACES[case]
    before = _n_studies(client)
    _assert_names_field(client.post("/api/v1/studies", json=make_spec(space=space)), field)
    assert _n_studies(client) == before


def test_max_trials_zero_is_422(client: httpx.Client, make_spec: Callable[..., Any]) -> None:
    response = client.post("/api/v1/studies", json=make_spec(budget={"max_trials": 0}))
    _assert_names_field(response, "budget.max_trials")
    assert _n_studies(client) == 0


def test_malformed_json_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/studies",
        content=b'{"name": "x", "space": {',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"].startswith("body")
    assert _n_studies(client) == 0


def test_malformed_yaml_is_422(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/studies", content=b"name: [unclosed", headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_request" and "YAML" in error["message"]
    assert [d["loc"] for d in error["details"]] == ["body"] and "line 1" in error["details"][0][
        "msg"
    ]
    assert _n_studies(client) == 0


def test_yaml_sent_without_a_content_type_is_told_to_say_so(client: httpx.Client) -> None:
    for headers in ({}, {"content-type": "text/plain"}):
        response = client.post("/api/v1/studies", content=b"name: plain\n", headers=headers)
        assert response.status_code == 422, response.text
        assert "Content-Type: application/yaml" in response.json()["error"]["details"][0]["msg"]


def test_messages_carry_no_pydantic_prefix(
    client: httpx.Client, make_spec: Callable[..., Any]
) -> None:
    bad = [make_spec(params={"dropout": 2.0}), make_spec(params={"rho": 0.9, "optimizer": "adam"})]
    for spec in bad:
        error = client.post("/api/v1/studies", json=spec).json()["error"]
        assert error["details"] and not any("Value error" in d["msg"] for d in error["details"]), (
            error
        )
        assert "Value error" not in error["message"]


def test_conditional_on_unknown_parent_is_422(
    client: httpx.Client, make_spec: Callable[..., Any]
) -> None:
    space = {
        "momentum": {"type": "float", "low": 0.5, "high": 0.9, "when": {"optimizer": ["momentum"]}}
    }
    response = client.post("/api/v1/studies", json=make_spec(space=space))
    assert response.status_code == 422
    assert "optimizer" in response.json()["error"]["message"]


def test_yaml_spec_is_accepted(client: httpx.Client, make_spec: Callable[..., Any]) -> None:
    body = yaml.safe_dump(make_spec(name="from-yaml", budget={"max_trials": 1, "max_epochs": 1}))
    response = client.post(
        "/api/v1/studies", content=body, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "from-yaml"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/studies/999",
        "/api/v1/studies/999/trials",
        "/api/v1/studies/999/best",
        "/api/v1/studies/999/trials/0",
    ],
)
def test_unknown_study_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 404
    assert "999" in response.json()["error"]["message"]


def test_stop_unknown_study_is_404(client: httpx.Client) -> None:
    assert client.post("/api/v1/studies/999/stop").status_code == 404


def test_bad_cursor_is_422(client: httpx.Client) -> None:
    response = client.get("/api/v1/studies", params={"cursor": "not-a-cursor"})
    assert response.status_code == 422


BATCH_NORM_ON_ONE_ROW: dict[str, tuple[dict[str, Any], dict[str, Any], list[str]]] = {
    "both fixed": (
        {},
        {"batch_size": 1, "batch_norm": True},
        ["params.batch_size", "params.batch_norm"],
    ),
    "1 among the choices": (
        {"batch_size": {"type": "categorical", "choices": [1, 32]}},
        {"batch_norm": True},
        ["space.batch_size.choices", "params.batch_norm"],
    ),
    "an int range from 1, batch norm searched": (
        {
            "batch_size": {"type": "int", "low": 1, "high": 64},
            "batch_norm": {"type": "categorical", "choices": [True, False]},
        },
        {},
        ["space.batch_size.low", "space.batch_norm.choices"],
    ),
    "batch norm searched": (
        {"batch_norm": {"type": "categorical", "choices": [False, True]}},
        {"batch_size": 1},
        ["params.batch_size", "space.batch_norm.choices"],
    ),
}


@pytest.mark.parametrize("case", list(BATCH_NORM_ON_ONE_ROW))
def test_batch_norm_with_one_row_batches_is_422_naming_both_fields(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]], case: str
) -> None:
    space, params, fields = BATCH_NORM_ON_ONE_ROW[case]
    spec = make_spec(space=space, params={"hidden_units": 32, **params})
    response = client.post("/api/v1/studies", json=spec)
    _assert_names_field(response, fields[0])
    assert fields[1] in response.json()["error"]["message"]
    assert _n_studies(client) == 0


def test_batch_norm_is_accepted_where_no_batch_has_one_row_by_choice(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    space = {
        "batch_size": {"type": "categorical", "choices": [1, 4], "when": {"batch_norm": [False]}},
        "batch_norm": {"type": "categorical", "choices": [True, False]},
    }
    for spec in (
        make_spec(space=space),
        make_spec(space={}, params={"batch_size": 4, "batch_norm": True}),
    ):
        created = client.post(
            "/api/v1/studies", json={**spec, "budget": {"max_trials": 1, "max_epochs": 1}}
        )
        assert created.status_code == 201, created.text
        client.post(f"/api/v1/studies/{created.json()['id']}/stop")


BAD_POPULATIONS: dict[str, tuple[dict[str, Any], dict[str, Any], str]] = {
    "model shape": ({"hidden_units": {"resample": True}}, {}, "population.mutations.hidden_units"),
    "batch size": ({"batch_size": {"resample": True}}, {}, "population.mutations.batch_size"),
    "not searched": (
        {"weight_decay": {"perturb": [0.8, 1.2]}},
        {},
        "population.mutations.weight_decay",
    ),
    "lr under a schedule": (
        {"lr": {"perturb": [0.8]}},
        {"params": {"lr_schedule": "cosine"}},
        "population.mutations.lr",
    ),
    "a pruner": ({"lr": {"perturb": [0.8]}}, {"pruner": {"type": "median"}}, "pruner.type"),
    "fewer slots than members": (
        {"lr": {"perturb": [0.8]}},
        {"budget": {"parallelism": 2}},
        "budget.parallelism",
    ),
}


@pytest.mark.parametrize("case", list(BAD_POPULATIONS))
def test_a_pbt_mutation_a_running_trial_cannot_make_is_422_naming_it(
    client: httpx.Client, case: str
) -> None:
    mutations, extra, field = BAD_POPULATIONS[case]
    spec = {
        "name": "pbt",
        "budget": {"max_epochs": 6},
        "space": {
            "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
            "hidden_units": {"type": "categorical", "choices": [32, 64]},
            "batch_size": {"type": "categorical", "choices": [32, 64]},
        },
        "population": {"size": 4, "interval_epochs": 2, "mutations": mutations},
    }
    for key, value in extra.items():
        spec[key] = {**spec.get(key, {}), **value}
    before = _n_studies(client)
    _assert_names_field(client.post("/api/v1/studies", json=spec), field)
    assert _n_studies(client) == before
    ok = {
        **spec,
        "population": {**spec["population"], "mutations": {"lr": {"perturb": [0.8]}}},
        "budget": {"max_epochs": 6},
        "params": {},
    }
    created = client.post("/api/v1/studies", json={k: v for k, v in ok.items() if k != "pruner"})
    assert created.status_code == 201, created.text
    body = created.json()["spec"]
    assert body["budget"]["max_trials"] == body["budget"]["parallelism"] == 4
    assert body["pruner"]["type"] == "none"
    client.post(f"/api/v1/studies/{created.json()['id']}/stop")
