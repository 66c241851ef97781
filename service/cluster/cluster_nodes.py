"""The cluster's nodes as last read from Ray, re-read every `refresh_s`.

Each read goes to Ray's GCS and may block, so it runs in a thread; one that fails (Ray
may be restarting) is logged and the next tick retries. Whether an autoscaler may add
nodes is read with them: then no shape is refused for its size, and CPU slots reserve
what they use (`service/cluster/slot_pool.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from service.cluster.fair_share import ZERO, Shape
from service.cluster.slot_contract import NodeInfo, SlotBackend

log = logging.getLogger(__name__)


class ClusterNodes:
    """Nodes by id, alive or not, and whether an autoscaler may add more."""

    def __init__(self, backend: SlotBackend, *, refresh_s: float) -> None:
        self._backend = backend
        self._refresh_s = refresh_s
        self._follower: asyncio.Task[None] | None = None
        self.by_id: dict[str, NodeInfo] = {}
        self.autoscaler = False

    async def read(self) -> None:
        nodes = await asyncio.to_thread(self._backend.nodes)
        self.autoscaler = await asyncio.to_thread(self._backend.has_autoscaler)
        self.by_id = {n.node_id: n for n in nodes}

    def follow(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Call `refresh` (which reads the nodes) every `refresh_s` until `stop`."""
        self._follower = asyncio.create_task(self._follow(refresh), name="slot-scheduler")

    async def stop(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    def alive(self) -> set[str]:
        return {n.node_id for n in self.by_id.values() if n.alive}

    def total(self) -> Shape:
        """What the alive nodes offer together: the whole that shares are fractions of."""
        return sum((n.capacity for n in self.by_id.values() if n.alive), ZERO)

    def largest_possible(self) -> list[Shape]:
        """The alive nodes' capacities, or none when an autoscaler may add bigger ones."""
        if self.autoscaler:
            return []
        return [n.capacity for n in self.by_id.values() if n.alive]

    async def _follow(self, refresh: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await refresh()
            except Exception:  # noqa: BLE001 - Ray may be restarting; the next read retries
                log.warning("could not read the cluster's nodes", exc_info=True)
