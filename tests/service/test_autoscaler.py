"""With Ray's own local autoscaling cluster, a study whose trials fit no node yet is not
refused: its demand reaches the autoscaler, a node is added and the study completes.

Opt-in (`HPO_TEST_AUTOSCALER=1`) and alone in its pytest process:
`ray.cluster_utils.AutoscalingCluster.start` runs `ray stop --force`, which ends every
Ray process of this machine, the session cluster of the other tests included.
"""

from __future__ import annotations

import copy
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


# Ray's wheel leaves out the fake provider's example config that AutoscalingCluster
# reads; these are the settings it needs (the fake provider starts nodes as local
# processes).
FAKE_PROVIDER_CONFIG: dict[str, Any] = {
    "cluster_name": "fake_multinode",
    "max_workers": 8,
    "provider": {
        "type": "fake_multinode",
        "use_node_id_as_ip": True,
        "disable_node_updaters": True,
        "disable_launch_config_check": True,
    },
    "head_node_type": "ray.head.default",
    "auth": {},
    "upscaling_speed": 1.0,
    "idle_timeout_minutes": 1,
    "docker": {},
    "initialization_commands": [],
    "setup_commands": [],
    "head_setup_commands": [],
    "worker_setup_commands": [],
    "head_start_ray_commands": [],
    "worker_start_ray_commands": [],
    "file_mounts": {},
    "cluster_synced_files": [],
    "file_mounts_sync_continuously": False,
    "rsync_exclude": [],
    "rsync_filter": [],
}


@pytest.fixture
def autoscaling_cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import ray.cluster_utils
    from ray.cluster_utils import AutoscalingCluster

    # It runs `ray start` and `ray stop`: the ones of this interpreter's environment, and
    # the head on a free port (6379, Ray's default, may be another server's).
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    port, check_call = free_port(), subprocess.check_call

    def on_free_port(command: list[str], *args: Any, **kwargs: Any) -> int:
        if command[:2] == ["ray", "start"] and "--head" in command:
            command = [*command, f"--port={port}"]
        return check_call(command, *args, **kwargs)

    monkeypatch.setattr(ray.cluster_utils.subprocess, "check_call", on_free_port)

    class LocalAutoscalingCluster(AutoscalingCluster):  # type: ignore[misc]
        def _generate_config(
            self,
            head_resources: dict[str, Any],
            worker_node_types: dict[str, Any],
            autoscaler_v2: bool = False,
            **config_kwargs: Any,
        ) -> dict[str, Any]:
            config = copy.deepcopy(FAKE_PROVIDER_CONFIG)
            # The nodes it launches join the head here (they would try port 6379).
            node_ip = ray._private.services.get_node_ip_address()
            config["provider"]["gcs_address"] = f"{node_ip}:{port}"
            config["available_node_types"] = {
                **worker_node_types,
                "ray.head.default": {
                    "resources": head_resources,
                    "node_config": {},
                    "max_workers": 0,
                },
            }
            return {**config, **config_kwargs}

    cluster = LocalAutoscalingCluster(
        head_resources={"CPU": 1},
        worker_node_types={
            "two_cpus": {
                "resources": {"CPU": 2},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 1,
            }
        },
        idle_timeout_minutes=1,
    )
    cluster.start()
    try:
        yield "auto"  # the head binds the node's address, not loopback
    finally:
        cluster.shutdown()


def test_a_study_too_big_for_the_head_gets_a_node_from_the_autoscaler(
    autoscaling_cluster: str, tmp_path: Path
) -> None:
    port, log = free_port(), tmp_path / "serve.log"
    env = {
        **os.environ,
        "HPO_DATA_DIR": str(tmp_path / "data"),
        "HPO_RAY_ADDRESS": autoscaling_cluster,
        "HPO_PREWARM_SLOTS": "false",
    }
    with log.open("w") as out:
        serve = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            client = HpoClient(f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + 90
            while not client.healthy():
                assert serve.poll() is None and time.monotonic() < deadline, (
                    f"hpo serve did not start: {log.read_text()[-2000:]}"
                )
                time.sleep(0.5)
            spec = {
                **FAST_SPEC,
                "name": "needs-a-node",
                "resources": {"cpus_per_trial": 2},
                "budget": {"max_trials": 2, "max_epochs": 2, "parallelism": 1},
            }
            study = client.submit(spec)  # not refused: an autoscaler can add a 2-CPU node
            assert study["state"] == "queued"
            done = client.wait(study["id"], timeout_s=240)
            assert done["state"] == "completed", done
            nodes = client.cluster()["nodes"]
            assert any(n["alive"] and n["cpus"] == 2 for n in nodes), nodes
        finally:
            serve.terminate()
            serve.wait(timeout=60)
