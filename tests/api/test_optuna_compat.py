"""Optuna's own tools read the service's database: optuna-dashboard and `optuna best-trial`.

Trials live in Optuna's RDBStorage under the study's `optuna_study_name`, so a user's
existing tooling works without the service in the way.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import FAST_SPEC, LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

BIN = Path(sys.executable).parent
SPEC: dict[str, Any] = {
    **FAST_SPEC,
    "name": "optuna-compat",
    "pruner": {"type": "median", "n_startup_trials": 2, "n_warmup_epochs": 0},
    "budget": {"max_trials": 6, "max_epochs": 3, "parallelism": 2},
}


@pytest.fixture(scope="module")
def study(shared_service: LiveService) -> dict[str, Any]:
    with httpx.Client(base_url=shared_service.url, timeout=60) as client:
        created = client.post("/api/v1/studies", json=SPEC)
        assert created.status_code == 201, created.text
        finished = wait_for_study(client, created.json()["id"])
        assert finished["state"] == "completed", finished
        trials = client.get(f"/api/v1/studies/{finished['id']}/trials?limit=100").json()
        best = client.get(f"/api/v1/studies/{finished['id']}/best").json()["items"][0]
    return {**finished, "trials": trials["items"], "best_trial": best}


@pytest.fixture(scope="module")
def storage_url(shared_service: LiveService) -> str:
    # tests/conftest.py's shared_service keeps its SQLite file beside its data dir.
    database = shared_service.data_dir.parent / "hpo.db"
    assert database.exists()
    return f"sqlite:///{database}"


@pytest.fixture(scope="module")
def optuna_dashboard(storage_url: str, study: dict[str, Any]) -> Iterator[str]:
    """optuna-dashboard's own server, started as its users start it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen(
        [BIN / "optuna-dashboard", storage_url, "--port", str(port), "--server", "wsgiref"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                if httpx.get(f"{url}/api/meta", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "optuna-dashboard did not answer in 60 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_optuna_dashboard_reads_the_study_and_its_trials(
    optuna_dashboard: str, study: dict[str, Any]
) -> None:
    listed = httpx.get(f"{optuna_dashboard}/api/studies", timeout=30).json()["study_summaries"]
    (summary,) = [s for s in listed if s["study_name"] == study["optuna_study_name"]]
    detail = httpx.get(f"{optuna_dashboard}/api/studies/{summary['study_id']}", timeout=30)
    assert detail.status_code == 200
    trials = {t["number"]: t for t in detail.json()["trials"]}
    ours = {t["number"]: t for t in study["trials"]}
    assert set(trials) == set(ours)
    for number, trial in ours.items():
        theirs = trials[number]
        assert theirs["state"].lower() == trial["state"], number
        # optuna-dashboard shows each param's value as text.
        shown = {p["name"]: p["param_external_value"] for p in theirs["params"]}
        assert shown == {name: str(value) for name, value in trial["params"].items()}
        if trial["state"] == "complete":
            assert theirs["values"] == [trial["value"]]
    (best,) = detail.json()["best_trials"]
    assert best["number"] == study["best_trial"]["number"]


def test_optuna_best_trial_cli_agrees_with_best(storage_url: str, study: dict[str, Any]) -> None:
    command = [
        BIN / "optuna",
        "best-trial",
        "--study-name",
        study["optuna_study_name"],
        "--storage",
        storage_url,
        "-f",
        "json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    best = json.loads(done.stdout)
    assert best["number"] == study["best_trial"]["number"]
    assert best["params"] == study["best_trial"]["params"]
    assert best["value"] == pytest.approx(study["best_trial"]["value"])
