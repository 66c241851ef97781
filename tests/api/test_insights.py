"""The dashboard's aggregate routes over a real trained study: history, importance, curves."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from api.schemas.insights import CurveOut
from service.studies.insights import Curve
from tests.conftest import FAST_SPEC, LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SPEC: dict[str, Any] = {
    **FAST_SPEC,
    "name": "insights",
    "space": {
        "lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam"]},
    },
    "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_epochs": 0},
    "early_stopping": {"patience": 5},
    "budget": {"max_trials": 10, "max_epochs": 4, "parallelism": 2},
}


@pytest.fixture(scope="module")
def client(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url, timeout=60) as http:
        yield http


@pytest.fixture(scope="module")
def study(client: httpx.Client) -> dict[str, Any]:
    created = client.post("/api/v1/studies", json=SPEC)
    assert created.status_code == 201, created.text
    finished = wait_for_study(client, created.json()["id"])
    assert finished["state"] == "completed", finished
    return finished


def all_trials(client: httpx.Client, study_id: int) -> list[dict[str, Any]]:
    page = client.get(f"/api/v1/studies/{study_id}/trials", params={"limit": 100}).json()
    return list(page["items"])


def test_history_has_every_complete_trial_and_ends_at_the_best(
    client: httpx.Client, study: dict[str, Any]
) -> None:
    history = client.get(f"/api/v1/studies/{study['id']}/history").json()
    complete = [t for t in all_trials(client, study["id"]) if t["state"] == "complete"]
    assert history["direction"] == "maximize" and history["bucket_size"] == 1
    assert [(p["number"], p["hi"]) for p in history["items"]] == [
        (t["number"], t["value"]) for t in complete
    ]
    running = [max(t["value"] for t in complete[: i + 1]) for i in range(len(complete))]
    assert [p["best"] for p in history["items"]] == running
    assert running[-1] == study["best"]["value"]


def test_importance_ranks_the_searched_params(client: httpx.Client, study: dict[str, Any]) -> None:
    found = client.get(f"/api/v1/studies/{study['id']}/importance").json()
    assert found["evaluator"] == "ped_anova"
    assert found["n_trials"] == study["counts"]["complete"]
    assert {item["param"] for item in found["items"]} <= {"lr", "optimizer"}
    assert found["items"], found
    shares = [item["importance"] for item in found["items"]]
    assert shares == sorted(shares, reverse=True) and math.isclose(sum(shares), 1.0)


def test_curves_match_each_trials_own_epochs(client: httpx.Client, study: dict[str, Any]) -> None:
    base = f"/api/v1/studies/{study['id']}"
    curves = client.get(f"{base}/curves", params={"top": 3, "pruned": 10}).json()
    assert curves["metric"] == "val_accuracy"
    best = client.get(f"{base}/best", params={"k": 3}).json()["items"]
    pruned = [t["number"] for t in all_trials(client, study["id"]) if t["state"] == "pruned"]
    numbers = [c["number"] for c in curves["items"]]
    assert numbers[:3] == [t["number"] for t in best]
    assert sorted(numbers[3:]) == sorted(pruned)
    assert pruned, "the median pruner pruned nothing; the test needs pruned curves"
    for curve in curves["items"]:
        detail = client.get(f"{base}/trials/{curve['number']}").json()
        assert curve["state"] == detail["state"]
        assert curve["epochs"] == [e["epoch"] for e in detail["epochs"]]
        assert curve["values"] == [e["val_accuracy"] for e in detail["epochs"]]
    chosen = client.get(f"{base}/curves", params=[("numbers", 1), ("numbers", 0)]).json()
    assert [c["number"] for c in chosen["items"]] == [1, 0]


def test_a_trials_epochs_say_counts_as_integers_and_each_epochs_own_seconds(
    client: httpx.Client, study: dict[str, Any]
) -> None:
    base = f"/api/v1/studies/{study['id']}"
    epochs = client.get(f"{base}/trials/{study['best']['number']}").json()["epochs"]
    assert epochs
    assert all(type(e["epoch"]) is int and type(e["n_params"]) is int for e in epochs), epochs
    assert len({e["n_params"] for e in epochs}) == 1 and epochs[0]["n_params"] > 0
    measured = ("train_loss", "val_loss", "val_accuracy", "lr", "seconds", "train_seconds")
    assert all(type(e[k]) is float for e in epochs for k in measured), epochs
    # `seconds` is each epoch's own training time, `train_seconds` their running sum.
    assert all(e["seconds"] > 0 for e in epochs)
    running = list(itertools.accumulate(e["seconds"] for e in epochs))
    assert [e["train_seconds"] for e in epochs] == pytest.approx(running)


def test_a_curve_of_a_count_is_integers_and_of_a_measurement_floats() -> None:
    curve = Curve(number=3, state="complete", value=2410.0, epochs=[1, 2], values=[2410.0, None])
    counted = CurveOut.of(curve, "n_params").model_dump(mode="json")["values"]
    assert counted == [2410, None] and type(counted[0]) is int
    measured = CurveOut.of(curve, "val_loss").model_dump(mode="json")["values"]
    assert measured == [2410.0, None] and type(measured[0]) is float


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("history", {"points": 0}),
        ("curves", {"top": 101}),
        ("curves", {"numbers": "x"}),
        ("curves", [("numbers", n) for n in range(101)]),
        ("curves", {"numbers": -1}),
        ("curves", {"numbers": 2**63}),
        ("events", {"after": 2**63}),
    ],
)
def test_bad_query_values_are_422(
    client: httpx.Client, study: dict[str, Any], path: str, params: Any
) -> None:
    response = client.get(f"/api/v1/studies/{study['id']}/{path}", params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"]


@pytest.mark.parametrize("path", ["history", "importance", "curves"])
def test_a_missing_study_is_404(client: httpx.Client, path: str) -> None:
    response = client.get(f"/api/v1/studies/987654/{path}")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "study 987654 does not exist"
