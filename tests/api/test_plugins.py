"""Bring your own model: the example plug-in tuned over HTTP, refusals, and failing params."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

PLUGIN_SPEC: dict[str, Any] = {
    "name": "plugin",
    "dataset": {"source": "plugin", "name": "residual-mlp"},
    "model": {"kind": "plugin", "name": "residual-mlp"},
    "space": {
        "lr": {"type": "float", "low": 1e-4, "high": 0.05, "log": True},
        "optimizer": {"type": "categorical", "choices": ["sgd", "adam", "adamw"]},
        "weight_decay": {"type": "float", "low": 1e-6, "high": 1e-2, "log": True},
        "lr_schedule": {"type": "categorical", "choices": ["constant", "cosine"]},
    },
    "params": {"width": 32, "batch_size": 64},
    "sampler": {"type": "random", "seed": 1},
    "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_epochs": 1},
    "early_stopping": {"patience": 2, "min_delta": 0.005},
    "budget": {"max_trials": 8, "max_epochs": 25, "parallelism": 2},
}


@pytest.fixture(scope="module")
def client(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url, timeout=60) as http:
        yield http


def trials_of(client: httpx.Client, study_id: int) -> list[dict[str, Any]]:
    response = client.get(f"/api/v1/studies/{study_id}/trials", params={"limit": 100})
    return list(response.json()["items"])


def test_tasks_lists_the_installed_plugin(client: httpx.Client) -> None:
    items = {t["name"]: t for t in client.get("/api/v1/tasks").json()["items"]}
    task = items["residual-mlp"]
    assert task["package"] == "hpo-example-tasks" and task["error"] is None
    assert task["task"] == "classification" and task["provides_data"] is True
    assert task["hyperparameters"] == {"width": 64, "blocks": 2, "groups": 4}


def test_a_plugin_study_completes_with_pruning_and_early_stopping(client: httpx.Client) -> None:
    created = client.post("/api/v1/studies", json=PLUGIN_SPEC)
    assert created.status_code == 201, created.text
    study = wait_for_study(client, created.json()["id"])
    assert study["state"] == "completed", study
    trials = trials_of(client, study["id"])
    assert len(trials) == 8
    reasons = {t["stop_reason"] for t in trials}
    assert "pruned" in reasons, reasons
    assert "early_stopped" in reasons, reasons
    assert study["best"]["value"] > 0.7, "three classes: chance is 0.33"
    for trial in trials:
        assert set(trial["params"]) == {"lr", "optimizer", "weight_decay", "lr_schedule"}
    detail = client.get(f"/api/v1/studies/{study['id']}/trials/{study['best']['number']}").json()
    lrs = [e["lr"] for e in detail["epochs"]]
    if detail["params"]["lr_schedule"] == "cosine":
        assert lrs[-1] < lrs[0], "the worker's schedule drives the plug-in's optimizer"
    else:
        assert len(set(lrs)) == 1


@pytest.mark.parametrize(
    ("model", "dataset", "message"),
    [
        (
            {"kind": "plugin", "name": "not-installed"},
            None,
            "task 'not-installed' is not installed; installed tasks: [",
        ),
        ({"kind": "plugin", "name": "hpo_example_tasks:ResidualMLP"}, None, "should match pattern"),
        ({"kind": "plugin", "name": "os.system"}, None, "should match pattern"),
        ({"kind": "plugin", "name": "residual-mlp", "module": "os"}, None, "Extra inputs"),
        ({"kind": "plugin"}, None, "model.name is required with kind plugin"),
        (None, {"source": "plugin", "name": "../../etc"}, "should match pattern"),
        (None, {"source": "plugin", "name": "residual-mlp", "code": "import os"}, "Extra inputs"),
    ],
)
def test_specs_naming_missing_tasks_or_code_are_refused(
    client: httpx.Client, model: Any, dataset: Any, message: str
) -> None:
    spec = {**PLUGIN_SPEC, "name": "refused"}
    if model is not None:
        spec["model"] = model
    if dataset is not None:
        spec["dataset"] = dataset
    before = client.get("/api/v1/studies").json()["items"]
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert any(message in d["msg"] for d in error["details"]), error
    assert client.get("/api/v1/studies").json()["items"] == before


def test_an_uninstalled_task_lists_the_installed_ones(client: httpx.Client) -> None:
    spec = {**PLUGIN_SPEC, "model": {"kind": "plugin", "name": "not-installed"}}
    error = client.post("/api/v1/studies", json=spec).json()["error"]
    assert "residual-mlp" in str(error["details"])


def test_plugin_hyperparameters_need_the_plugin_model(client: httpx.Client) -> None:
    spec = {
        **PLUGIN_SPEC,
        "model": {"kind": "mlp"},
        "dataset": {"source": "builtin", "name": "digits"},
    }
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 422
    assert "model mlp has no hyperparameter 'width'" in response.text


def test_a_plugin_raising_on_some_params_fails_only_those_trials(client: httpx.Client) -> None:
    spec = {
        **PLUGIN_SPEC,
        "name": "fragile",
        "space": {
            "groups": {"type": "categorical", "choices": [4, 5]},
            "lr": {"type": "float", "low": 0.005, "high": 0.02, "log": True},
        },
        "params": {"width": 32, "optimizer": "adam"},
        "budget": {"max_trials": 8, "max_epochs": 3, "parallelism": 2, "max_failed_trials": 8},
    }
    created = client.post("/api/v1/studies", json=spec)
    assert created.status_code == 201, created.text
    study = wait_for_study(client, created.json()["id"])
    assert study["state"] == "completed", study
    trials = trials_of(client, study["id"])
    failed = [t for t in trials if t["state"] == "failed"]
    assert failed and len(failed) < len(trials)
    for trial in trials:
        if trial["params"]["groups"] == 5:
            assert trial["state"] == "failed" and trial["stop_reason"] == "failed"
            assert trial["error"] == "ValueError: width 32 is not divisible by groups 5"
        else:
            assert trial["state"] in ("complete", "pruned"), trial
    shown = client.get(f"/api/v1/studies/{study['id']}/trials/{failed[0]['number']}").json()
    assert "not divisible by groups 5" in shown["error"]
