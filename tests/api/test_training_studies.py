"""Training knobs end to end: studies over HTTP on a live service with a real local Ray."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from tests.conftest import LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

SENSIBLE_LR = {
    "sgd": 0.1,
    "momentum": 0.05,
    "nesterov": 0.05,
    "adagrad": 0.05,
    "adadelta": 1.0,
    "rmsprop": 0.002,
    "adam": 0.005,
    "adamw": 0.005,
}


@pytest.fixture
def client(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url, timeout=30) as http:
        yield http


def run(client: httpx.Client, spec: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 201, response.text
    study = wait_for_study(client, response.json()["id"])
    trials = client.get(f"/api/v1/studies/{study['id']}/trials", params={"limit": 1000}).json()[
        "items"
    ]
    return study, trials


def test_a_digits_study_reaches_090_with_each_optimizer(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    """One study, one trial per optimizer at a learning rate that suits it (run as the
    study's initial configs, four at a time: one study per optimizer took 80 s)."""
    configs = [{"optimizer": name, "lr": lr} for name, lr in sorted(SENSIBLE_LR.items())]
    spec = make_spec(
        name="each-optimizer",
        space={
            "optimizer": {"type": "categorical", "choices": sorted(SENSIBLE_LR)},
            "lr": {"type": "categorical", "choices": sorted(set(SENSIBLE_LR.values()))},
        },
        params={"hidden_units": 64, "batch_size": 32},
        initial_trials=configs,
        budget={"max_trials": len(configs), "max_epochs": 12, "parallelism": 4},
    )
    study, trials = run(client, spec)
    assert study["state"] == "completed", study
    by_optimizer = {t["params"]["optimizer"]: t for t in trials}
    assert sorted(by_optimizer) == sorted(SENSIBLE_LR)
    for name, trial in by_optimizer.items():
        assert trial["params"] == {"optimizer": name, "lr": SENSIBLE_LR[name]}
        assert trial["value"] is not None and trial["value"] >= 0.9, (name, trial)
    assert study["best"]["test_metrics"]["test_accuracy"] > 0.85


def test_lr_10_with_plain_sgd_diverges_and_the_study_goes_on(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="diverging",
        space={"lr": {"type": "categorical", "choices": [10.0, 0.1]}},
        params={"optimizer": "sgd"},
        sampler={"type": "random", "seed": 0},
        budget={"max_trials": 6, "max_epochs": 5},
    )
    study, trials = run(client, spec)
    assert study["state"] == "completed"
    diverged = [t for t in trials if t["stop_reason"] == "diverged"]
    assert diverged and all(t["params"]["lr"] == 10.0 and t["state"] == "pruned" for t in diverged)
    assert any(t["params"]["lr"] == 0.1 and t["state"] == "complete" for t in trials)
    detail = client.get(f"/api/v1/studies/{study['id']}/trials/{diverged[0]['number']}").json()
    assert None in (detail["epochs"][-1]["train_loss"], detail["epochs"][-1]["val_loss"])
    assert detail["epochs_run"] < 5


def test_a_regression_study_completes_on_synthetic_regression(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="regression",
        dataset={"source": "builtin", "name": "synthetic-regression"},
        objective={"metric": "val_rmse"},
        space={
            "lr": {"type": "float", "low": 1e-3, "high": 3e-2, "log": True},
            "lr_schedule": {"type": "categorical", "choices": ["cosine", "constant"]},
        },
        params={"hidden_units": 64, "optimizer": "adam"},
        budget={"max_trials": 3, "max_epochs": 10},
    )
    study, trials = run(client, spec)
    assert study["state"] == "completed", study
    assert study["spec"]["objective"]["direction"] == "minimize"
    assert study["best"]["value"] == min(t["value"] for t in trials if t["state"] == "complete")
    detail = client.get(f"/api/v1/studies/{study['id']}/trials/{study['best']['number']}").json()
    assert {"val_rmse", "val_mae", "val_r2"} <= set(detail["epochs"][0])
    assert detail["epochs"][detail["best_epoch"] - 1]["val_r2"] > 0.5


def test_a_csv_classification_study_completes(
    client: httpx.Client, shared_service: LiveService, make_spec: Callable[..., dict[str, Any]]
) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    table = pd.DataFrame(x, columns=["f1", "f2", "f3", "f4"]).assign(
        kind=(x[:, 0] + x[:, 1] > 0).astype(int)
    )
    table.to_csv(shared_service.data_root / "two-blobs.csv", index=False)
    spec = make_spec(
        name="csv",
        dataset={"source": "path", "path": "two-blobs.csv", "target": "kind"},
        budget={"max_trials": 3, "max_epochs": 8},
    )
    study, trials = run(client, spec)
    assert study["state"] == "completed", study
    assert study["best"]["value"] > 0.9


def test_precision_is_searched_like_any_categorical_and_each_one_learns(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="precision",
        space={"precision": {"type": "categorical", "choices": ["fp32", "bf16", "fp16"]}},
        params={"hidden_units": 32, "lr": 0.01, "optimizer": "adam", "batch_size": 32},
        initial_trials=[{"precision": "bf16"}, {"precision": "fp16"}],
        budget={"max_trials": 2, "max_epochs": 3, "parallelism": 2},
    )
    study, trials = run(client, spec)
    assert study["state"] == "completed", study
    assert sorted(t["params"]["precision"] for t in trials) == ["bf16", "fp16"]
    assert all(t["state"] == "complete" and t["value"] > 0.8 for t in trials), trials


def test_a_file_without_its_target_is_refused_with_the_columns_it_has(
    client: httpx.Client, shared_service: LiveService, make_spec: Callable[..., dict[str, Any]]
) -> None:
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(
        shared_service.data_root / "no-target.csv", index=False
    )
    spec = make_spec(
        name="no-target", dataset={"source": "path", "path": "no-target.csv", "target": "y"}
    )
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"] == [
        {
            "loc": "dataset.target",
            "msg": "dataset.target 'y' is not a column of 'no-target.csv'; its columns are ['a', 'b']",
        }
    ]


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"params": {"dropout": 1.5}}, "params.dropout", "dropout must be in [0, 1)"),
        (
            {"params": {"batch_size": 0}},
            "params.batch_size",
            "batch_size must be an integer >= 1 or 'full'",
        ),
        (
            {"space": {"optimizer": {"type": "categorical", "choices": ["sgd", "lbfgs"]}}},
            "space.optimizer.choices",
            "optimizer must be one of",
        ),
        (
            {"space": {"lr": {"type": "float", "low": 0.0, "high": 0.1}}},
            "space.lr.low",
            "lr must be in (0, inf)",
        ),
        (
            {
                "space": {"lr": {"type": "float", "low": 1e-3, "high": 0.1}},
                "params": {"optimizer": "adam", "rho": 0.9},
            },
            "body",
            "params.rho is read only by",
        ),
        (
            {"objective": {"metric": "val_rmse"}},
            "objective.metric",
            "does not fit a classification task",
        ),
        ({"objective": {"metric": "val_auc"}}, "objective.metric", "metric must be one of"),
        (
            {
                "model": {"kind": "cnn"},
                "dataset": {"source": "builtin", "name": "synthetic-classification"},
            },
            "body",
            "cnn needs image data",
        ),
        (
            {"dataset": {"source": "path", "path": "../../etc/passwd", "format": "csv"}},
            "dataset.path",
            "outside the data roots",
        ),
        (
            {"dataset": {"source": "path", "path": "/etc/hostname", "format": "csv"}},
            "dataset.path",
            "outside the data roots",
        ),
        ({"dataset": {"source": "path", "path": "missing.csv"}}, "dataset.path", "is not a file"),
        (
            {"space": {"precision": {"type": "categorical", "choices": ["fp32", "int8"]}}},
            "space.precision.choices",
            "precision must be one of ['fp32', 'bf16', 'fp16']",
        ),
        ({"params": {"compile": "yes"}}, "params.compile", "compile must be one of [True, False]"),
    ],
)
def test_specs_the_worker_cannot_train_are_422(
    client: httpx.Client,
    make_spec: Callable[..., dict[str, Any]],
    overrides: dict[str, Any],
    field: str,
    words: str,
) -> None:
    before = len(client.get("/api/v1/studies", params={"limit": 1000}).json()["items"])
    response = client.post("/api/v1/studies", json=make_spec(**overrides))
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert words in error["message"]
    assert field in [d["loc"] for d in error["details"]]
    assert len(client.get("/api/v1/studies", params={"limit": 1000}).json()["items"]) == before
