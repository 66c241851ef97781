"""One study end to end: real HTTP, a real local Ray, a real SQLite file or PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from search.space import ParamSpec, contains, is_active

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Random search over a wide lr range: some trials learn slowly (the median pruner
# stops them), and min_delta makes any trial that plateaus stop early.
E2E_OVERRIDES: dict[str, Any] = {
    "name": "e2e",
    "space": {
        "lr": {"type": "float", "low": 1e-5, "high": 0.1, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "momentum", "adam"]},
        "momentum": {
            "type": "float",
            "low": 0.5,
            "high": 0.95,
            "when": {"optimizer": ["momentum"]},
        },
        "batch_size": {"type": "categorical", "choices": [32, 64]},
    },
    "sampler": {"type": "random", "seed": 3},
    "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_epochs": 1},
    "early_stopping": {"patience": 2, "min_delta": 0.01},
    "budget": {"max_trials": 8, "max_epochs": 12, "parallelism": 2},
}


def _wait(client: httpx.Client, study_id: int) -> dict[str, Any]:
    for _ in range(600):
        study = client.get(f"/api/v1/studies/{study_id}").json()
        if study["state"] not in ("queued", "running"):
            return study
        time.sleep(0.25)
    raise AssertionError(f"study {study_id} did not finish: {study}")


def test_study_runs_end_to_end(service_url: str, make_spec: Callable[..., dict[str, Any]]) -> None:
    spec = make_spec(**E2E_OVERRIDES)
    with httpx.Client(base_url=service_url, timeout=30) as client:
        created = client.post("/api/v1/studies", json=spec)
        assert created.status_code == 201, created.text
        study_id = created.json()["id"]
        assert created.headers["location"] == f"/api/v1/studies/{study_id}"

        study = _wait(client, study_id)
        assert study["state"] == "completed", study
        assert study["state_reason"] == "max_trials"

        trials = client.get(f"/api/v1/studies/{study_id}/trials", params={"limit": 100}).json()
        details = [
            client.get(f"/api/v1/studies/{study_id}/trials/{t['number']}").json()
            for t in trials["items"]
        ]
        best = client.get(f"/api/v1/studies/{study_id}/best").json()["items"][0]

    max_trials, max_epochs = spec["budget"]["max_trials"], spec["budget"]["max_epochs"]
    assert len(details) == max_trials
    assert sum(study["counts"][s] for s in ("complete", "pruned", "failed")) == max_trials
    assert study["counts"]["failed"] == 0

    space = {k: TypeAdapter(ParamSpec).validate_python(v) for k, v in spec["space"].items()}
    for trial in details:
        _assert_params_in_space(trial["params"], space)
        assert len(trial["epochs"]) == trial["epochs_run"] >= 1
        assert [e["epoch"] for e in trial["epochs"]] == list(range(1, trial["epochs_run"] + 1))
        for epoch in trial["epochs"]:
            assert {"train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= set(epoch)

    best_detail = next(t for t in details if t["number"] == best["number"])
    curve_best = max(e["val_accuracy"] for e in best_detail["epochs"])
    assert best["value"] == pytest.approx(curve_best)
    assert best_detail["epochs"][best["best_epoch"] - 1]["val_accuracy"] == pytest.approx(
        curve_best
    )
    completed = [t for t in details if t["state"] == "complete" and t["value"] is not None]
    assert best["value"] == max(t["value"] for t in completed)

    early = [t for t in details if t["stop_reason"] == "early_stopped"]
    assert early and all(t["epochs_run"] < max_epochs for t in early)
    assert any(t["state"] == "pruned" and t["stop_reason"] == "pruned" for t in details)


def _assert_params_in_space(params: dict[str, Any], space: dict[str, Any]) -> None:
    for name, param in space.items():
        if is_active(param, params):
            assert name in params and contains(param, params[name]), (name, params)
        else:
            assert name not in params, (name, params)
    assert set(params) <= set(space)
