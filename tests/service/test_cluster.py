"""Trials across a multi-node Ray cluster, against PostgreSQL: placement, GPUs, lost workers, stop.

The session's cluster (tests/conftest.py) has a head with 2 CPUs, a node with 2 CPUs
and a node with 1 CPU and one declared GPU, all on this machine. That GPU is not there,
so these services let its slots train on the CPU (`allow_cpu_for_gpus`), and the trials
say so.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray
import torch

from service.settings import Settings
from tests.conftest import running_service, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.postgres]

SLOW_TRIALS = {
    "space": {"lr": {"type": "float", "low": 0.01, "high": 0.05}},
    "params": {"hidden_units": 512, "hidden_layers": 2, "optimizer": "sgd", "batch_size": 16},
    "pruner": {"type": "none"},
    "early_stopping": {"patience": 1000},
}


@pytest.fixture
def client(ray_cluster: Any, postgres_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(
        database_url=postgres_url, data_dir=tmp_path / "data", allow_cpu_for_gpus=True
    )
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def submit(client: httpx.Client, spec: dict[str, Any]) -> int:
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def trials(client: httpx.Client, study_id: int) -> list[dict[str, Any]]:
    return client.get(f"/api/v1/studies/{study_id}/trials", params={"limit": 1000}).json()["items"]


def wait_running(
    client: httpx.Client, study_id: int, n: int, timeout_s: float = 60, *, epochs: int = 0
) -> list[dict[str, Any]]:
    """The study's running trials once `n` run, each with at least `epochs` epochs done."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        running = [
            t
            for t in trials(client, study_id)
            if t["state"] == "running" and t["epochs_run"] >= epochs
        ]
        if len(running) >= n:
            return running
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} trials of study {study_id} started running")


def pid_of(trial: dict[str, Any]) -> int:
    return int(trial["node"].split("pid=")[1].split()[0])


def node_of(trial: dict[str, Any]) -> str:
    return str(trial["node"].split()[0])


def test_trials_spread_over_nodes(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="spread", resources={"cpus_per_trial": 2}, budget={"max_trials": 6, "max_epochs": 3}
    )
    study = wait_for_study(client, submit(client, spec))
    assert study["state"] == "completed", study
    nodes = {node_of(t) for t in trials(client, study["id"])}
    assert len(nodes) == 2, nodes  # only the two 2-CPU nodes fit a 2-CPU slot


def test_a_gpu_study_runs_only_on_the_gpu_node_one_trial_at_a_time(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    gpu_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU"))
    spec = make_spec(
        name="gpu",
        resources={"cpus_per_trial": 1, "gpus_per_trial": 1},
        budget={"max_trials": 4, "max_epochs": 3, "parallelism": 2},
    )
    study = wait_for_study(client, submit(client, spec))
    assert study["state"] == "completed", study
    done = sorted(trials(client, study["id"]), key=lambda t: t["started_at"])
    assert len(done) == 4
    assert all(t["node"].startswith(gpu_node[:12]) and "gpu=" in t["node"] for t in done)
    # The declared GPU is there only on a machine with CUDA (then it is that machine's).
    cuda = torch.cuda.is_available()
    assert {t["device"] for t in done} == {torch.cuda.get_device_name(0) if cuda else "cpu"}
    for earlier, later in zip(done, done[1:], strict=False):
        assert datetime.fromisoformat(earlier["finished_at"]) <= datetime.fromisoformat(
            later["started_at"]
        )


def test_stop_ends_running_trials_and_kills_the_slots(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="stopped",
        **SLOW_TRIALS,
        budget={"max_trials": 10, "max_epochs": 200, "parallelism": 2},
    )
    study_id = submit(client, spec)
    running = wait_running(client, study_id, 2)
    assert client.post(f"/api/v1/studies/{study_id}/stop").status_code == 202
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        study = client.get(f"/api/v1/studies/{study_id}").json()
        if study["state"] == "stopped" and study["counts"]["running"] == 0:
            break
        time.sleep(0.1)
    assert (study["state"], study["counts"]["running"]) == ("stopped", 0), study
    assert {t["stop_reason"] for t in trials(client, study_id)} == {"cancelled"}
    for trial in running:
        with pytest.raises(ProcessLookupError):
            for _ in range(50):
                os.kill(pid_of(trial), 0)
                time.sleep(0.1)
