"""The CLI's commands beyond submit and read, and the port that the server, the demo and
the client commands share; a real `hpo` process against a live service."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import select
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
import yaml

from api.cli.output import fmt
from tests.api.test_cli import DOWN, NARROW, hpo, one_error_line
from tests.conftest import FAST_SPEC, LiveService, wait_for_study

pytestmark = pytest.mark.ray

PBT: dict[str, Any] = {
    "name": "cli-pbt",
    "space": {"lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True}},
    "params": {"optimizer": "sgd", "hidden_units": 16, "batch_size": 64},
    "budget": {"max_epochs": 2},
    "population": {"size": 2, "interval_epochs": 1, "mutations": {"lr": {"perturb": [0.8, 1.2]}}},
}


def port_of(url: str) -> str:
    return url.rsplit(":", 1)[1]


@pytest.fixture(scope="module")
def http(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def finished(http: httpx.Client) -> dict[str, Any]:
    """A finished 2-trial study: the one its tests read, then delete."""
    spec = {
        **FAST_SPEC,
        "name": "cli-finished",
        "budget": {"max_trials": 2, "max_epochs": 2, "parallelism": 2},
    }
    created = http.post("/api/v1/studies", json=spec)
    assert created.status_code == 201, created.text
    study = wait_for_study(http, created.json()["id"])
    assert study["state"] == "completed", study
    return study


def test_client_commands_find_the_service_on_hpo_port(
    shared_service: LiveService, finished: dict[str, Any]
) -> None:
    env = {"HPO_PORT": port_of(shared_service.url)}
    listed = hpo("studies", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert finished["id"] in [s["id"] for s in json.loads(listed.stdout)]
    # --url and HPO_URL name another address over HPO_PORT
    assert "cannot reach the service at" in one_error_line(hpo("studies", "--url", DOWN, env=env))
    assert DOWN in one_error_line(hpo("studies", env={**env, "HPO_URL": DOWN}))
    by_url = hpo("studies", "--json", env={"HPO_PORT": "9", "HPO_URL": shared_service.url})
    assert json.loads(by_url.stdout) == json.loads(listed.stdout)
    assert "HPO_PORT must be a port number" in one_error_line(
        hpo("studies", env={"HPO_PORT": "eighty"})
    )


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_in_use_ends_serve_and_demo_at_once_with_the_reason(
    command: str, busy_port: int, tmp_path: Path
) -> None:
    env = {"HPO_PORT": str(busy_port), "HPO_DATA_DIR": str(tmp_path)}
    result = hpo(command, env=env, timeout=60)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert f"port {busy_port} on 127.0.0.1 is in use" in result.stderr
    # It stopped before Ray's start and the health wait: neither said a word.
    assert "starting hpo-service" not in result.stdout
    assert "did not start" not in result.stderr
    # --port wins over HPO_PORT: binding HPO_PORT's 9 would fail for another reason
    env = {"HPO_PORT": "9", "HPO_DATA_DIR": str(tmp_path)}
    by_option = hpo(command, "--port", str(busy_port), env=env, timeout=60)
    assert by_option.returncode == 1, (by_option.stdout, by_option.stderr)
    assert f"port {busy_port} on 127.0.0.1 is in use" in by_option.stderr


def test_trials_at_80_columns_keep_the_stop_and_device_columns(
    shared_service: LiveService, finished: dict[str, Any], http: httpx.Client
) -> None:
    trials = http.get(f"/api/v1/studies/{finished['id']}/trials").json()["items"]
    shown = hpo("trials", str(finished["id"]), "--url", shared_service.url, env=NARROW)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in shown.stdout, shown.stdout
    header = next(line for line in lines if "trial" in line and "state" in line)
    assert all(name in header for name in ("stop", "device", "secs")), header
    for trial in trials:
        row = next(line for line in lines if line.startswith(f"│ {trial['number']} "))
        assert trial["stop_reason"] in row and trial["device"] in row, row
        for name, value in trial["params"].items():  # in the params table below
            assert f"{name}={fmt(value)}" in shown.stdout, name


def test_best_checkpoint_saves_the_best_trials_weights(
    shared_service: LiveService, finished: dict[str, Any], tmp_path: Path, http: httpx.Client
) -> None:
    path = tmp_path / "best.pt"
    args = ("best", str(finished["id"]), "--url", shared_service.url)
    saved = hpo(*args, "--checkpoint", str(path), "--json")
    assert saved.returncode == 0, saved.stderr
    best = http.get(f"/api/v1/studies/{finished['id']}/best").json()["items"][0]
    assert json.loads(saved.stdout) == {
        "study": finished["id"],
        "trial": best["number"],
        "path": str(path),
    }
    served = http.get(f"/api/v1/studies/{finished['id']}/best/checkpoint").content
    assert path.read_bytes() == served
    assert isinstance(torch.load(path, weights_only=True), dict)
    assert "checkpoint" in one_error_line(hpo(*args, "--checkpoint", str(path), "--spec"))


def test_best_spec_prints_the_replay_spec_that_submit_takes(
    shared_service: LiveService, http: httpx.Client, finished: dict[str, Any], tmp_path: Path
) -> None:
    url = ("--url", shared_service.url)
    refused = one_error_line(hpo("best", str(finished["id"]), "--spec", *url))
    assert "HTTP 409" in refused and f"study {finished['id']} is not a PBT study" in refused
    created = http.post("/api/v1/studies", json=PBT)
    assert created.status_code == 201, created.text
    study = wait_for_study(http, created.json()["id"])
    assert study["state"] == "completed", study
    served = http.get(f"/api/v1/studies/{study['id']}/best/spec").json()
    as_json = hpo("best", str(study["id"]), "--spec", "--json", *url)
    as_yaml = hpo("best", str(study["id"]), "--spec", *url)
    assert json.loads(as_json.stdout) == yaml.safe_load(as_yaml.stdout) == served
    replay = tmp_path / "replay.yaml"
    replay.write_text(as_yaml.stdout)
    submitted = hpo("submit", str(replay), "--json", *url)
    assert submitted.returncode == 0, submitted.stderr
    again = json.loads(submitted.stdout)
    assert again["spec"]["training_seed"] == served["training_seed"]
    http.post(f"/api/v1/studies/{again['id']}/stop")


def test_datasets_list_and_delete(
    shared_service: LiveService, http: httpx.Client, tmp_path: Path
) -> None:
    url = ("--url", shared_service.url)
    path = tmp_path / "table.csv"
    path.write_text("x1,x2,y\n" + "".join(f"{i},{i % 5},{i % 2}\n" for i in range(30)))
    record = json.loads(hpo("upload", str(path), "--target", "y", "--json", *url).stdout)
    listed = hpo("datasets", "list", "--json", *url)
    assert json.loads(listed.stdout) == http.get("/api/v1/datasets").json()["items"]
    table = hpo("datasets", "list", *url)
    assert record["id"] in table.stdout and "table.csv" in table.stdout
    deleted = hpo("datasets", "delete", record["id"], *url)
    assert deleted.returncode == 0 and f"dataset {record['id']} deleted" in deleted.stdout
    assert record["id"] not in [d["id"] for d in http.get("/api/v1/datasets").json()["items"]]
    assert "HTTP 404" in one_error_line(hpo("datasets", "delete", record["id"], *url))


def test_tasks_lists_what_the_service_has_installed(
    shared_service: LiveService, http: httpx.Client
) -> None:
    url = ("--url", shared_service.url)
    served = http.get("/api/v1/tasks").json()["items"]
    assert served, "the suite installs plug-in tasks (examples/plugin, tests/plugin)"
    assert json.loads(hpo("tasks", "--json", *url).stdout) == served
    table = hpo("tasks", *url, env={"COLUMNS": "200"})
    assert all(task["name"] in table.stdout for task in served), table.stdout


def on_a_terminal(*args: str, answer: str) -> tuple[int, str]:
    """`hpo ARGS` with a terminal on its stdin, answering its one question; (exit, output)."""
    leader, follower = pty.openpty()
    command = [sys.executable, "-m", "api.cli", *args]
    env = {"PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    process = subprocess.Popen(command, stdin=follower, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    seen = b""
    while b"[y/N]" not in seen:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, f"no question within 60 s: {seen!r}"
        seen += os.read(leader, 1024)
    os.write(leader, answer.encode() + b"\n")
    code = process.wait(timeout=60)
    with contextlib.suppress(OSError):  # EIO once the process has closed its end
        while chunk := os.read(leader, 1024):
            seen += chunk
    os.close(leader)
    return code, seen.decode(errors="replace")


def test_delete_asks_without_yes_and_deletes_with_it(
    shared_service: LiveService, http: httpx.Client, finished: dict[str, Any], tmp_path: Path
) -> None:
    url = ("--url", shared_service.url)
    study_id = str(finished["id"])
    assert "needs --yes without a terminal" in one_error_line(hpo("delete", study_id, *url))
    code, said = on_a_terminal("delete", study_id, *url, answer="n")
    assert code == 1 and f"delete study {study_id}" in said and "Aborted" in said, said
    assert http.get(f"/api/v1/studies/{study_id}").status_code == 200
    deleted = hpo("delete", study_id, "--yes", *url)
    assert deleted.returncode == 0 and f"study {study_id} deleted" in deleted.stdout
    assert http.get(f"/api/v1/studies/{study_id}").status_code == 404
    gone = one_error_line(hpo("delete", study_id, "--yes", *url))
    assert "HTTP 404" in gone and f"study {study_id} does not exist" in gone
    path = tmp_path / "best.pt"
    for args in (("--spec",), ("--checkpoint", str(path)), ()):
        gone = one_error_line(hpo("best", study_id, *args, *url))
        assert f"study {study_id} does not exist" in gone, args
    assert not list(tmp_path.iterdir()), "a refused download leaves no file behind"
