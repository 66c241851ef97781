"""What the scheduler asks Ray's autoscaler for: room for every busy and waiting trial.

Asked only when something waits, withdrawn when nothing does, and sent only when it
changes (each call goes to the GCS), off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from service.cluster.fair_share import Shape
from service.cluster.slot_contract import SlotBackend


class AutoscalerRequests:
    def __init__(self, backend: SlotBackend):
        self._backend = backend
        self._requested: tuple[str, ...] = ()
        self._background: set[asyncio.Task[Any]] = set()

    def update(self, busy: list[Shape], unmet: list[Shape]) -> None:
        """Ask for one bundle per busy slot and per waiting trial; nothing when none wait."""
        bundles = [shape.bundle() for shape in busy + unmet] if unmet else []
        key = tuple(sorted(str(sorted(b.items())) for b in bundles))
        if key == self._requested:
            return
        self._requested = key
        task = asyncio.create_task(asyncio.to_thread(self._backend.request_resources, bundles))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """Withdraw what was asked, after the requests still on their way."""
        for task in list(self._background):
            with contextlib.suppress(Exception):
                await task
        if self._requested:
            await asyncio.to_thread(self._backend.request_resources, [])
