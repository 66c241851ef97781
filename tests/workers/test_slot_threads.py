"""One slot process serves trials of several CPU shapes (a reshapeable slot reserves no
CPUs in Ray; service/cluster/placement.py): each trial sets torch's threads to its own CPUs.

Real Ray: the session's cluster (tests/conftest.py)."""

from __future__ import annotations

from typing import Any

import pytest
import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from tests.workers.test_trainer import prepared
from workers.slot import create_slot

pytestmark = [pytest.mark.ray]


def torch_threads(actor: Any) -> int:
    def read(_slot: Any) -> int:
        import torch

        return int(torch.get_num_threads())

    return int(ray.get(actor.__ray_call__.remote(read), timeout=60))


def test_a_slot_that_reserves_nothing_runs_each_trial_on_its_own_threads(ray_cluster: Any) -> None:
    node = ray.get_runtime_context().get_node_id()
    pinned = NodeAffinitySchedulingStrategy(node, soft=False)
    actor = create_slot(num_cpus=0, num_gpus=0, num_threads=1, scheduling_strategy=pinned)
    try:
        data = ray.put(prepared())
        start = {
            "data_key": "digits",
            "data": data,
            "model": "mlp",
            "objective": "val_accuracy",
            "direction": "maximize",
            "seed": 0,
            "max_epochs": 2,
            "params": {"hidden_units": 32, "lr": 0.05, "batch_size": 64},
        }
        seen = [torch_threads(actor)]
        for threads in (2, 1, 2):
            metrics = ray.get(actor.run_epoch.remote({**start, "threads": threads}), timeout=120)
            assert metrics.metrics["val_accuracy"] > 0.1
            seen.append(torch_threads(actor))
        placed = ray.get(actor.placement.remote(), timeout=60)
    finally:
        ray.kill(actor, no_restart=True)
    assert seen == [1, 2, 1, 2]
    assert placed.node == node
