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
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
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


def test_a_start_that_fails_on_its_store_stops_the_ray_it_started(tmp_path: Path) -> None:
    """Ray starts while the store is migrated: when the migration fails (no database
    listens on port 1), the Ray that the start-up began is shut down, not left running."""
    script = (
        "import asyncio, sys, ray\n"
        "from service.runtime import open_runtime\n"
        "from service.settings import Settings\n"
        "settings = Settings(data_dir=sys.argv[1], ray_num_cpus=1,\n"
        "                    database_url='postgresql+psycopg://postgres@127.0.0.1:1/none')\n"
        "try:\n"
        "    asyncio.run(open_runtime(settings))\n"
        "except Exception as exc:\n"
        "    print('failed:', type(exc).__name__)\n"
        "print('ray still up:', ray.is_initialized())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "failed: OperationalError" in done.stdout, done.stdout + done.stderr
    assert "ray still up: False" in done.stdout


def test_hpo_serve_never_prints_the_database_password(tmp_path: Path) -> None:
    """The start-up line names the database, and a start that fails on it says why; neither
    shows its password (logs are read by more people than the database's owners)."""
    url = "postgresql+psycopg://postgres:s3cret-w0rd@127.0.0.1:1/none"  # nothing listens
    env = {**os.environ, "HPO_DATA_DIR": str(tmp_path / "data"), "HPO_RAY_NUM_CPUS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "api.cli",
            "serve",
            "--port",
            str(free_port()),
            "--database-url",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0 and "OperationalError" in output, output
    assert "db=postgresql+psycopg://postgres:***@127.0.0.1:1/none" in output
    assert "s3cret-w0rd" not in output
