"""`hpo serve` as a user starts it: its own process, its own local Ray, a SQLite file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from api.client import HpoClient
from storage import Store, create_engine_for

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_hpo_serve_runs_a_study_and_stops_cleanly_on_sigterm(
    tmp_path: Path, make_spec: Callable[..., dict[str, Any]]
) -> None:
    port = free_port()
    env = {**os.environ, "HPO_DATA_DIR": str(tmp_path / "data"), "HPO_RAY_NUM_CPUS": "2"}
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        with HpoClient(f"http://127.0.0.1:{port}") as client:
            deadline = time.monotonic() + 90
            while not client.healthy():
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                assert time.monotonic() < deadline, "hpo serve did not answer /healthz"
                time.sleep(0.2)
            study = client.submit(make_spec(name="served"))
            done = client.wait(study["id"], timeout_s=120)
            assert done["state"] == "completed"
            assert done["counts"]["complete"] + done["counts"]["pruned"] == 4
            # A study of hours, then SIGTERM at once: the service must not wait it out.
            long = client.submit(
                make_spec(
                    name="long",
                    pruner={"type": "none"},
                    early_stopping={"patience": 1000},
                    budget={"max_trials": 1000, "max_epochs": 1000},
                )
            )
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    # It stays active, its interrupted trials unrecorded, for the next start to resume.
    engine = create_engine_for(f"sqlite:///{tmp_path / 'data' / 'hpo.db'}")
    try:
        store = Store(engine)
        assert store.get_study(long["id"]).state in ("queued", "running")
        assert store.count_trials(long["id"])["pruned"] == 0
    finally:
        engine.dispose()
