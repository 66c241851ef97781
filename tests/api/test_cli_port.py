"""One setting names the port: `hpo serve` started with only HPO_PORT is the service that
the client commands find with only HPO_PORT, no HPO_URL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.api.test_cli import hpo
from tests.api.test_serve import free_port

pytestmark = pytest.mark.slow


def test_client_commands_find_a_server_started_on_hpo_port(tmp_path: Path) -> None:
    port = str(free_port())
    env = {
        **os.environ,
        "HPO_PORT": port,
        "HPO_DATA_DIR": str(tmp_path / "data"),
        "HPO_RAY_NUM_CPUS": "1",
        "HPO_PREWARM_SLOTS": "false",
    }
    env.pop("HPO_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while (listed := hpo("studies", "--json", env={"HPO_PORT": port})).returncode != 0:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, listed.stderr
            time.sleep(0.5)
        assert json.loads(listed.stdout) == []
        assert hpo("cluster", "--json", env={"HPO_PORT": port}).returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert f"hpo-service on http://127.0.0.1:{port}" in output, output
