"""Trials that survive: a killed slot, a pause, a preemption and a store that refuses
writes cost at most a checkpoint interval of epochs, on a real Ray cluster.

The session's cluster (tests/conftest.py): 5 CPUs on three nodes of this machine.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import running_service, wait_for_study
from tests.service.test_cluster import pid_of, submit, trials, wait_running

pytestmark = [pytest.mark.ray, pytest.mark.slow]

# Epochs of about a second on this machine, so that a test can act between two of them.
LONG_EPOCHS = {
    "space": {"lr": {"type": "float", "low": 0.005, "high": 0.01}},
    "params": {
        "hidden_units": 1024,
        "hidden_layers": 3,
        "optimizer": "sgd",
        "batch_size": 8,
        "dropout": 0.1,
    },
    "pruner": {"type": "none"},
    "early_stopping": {"patience": 1000},
}


def service(settings: Settings) -> Iterator[httpx.Client]:
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.fixture
def client(ray_cluster: Any, database_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    yield from service(Settings(database_url=database_url, data_dir=tmp_path / "data"))


def trial(client: httpx.Client, study_id: int, number: int) -> dict[str, Any]:
    response = client.get(f"/api/v1/studies/{study_id}/trials/{number}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def wait_state(client: httpx.Client, study_id: int, state: str, timeout_s: float = 60) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        study = client.get(f"/api/v1/studies/{study_id}").json()
        if study["state"] == state:
            return dict(study)
        time.sleep(0.1)
    raise AssertionError(f"study {study_id} never became {state}: {study}")


def assert_whole_curve(detail: dict[str, Any], n_epochs: int) -> None:
    assert [e["epoch"] for e in detail["epochs"]] == list(range(1, n_epochs + 1)), detail
    assert detail["epochs_run"] == n_epochs and detail["state"] == "complete"


def test_a_killed_slot_resumes_its_trial_from_its_checkpoint(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(
        name="lost",
        **LONG_EPOCHS,
        checkpoints={"every_epochs": 2},
        budget={"max_trials": 1, "max_epochs": 12, "parallelism": 1},
    )
    study_id = submit(client, spec)
    (victim,) = wait_running(client, study_id, 1, epochs=6, timeout_s=120)
    os.kill(pid_of(victim), signal.SIGKILL)
    study = wait_for_study(client, study_id, timeout_s=240)
    assert study["state"] == "completed" and study["counts"] == {
        "waiting": 0,
        "running": 0,
        "complete": 1,
        "pruned": 0,
        "failed": 0,
    }, study
    detail = trial(client, study_id, victim["number"])
    assert_whole_curve(detail, 12)
    lost, resumed = detail["attempts"]
    assert lost["end"] == "worker_lost" and resumed["end"] == "completed"
    assert lost["epochs_trained"] >= 6
    # Resumed from the last checkpoint: at most every_epochs epochs were trained twice.
    assert lost["epochs_trained"] - 2 <= resumed["from_epoch"] <= lost["epochs_trained"]
    assert resumed["epochs_trained"] == 12 - resumed["from_epoch"]
    assert pid_of(detail) != pid_of(victim)
    assert study["checkpoint_bytes"] == 0  # a finished trial's checkpoint is deleted
    # The same study never interrupted (same params, same seed) trains the same curve.
    again = wait_for_study(client, submit(client, {**spec, "name": "never-lost"}), 240)
    straight = trial(client, again["id"], 0)
    assert straight["params"] == detail["params"]
    assert [e["val_loss"] for e in straight["epochs"]] == [e["val_loss"] for e in detail["epochs"]]


def test_pause_frees_the_slots_and_resume_continues_every_trial(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    spec = make_spec(
        name="paused", **LONG_EPOCHS, budget={"max_trials": 2, "max_epochs": 8, "parallelism": 2}
    )
    study_id = submit(client, spec)
    running = wait_running(client, study_id, 2, epochs=2, timeout_s=120)
    assert client.post(f"/api/v1/studies/{study_id}/pause").status_code == 202
    paused = wait_state(client, study_id, "paused")
    assert paused["counts"]["waiting"] == 2 and paused["slots_held"] == 0, paused
    assert paused["checkpoint_bytes"] > 0
    stopped_at = {}
    for t in running:
        detail = trial(client, study_id, t["number"])
        assert detail["state"] == "waiting" and detail["attempts"][-1]["end"] == "paused"
        assert detail["checkpoint_epoch"] == detail["epochs_run"] >= 2  # saved at the boundary
        stopped_at[t["number"]] = detail["epochs_run"]
    files = list((tmp_path / "data" / "checkpoints" / f"study-{study_id}").iterdir())
    assert len(files) == 2
    cluster = client.get("/api/v1/cluster").json()
    assert not [s for s in cluster["slots"] if s["study_id"] == study_id]

    assert client.post(f"/api/v1/studies/{study_id}/resume").status_code == 202
    study = wait_for_study(client, study_id, timeout_s=240)
    assert study["state"] == "completed" and study["counts"]["complete"] == 2, study
    for number, epoch in stopped_at.items():
        detail = trial(client, study_id, number)
        assert_whole_curve(detail, 8)
        assert [a["end"] for a in detail["attempts"]] == ["paused", "completed"]
        assert detail["attempts"][1]["from_epoch"] == epoch  # nothing trained twice
    assert not list((tmp_path / "data" / "checkpoints" / f"study-{study_id}").iterdir())


def test_a_checkpoint_store_that_refuses_writes_leaves_trials_running_with_a_warning(
    ray_cluster: Any, sqlite_url: str, tmp_path: Path, make_spec: Callable[..., dict[str, Any]]
) -> None:
    # A folder below a file: no write succeeds there, even for root (file modes would not
    # stop root, and CI may run as root).
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings = Settings(
        database_url=sqlite_url,
        data_dir=tmp_path / "data",
        checkpoint_uri=str(blocker / "checkpoints"),
    )
    for client in service(settings):
        spec = make_spec(
            name="no-store",
            checkpoints={"every_epochs": 1},
            budget={"max_trials": 2, "max_epochs": 3},
        )
        study = wait_for_study(client, submit(client, spec))
        done = [trial(client, study["id"], t["number"]) for t in trials(client, study["id"])]
    assert study["state"] == "completed" and study["counts"]["complete"] == 2, study
    assert all(t["epochs_run"] == 3 and t["checkpoint_epoch"] is None for t in done)
    (warning,) = [w for w in study["warnings"] if "checkpoints could not be written" in w]
    assert "NotADirectoryError" in warning and str(tmp_path) not in warning, warning


def test_a_study_that_waited_preempts_a_lower_priority_one_and_nothing_is_lost(
    ray_cluster: Any, sqlite_url: str, tmp_path: Path, make_spec: Callable[..., dict[str, Any]]
) -> None:
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", preempt_after_s=1)
    for client in service(settings):
        low = submit(
            client,
            make_spec(
                name="low",
                **LONG_EPOCHS,
                budget={"max_trials": 5, "max_epochs": 6, "parallelism": 5},
            ),
        )
        wait_running(client, low, 5, epochs=1, timeout_s=120)  # the whole cluster
        high = submit(
            client,
            make_spec(
                name="high",
                priority=10,
                budget={"max_trials": 2, "max_epochs": 2, "parallelism": 1},
            ),
        )
        high_study = wait_for_study(client, high, timeout_s=120)
        low_running = client.get(f"/api/v1/studies/{low}").json()
        low_study = wait_for_study(client, low, timeout_s=300)
        low_trials = [trial(client, low, t["number"]) for t in trials(client, low)]
    assert high_study["state"] == "completed", high_study
    assert low_running["state"] == "running", "the high study finished before the low one"
    assert low_study["state"] == "completed" and low_study["counts"]["complete"] == 5
    preempted = [t for t in low_trials if any(a["end"] == "preempted" for a in t["attempts"])]
    assert preempted, [t["attempts"] for t in low_trials]
    # A run that yields trained first: no slot start goes to waste.
    assert all(
        a["epochs_trained"] >= 1
        for t in preempted
        for a in t["attempts"]
        if a["end"] == "preempted"
    ), [t["attempts"] for t in preempted]
    for detail in low_trials:
        assert_whole_curve(detail, 6)
    for detail in preempted:
        yielded, *later = detail["attempts"]
        # Stopped at an epoch boundary with a checkpoint: the next run began there.
        assert later[0]["from_epoch"] == yielded["epochs_trained"], detail["attempts"]
