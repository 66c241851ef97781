"""Hostile bodies against the live service: each is refused with a clear 422 that names
its field, nothing is stored, and the service keeps answering everyone else."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from api import yaml_route

pytestmark = pytest.mark.ray

YAML = {"content-type": "application/yaml"}
# "Billion laughs": nine levels of nine aliases, about 400 bytes that expand to 9**9 strings.
BOMB = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
)


@pytest.fixture
def http(sqlite_service_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sqlite_service_url, timeout=60) as client:
        yield client


def n_studies(http: httpx.Client) -> int:
    return len(http.get("/api/v1/studies").json()["items"])


def refused(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == "invalid_request" and error["details"], error
    return error


def test_an_alias_bomb_is_refused_and_nothing_is_stored(http: httpx.Client) -> None:
    assert len(BOMB) < 600
    error = refused(http.post("/api/v1/studies", content=BOMB, headers=YAML))
    assert "aliases" in error["message"] and error["details"][0]["loc"] == "body"
    assert n_studies(http) == 0
    assert http.get("/healthz").status_code == 200


def test_deep_nesting_is_refused_in_yaml_and_json(http: httpx.Client) -> None:
    deep_yaml = "name: deep\nparams: " + "[" * 5_000 + "]" * 5_000
    assert (
        "nests at most"
        in refused(http.post("/api/v1/studies", content=deep_yaml, headers=YAML))["message"]
    )
    deep_json = '{"name": "deep", "params": ' + "[" * 100_000 + "]" * 100_000 + "}"
    refused(
        http.post(
            "/api/v1/studies", content=deep_json, headers={"content-type": "application/json"}
        )
    )
    assert n_studies(http) == 0


def test_a_large_yaml_body_is_parsed_off_the_event_loop(
    http: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse of a YAML body waits, once begun, until /healthz has answered: parsed on
    the event loop, it would hold still the loop that has to answer, and give up."""
    parsing, healthy = threading.Event(), threading.Event()
    stuck: list[bool] = []
    parse = yaml_route._yaml_to_json

    def parse_once_healthz_answers(raw: bytes) -> bytes:
        parsing.set()
        # The timeout only ends a wait that would otherwise never end; it measures nothing.
        stuck.append(not healthy.wait(timeout=30))
        return parse(raw)

    monkeypatch.setattr(yaml_route, "_yaml_to_json", parse_once_healthz_answers)
    # Legal YAML of ~90,000 values, refused after the parse: over 1000 initial configs.
    body = "name: big\ninitial_trials: [" + ", ".join(["{}"] * 45_000) + "]\n"
    responses: list[httpx.Response] = []

    def post() -> None:
        with httpx.Client(base_url=str(http.base_url), timeout=120) as other:
            responses.append(other.post("/api/v1/studies", content=body, headers=YAML))

    poster = threading.Thread(target=post)
    poster.start()
    try:
        assert parsing.wait(timeout=60), "the YAML body was never parsed"
        health = http.get("/healthz")  # while the parse is still under way
        healthy.set()
    finally:
        healthy.set()
        poster.join()
    assert health.status_code == 200
    assert stuck == [False], "the YAML body was parsed on the event loop"
    assert refused(responses[0])["details"][0]["loc"] == "initial_trials"


NUMBERS: list[tuple[str, dict[str, Any], str]] = [
    ("bound", {"space": {"lr": {"type": "float", "low": "NaN", "high": 0.1}}}, "space.lr.low"),
    (
        "bound",
        {"space": {"lr": {"type": "float", "low": 0.01, "high": "Infinity"}}},
        "space.lr.high",
    ),
    (
        "step",
        {"space": {"lr": {"type": "float", "low": 0.01, "high": 0.1, "step": "NaN"}}},
        "space.lr.step",
    ),
    ("budget", {"budget": {"timeout_s": "Infinity"}}, "budget.timeout_s"),
    ("target", {"budget": {"target": "NaN"}}, "budget.target"),
    ("split", {"split": {"validation": "NaN"}}, "split.validation"),
    ("pruner", {"pruner": {"type": "percentile", "percentile": "NaN"}}, "pruner.percentile"),
    ("early stopping", {"early_stopping": {"min_delta": "-Infinity"}}, "early_stopping.min_delta"),
    ("resources", {"resources": {"cpus_per_trial": "NaN"}}, "resources.cpus_per_trial"),
    ("huge", {"budget": {"max_trials": 10**30}}, "budget.max_trials"),
    # Found by the fuzzer: 9e307 CPUs overflowed the scheduler's resource units (a 500).
    ("huge cpus", {"resources": {"cpus_per_trial": 9.06e307}}, "resources.cpus_per_trial"),
    ("tiny gpus", {"resources": {"gpus_per_trial": 1e-9}}, "resources.gpus_per_trial"),
]


@pytest.mark.parametrize(("what", "override", "field"), NUMBERS, ids=[n[0] for n in NUMBERS])
def test_nan_infinite_and_huge_numbers_are_refused_naming_the_field(
    http: httpx.Client,
    make_spec: Callable[..., dict[str, Any]],
    what: str,
    override: dict[str, Any],
    field: str,
) -> None:
    # Sent as JSON's non-standard NaN and Infinity literals, as Python's json writes them.
    spec = make_spec(**override)
    text = json.dumps(spec).replace('"NaN"', "NaN").replace('"Infinity"', "Infinity")
    text = text.replace('"-Infinity"', "-Infinity")
    response = http.post(
        "/api/v1/studies", content=text, headers={"content-type": "application/json"}
    )
    error = refused(response)
    assert [d["loc"] for d in error["details"]] == [field], error
    assert n_studies(http) == 0


def test_a_resume_with_a_nan_budget_is_refused(http: httpx.Client) -> None:
    response = http.post(
        "/api/v1/studies/1/resume",
        content='{"budget": {"timeout_s": NaN}}',
        headers={"content-type": "application/json"},
    )
    assert refused(response)["details"][0]["loc"] == "budget.timeout_s"
