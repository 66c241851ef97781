"""Search features through the HTTP API on a live service with a real local Ray."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def client(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url, timeout=30) as http:
        yield http


def submit_and_wait(client: httpx.Client, spec: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 201, response.text
    return wait_for_study(client, response.json()["id"])


def dominates(a: list[float], b: list[float], signs: list[float]) -> bool:
    pairs = [(x * s, y * s) for x, y, s in zip(a, b, signs, strict=True)]
    return all(x <= y for x, y in pairs) and any(x < y for x, y in pairs)


def test_two_objectives_give_a_non_dominated_front_and_still_prune(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="accuracy-vs-size",
        objective=[{"metric": "val_accuracy"}, {"metric": "n_params"}],
        prune_on="val_accuracy",
        space={
            "hidden_units": {"type": "int", "low": 4, "high": 128, "log": True},
            "lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
        },
        params={"optimizer": "adam"},
        sampler={"type": "nsga2", "seed": 0, "population_size": 6},
        pruner={"type": "median", "n_startup_trials": 3},
        budget={"max_trials": 14, "max_epochs": 6, "parallelism": 2},
    )
    study = submit_and_wait(client, spec)
    assert study["state"] == "completed", study
    assert [o["direction"] for o in study["spec"]["objective"]] == ["maximize", "minimize"]
    assert study["counts"]["pruned"] > 0
    trials = client.get(f"/api/v1/studies/{study['id']}/trials", params={"limit": 100}).json()[
        "items"
    ]
    complete = [t for t in trials if t["state"] == "complete"]
    front = client.get(f"/api/v1/studies/{study['id']}/best", params={"k": 100}).json()["items"]
    signs = [-1.0, 1.0]
    assert front and all(len(t["values"]) == 2 for t in front)
    front_numbers = {t["number"] for t in front}
    for member in front:
        assert not any(dominates(t["values"], member["values"], signs) for t in complete)
    for other in complete:
        if other["number"] not in front_numbers:
            assert any(dominates(m["values"], other["values"], signs) for m in front)
    for t in complete:
        assert (
            t["values"][1]
            == t["params"]["hidden_units"] * 64
            + t["params"]["hidden_units"]
            + t["params"]["hidden_units"] * 10
            + 10
        )


def test_resume_extends_a_finished_study_over_http(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    study = submit_and_wait(
        client, make_spec(name="resumable", budget={"max_trials": 2, "max_epochs": 2})
    )
    response = client.post(
        f"/api/v1/studies/{study['id']}/resume", json={"budget": {"max_trials": 5}}
    )
    assert response.status_code == 202, response.text
    resumed = wait_for_study(client, study["id"])
    assert resumed["state"] == "completed" and resumed["spec"]["budget"]["max_trials"] == 5
    assert sum(resumed["counts"][s] for s in ("complete", "pruned", "failed")) == 5
    again = client.post(f"/api/v1/studies/{study['id']}/resume", json={"budget": {"max_trials": 5}})
    assert (
        again.status_code == 422 and "must exceed the 5 trials" in again.json()["error"]["message"]
    )
    bad = client.post(f"/api/v1/studies/{study['id']}/resume", json={"budget": {"max_trials": 0}})
    assert bad.status_code == 422
    assert client.post("/api/v1/studies/9999/resume").status_code == 404


def test_target_ends_a_study_early_over_http(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="target",
        params={"hidden_units": 64, "optimizer": "adam", "lr": 0.01},
        space={"batch_size": {"type": "categorical", "choices": [32, 64]}},
        budget={"max_trials": 40, "max_epochs": 10, "target": 0.9},
    )
    study = submit_and_wait(client, spec)
    assert (study["state"], study["state_reason"]) == ("completed", "target_reached")
    assert study["best"]["value"] >= 0.9
    assert sum(study["counts"].values()) < 40


def test_the_spec_schema_is_served(client: httpx.Client) -> None:
    schema = client.get("/api/v1/schema/study").json()
    assert {
        "name",
        "space",
        "params",
        "objective",
        "prune_on",
        "initial_trials",
        "sampler",
        "pruner",
        "budget",
    } <= set(schema["properties"])
    assert schema["required"] == ["name"]
    samplers = schema["$defs"]["GridSamplerSpec"]["properties"]
    assert "grid" in samplers


def test_a_sampler_fallback_is_reported_as_a_warning(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    response = client.post(
        "/api/v1/studies",
        json=make_spec(
            name="cma", sampler={"type": "cmaes"}, budget={"max_trials": 1, "max_epochs": 1}
        ),
    )
    assert response.status_code == 201
    assert "['batch_size', 'optimizer'] are drawn at random" in response.json()["warnings"][0]
    wait_for_study(client, response.json()["id"])


def test_cmaes_with_two_objectives_is_refused(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        sampler={"type": "cmaes"}, objective=[{"metric": "val_accuracy"}, {"metric": "n_params"}]
    )
    response = client.post("/api/v1/studies", json=spec)
    assert (
        response.status_code == 422
        and "supports one objective" in response.json()["error"]["message"]
    )
