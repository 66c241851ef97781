"""Fuzz every operation of the OpenAPI document with schemathesis: no 5xx, and every
response's status code and body are ones the document promises.

One live service on SQLite serves the whole module. Two small studies run to the end
first, so that study ids 1 and 2 (with trials 0 and 1) exist and the read routes answer
with real data as well as with 404s and 422s; generated path parameters are steered
towards them. Generated specs that pass validation really start studies on Ray, so their
budgets are cut to one trial of one epoch before sending, and every study that gets
created or resumed is stopped at once.

A list that takes a cursor gets forged cursors in half its cases (tests/storage/
hostile_cursors.py): huge, negative and mistyped keys in the real encoding.

Each operation runs schemathesis' examples and fuzzing phases (MAX_EXAMPLES fuzzed cases,
200 unless HPO_FUZZ_EXAMPLES says otherwise, positive and negative), derandomized so that
CI runs are repeatable.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from api.app import create_app
from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service, wait_for_study
from tests.storage.hostile_cursors import hostile_cursors

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# A few hundred cases per operation: 300 found 500s that 100 missed (curves, events);
# 200 keeps the module near 3 minutes here. Raise HPO_FUZZ_EXAMPLES for a deeper run.
MAX_EXAMPLES = int(os.environ.get("HPO_FUZZ_EXAMPLES", "200"))
# Also bounds a read of an events stream, which ends once its study has ended.
REQUEST_TIMEOUT_S = 30
CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance]
# Budget fields that size a study's work, and the most a generated spec may ask for.
CHEAP_BUDGET = {"max_trials": 1, "max_epochs": 1, "parallelism": 1}
# Path parameter values that name things the fixture creates.
SEEDED_STUDIES = (1, 2)
KNOWN_PATH_VALUES = {"study_id": list(SEEDED_STUDIES), "number": [0, 1]}


def _document() -> dict[str, Any]:
    """The app's OpenAPI document, built without starting it (no lifespan runs)."""
    document: dict[str, Any] = create_app(Settings(data_dir=Path("unused"))).openapi()
    return document


# Loaded at collection, so that each operation is a test item of its own. Requests go to
# the live service; test_the_fuzzed_document_is_the_served_one ties the two together.
schema = schemathesis.openapi.from_dict(_document())
# The coverage phase sends thousands of bodies to POST /studies alone (three minutes here):
# CI runs the examples and MAX_EXAMPLES fuzzed cases per operation, positive and negative.
schema.config.phases.update(phases=["examples", "fuzzing"])


@schema.hook
def flatmap_path_parameters(
    context: schemathesis.HookContext, path_parameters: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Integer ids are, as often as not, ones that exist; anything else is left alone."""
    if not path_parameters:
        return st.just(path_parameters)
    choices = {
        name: st.sampled_from([value, *KNOWN_PATH_VALUES[name]])
        if name in KNOWN_PATH_VALUES and isinstance(value, int) and not isinstance(value, bool)
        else st.just(value)
        for name, value in path_parameters.items()
    }
    return st.fixed_dictionaries(choices)


@schema.hook
def flatmap_query(
    context: schemathesis.HookContext, query: dict[str, Any] | None
) -> st.SearchStrategy[dict[str, Any] | None]:
    """Where a list takes a cursor, half the time send a forged one: the real encoding with
    huge, negative or mistyped keys (a generated string is almost never valid base64 JSON,
    so it never reached the checks behind the decoding)."""
    if not isinstance(query, dict) or context.operation is None:
        return st.just(query)
    if "cursor" not in context.operation.query:
        return st.just(query)
    return st.one_of(st.just(query), hostile_cursors().map(lambda c: {**query, "cursor": c}))


@pytest.fixture(scope="module")
def live_url(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A live service of this module's own, with two finished studies. Its submission rate
    is kept low: every generated spec is still validated in full (validation comes before
    the rate check), but only the first few valid ones a minute start real training on Ray;
    the rest get the documented 429. Starting hundreds of studies took minutes."""
    root = tmp_path_factory.mktemp("fuzz")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}", data_dir=root / "data", studies_per_minute=10
    )
    with running_service(settings) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for name in ("fuzz-a", "fuzz-b"):
                spec = copy.deepcopy(FAST_SPEC)
                spec["name"] = name
                spec["budget"] = {"max_trials": 2, "max_epochs": 1, "parallelism": 2}
                response = client.post("/api/v1/studies", json=spec)
                assert response.status_code == 201, response.text
                study = wait_for_study(client, response.json()["id"])
                assert study["state"] == "completed", study
            ids = [s["id"] for s in client.get("/api/v1/studies").json()["items"]]
            assert sorted(ids) == list(SEEDED_STUDIES)
        yield url


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as http:
        yield http


def test_the_fuzzed_document_is_the_served_one(live_url: str) -> None:
    served = httpx.get(f"{live_url}/openapi.json", timeout=30)
    assert served.status_code == 200
    assert served.json() == _document()


def _cheapen_budget(budget: Any) -> None:
    """Cut valid work-sizing budget fields down; leave invalid values for the app to reject."""
    if not isinstance(budget, dict):
        return
    for field, cap in CHEAP_BUDGET.items():
        value = budget.get(field)
        if isinstance(value, int) and not isinstance(value, bool) and value > cap:
            budget[field] = cap


def _cheapen(case: schemathesis.Case) -> None:
    """Keep the studies that a generated request may start down to one short trial."""
    if case.method.upper() != "POST" or not isinstance(case.body, dict):
        return
    if case.path == "/api/v1/studies":
        budget = case.body.get("budget")
        if budget is None:
            # An omitted budget defaults to 40 trials of 30 epochs.
            budget = case.body["budget"] = {}
        if isinstance(budget, dict):
            for field, cap in CHEAP_BUDGET.items():
                budget.setdefault(field, cap)
        _cheapen_budget(budget)
    elif case.path.endswith("/resume"):
        _cheapen_budget(case.body.get("budget"))


def _started_a_study(case: schemathesis.Case, response: schemathesis.Response) -> bool:
    if case.method.upper() != "POST":
        return False
    return (case.path == "/api/v1/studies" and response.status_code == 201) or (
        case.path.endswith("/resume") and response.status_code == 202
    )


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(
    case: schemathesis.Case, live_url: str, session: requests.Session
) -> None:
    if case.method.upper() == "DELETE":
        # The seeded studies stay for the operations fuzzed after this one.
        hypothesis.assume((case.path_parameters or {}).get("study_id") not in SEEDED_STUDIES)
    _cheapen(case)
    response = case.call_and_validate(
        base_url=live_url, session=session, checks=CHECKS, timeout=REQUEST_TIMEOUT_S
    )
    if _started_a_study(case, response):
        stop = session.post(
            f"{live_url}/api/v1/studies/{response.json()['id']}/stop", timeout=REQUEST_TIMEOUT_S
        )
        # 409: the study had already ended (a spec can be valid and still fail to start).
        assert stop.status_code in (202, 409), stop.text
