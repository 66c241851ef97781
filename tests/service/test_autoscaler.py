"""With Ray's own local autoscaling cluster, a study whose trials fit no node yet is not
refused: its demand reaches the autoscaler, a node is added and the study completes.

Opt-in (`HPO_TEST_AUTOSCALER=1`) and alone in its pytest process:
`ray.cluster_utils.AutoscalingCluster.start` runs `ray stop --force`, which ends every
Ray process of this machine, the session cluster of the other tests included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.client import HpoClient
from tests.api.test_serve import free_port
from tests.conftest import FAST_SPEC

pytestmark = [
    pytest.mark.ray,
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("HPO_TEST_AUTOSCALER") != "1",
        reason="opt-in: HPO_TEST_AUTOSCALER=1 and run alone (it runs `ray stop --force`)",
    ),
]


@pytest.fixture
def autoscaling_cluster() -> Iterator[Any]:
    from ray.cluster_utils import AutoscalingCluster

    cluster = AutoscalingCluster(
        head_resources={"CPU": 1},
        worker_node_types={
            "two_cpus": {
                "resources": {"CPU": 2},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 1,
            },
        },  # fmt: skip
        idle_timeout_minutes=1,
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.shutdown()


def test_a_study_too_big_for_the_head_gets_a_node_from_the_autoscaler(
    autoscaling_cluster: Any, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "HPO_DATA_DIR": str(tmp_path / "data"), "HPO_RAY_ADDRESS": "auto",
           "HPO_PREWARM_SLOTS": "false"}  # fmt: skip
    serve = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "serve", "--port", str(port)], env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        client = HpoClient(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 90
        while not client.healthy():
            assert serve.poll() is None and time.monotonic() < deadline, "hpo serve did not start"
            time.sleep(0.5)
        spec = {**FAST_SPEC, "name": "needs-a-node", "resources": {"cpus_per_trial": 2},
                "budget": {"max_trials": 2, "max_epochs": 2, "parallelism": 1}}  # fmt: skip
        study = client.submit(spec)  # not refused: an autoscaler can add a 2-CPU node
        assert study["state"] == "queued"
        done = client.wait(study["id"], timeout_s=240)
        assert done["state"] == "completed", done
        nodes = client.cluster()["nodes"]
        assert any(n["alive"] and n["cpus"] == 2 for n in nodes), nodes
    finally:
        serve.terminate()
        serve.wait(timeout=60)
