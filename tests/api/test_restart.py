"""`hpo serve` killed with SIGKILL while trials run, started again: the study finishes whole.

The service joins the session's Ray cluster, as on a cluster deployment: what dies is
the service and, with it, the slots it drove (tests/api/test_serve.py starts a local Ray).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.client import HpoClient
from tests.api.test_serve import free_port
from tests.service.test_cluster import SLOW_TRIALS

pytestmark = [pytest.mark.ray, pytest.mark.slow]


class Serve:
    """`hpo serve` processes on one data dir, started and killed like an operator would."""

    def __init__(self, data_dir: Path, ray_address: str):
        self.port = free_port()
        self.env = {**os.environ, "HPO_DATA_DIR": str(data_dir), "HPO_RAY_ADDRESS": ray_address}
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> HpoClient:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(self.port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        client = HpoClient(f"http://127.0.0.1:{self.port}")
        deadline = time.monotonic() + 90
        while not client.healthy():
            assert self.process.poll() is None and time.monotonic() < deadline, (
                "hpo serve did not start"
            )
            time.sleep(0.2)
        return client

    def kill(self) -> None:
        """SIGKILL the whole process group: the server and anything it started."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


@pytest.fixture
def serve(ray_cluster: Any, tmp_path: Path) -> Iterator[Serve]:
    server = Serve(tmp_path / "data", ray_cluster.address)
    yield server
    server.stop()


def test_a_killed_service_resumes_its_study_without_losing_or_double_counting(
    serve: Serve, make_spec: Callable[..., dict[str, Any]]
) -> None:
    # The survivor fills the cluster's 5 CPUs; a study of higher priority waits behind it.
    # Wide enough that each trial outlasts the other slots' start (seconds each on 2
    # cores): all five are seen in flight together before any has trained its 8 epochs.
    slow = {**SLOW_TRIALS, "params": {**SLOW_TRIALS["params"], "hidden_units": 2048}}
    spec = make_spec(
        name="survivor",
        **slow,
        checkpoints={"every_epochs": 1},
        budget={"max_trials": 5, "max_epochs": 8, "parallelism": 5},
    )
    waiter_spec = make_spec(
        name="waiter", priority=5, budget={"max_trials": 5, "max_epochs": 1, "parallelism": 5}
    )
    with serve.start() as client:
        study_id = client.submit(spec)["id"]
        deadline = time.monotonic() + 90
        # All five in flight, and training under way (not just slots starting).
        while not _in_flight(client.trials(study_id, limit=100), 5):
            assert time.monotonic() < deadline, "five trials never ran at once"
            time.sleep(0.1)
        waiter_id = client.submit(waiter_spec)["id"]
        queued = client.get(waiter_id)
        assert (queued["state"], queued["queue_position"]) == ("queued", 1), queued
        # It holds no slot a survivor's trial still runs on: only one a trial that had
        # trained its 8 epochs meanwhile gave back (a CI run saw one end at that moment).
        ended = sum(t["state"] != "running" for t in client.trials(study_id, limit=100))
        assert queued["slots_held"] <= ended, (queued, ended)
        serve.kill()

    with serve.start() as client:
        study = client.wait(study_id, timeout_s=240)
        waiter = client.wait(waiter_id, timeout_s=60)
        done = client.trials(study_id, limit=100)
        waiter_done = client.trials(waiter_id, limit=100)
    assert study["state"] == "completed", study
    assert study["counts"]["complete"] + study["counts"]["pruned"] == 5
    assert study["counts"]["running"] == 0 and all(t["state"] != "running" for t in done)
    # The interrupted trials resumed under their own numbers: five trials, no more.
    assert sorted(t["number"] for t in done) == [0, 1, 2, 3, 4]
    details = [client_detail(serve, study_id, t["number"]) for t in done]
    resumed = [d for d in details if len(d["attempts"]) > 1]
    assert len(resumed) >= 2
    for detail in resumed:
        assert [e["epoch"] for e in detail["epochs"]] == list(range(1, detail["epochs_run"] + 1))
        first, second = detail["attempts"]
        assert first["end"] == "interrupted" and second["end"] is not None
        # From its checkpoint: at most the one epoch in flight was trained twice.
        assert second["from_epoch"] >= first["epochs_trained"] - 1
    assert sum(d["attempts"][1]["from_epoch"] >= 2 for d in resumed) >= 2
    # No study jumps the queue because it ran before the restart: the waiter, of higher
    # priority, got the slots first; the survivor's trials resumed as its trials ended.
    assert waiter["state"] == "completed" and len(waiter_done) == 5
    first_waiter_end = min(_at(t["finished_at"]) for t in waiter_done)
    assert min(_at(d["attempts"][1]["started_at"]) for d in resumed) >= first_waiter_end


def client_detail(serve: Serve, study_id: int, number: int) -> dict[str, Any]:
    with httpx.Client(base_url=f"http://127.0.0.1:{serve.port}", timeout=30) as http:
        return dict(http.get(f"/api/v1/studies/{study_id}/trials/{number}").json())


def _in_flight(trials: list[dict[str, Any]], n: int) -> bool:
    """`n` trials running, two of them past their second epoch (and its checkpoint)."""
    running = [t for t in trials if t["state"] == "running"]
    return len(running) >= n and sum(t["epochs_run"] >= 3 for t in running) >= 2


def _at(text: str) -> datetime:
    return datetime.fromisoformat(text)
