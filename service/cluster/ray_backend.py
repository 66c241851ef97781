"""The scheduler's hands on Ray: read the nodes, start and end slot actors, ask the
autoscaler for room. Nothing here decides anything (see `service/cluster/scheduler.py`)."""

from __future__ import annotations

import json
import logging
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from service.cluster.fair_share import Shape
from service.cluster.slot_contract import NodeInfo
from workers.slot import create_slot

log = logging.getLogger(__name__)
_AUTOSCALER_STATUS_KEY = b"__autoscaling_status"  # written by Ray's v1 autoscaler monitor


class RaySlotBackend:
    """Slot actors pinned to the node the scheduler chose, so Ray never queues one that
    does not fit there. `allow_cpu_for_gpus`: see Settings."""

    def __init__(self, *, allow_cpu_for_gpus: bool = False):
        self._allow_cpu_for_gpus = allow_cpu_for_gpus

    def nodes(self) -> list[NodeInfo]:
        return [
            NodeInfo(
                node["NodeID"],
                Shape.of(node["Resources"].get("CPU", 0), node["Resources"].get("GPU", 0)),
                alive=bool(node["Alive"]),
            )
            for node in ray.nodes()
        ]

    def create(self, shape: Shape, node_id: str, *, reserved: Shape) -> Any:
        pinned = NodeAffinitySchedulingStrategy(node_id, soft=False)
        actor = create_slot(
            **reserved.ray_options(),
            num_threads=shape.threads(),
            scheduling_strategy=pinned,
            allow_cpu_for_gpus=self._allow_cpu_for_gpus,
        )
        actor.warm_up.remote()  # imports torch meanwhile; its first trial's call waits for it
        return actor

    def kill(self, actor: Any) -> None:
        ray.kill(actor, no_restart=True)

    def request_resources(self, bundles: list[dict[str, float]]) -> None:
        from ray.autoscaler.sdk import request_resources

        try:
            request_resources(bundles=bundles)
        except Exception:  # noqa: BLE001 - a hint to the autoscaler; training goes on
            log.warning("could not tell Ray's autoscaler the demand", exc_info=True)

    def has_autoscaler(self) -> bool:
        """A v2 autoscaler, or a v1 one with node types of its own. Every head runs a v1
        monitor; without an autoscaling config its provider is read-only and names each
        node's type `node_<node id>`, and it can add no node."""
        try:
            from ray.autoscaler.v2.utils import is_autoscaler_v2
            from ray.experimental.internal_kv import _internal_kv_get

            if is_autoscaler_v2(fetch_from_server=True):
                return True
            status = _internal_kv_get(_AUTOSCALER_STATUS_KEY)
            report = json.loads(status).get("autoscaler_report") if status else None
            types = (report or {}).get("active_nodes", {})
            return any(not str(t).startswith("node_") for t in types)
        except Exception:  # noqa: BLE001 - unknown: assume none, so nothing waits forever
            return False
