"""Where a study's next trial is drawn: on the event loop while its draws are quick, in a
worker thread once they are not.

Every study's driver, the scheduler and the HTTP API share the service's event loop. A
draw on it holds all of them for as long as it takes. That is fine for a draw of a few
milliseconds, and a thread hop would cost more than it saves (bench/README.md,
"Orchestration cost"). It is not fine for TPE over ten thousand trials (0.4 s a draw;
3 s at 100,000) or a Gaussian process (50 ms to seconds). Those draws run in a worker
thread. Optuna's in-memory storage takes a lock, and the GIL passes between threads every
few milliseconds, so the loop keeps answering while a draw goes on.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import optuna

from service.run.optuna_bridge import OptunaBridge, Write

# A draw that held its thread's CPU this long or longer (its GIL time, not its waits for
# the GIL) sends the study's next draw to a thread.
INLINE_LIMIT_S = 0.02
# Draws hold the GIL for most of their time: more threads would not draw faster. They
# are kept apart from asyncio's default executor, so that a long draw never delays the
# service's other blocking calls.
_DRAWS = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hpo-draw")


class Drawer:
    """Draws one study's trials from its bridge; at most one at a time in a thread, so
    that trials get their numbers in the order their jobs were taken."""

    def __init__(self, bridge: OptunaBridge):
        self._bridge = bridge
        # A slow sampler's draws are slow from its first model-based one on.
        self._always_off_loop = bridge.spec.sampler.traits.slow
        self._lock = asyncio.Lock()
        # The CPU time of the last draw; None before the first, which runs in a thread (a
        # resumed study may hold thousands of trials).
        self.last_s: float | None = None

    @property
    def off_loop(self) -> bool:
        """Whether the next draw runs in a worker thread."""
        return self._always_off_loop or self.last_s is None or self.last_s >= INLINE_LIMIT_S

    async def ask(
        self, fixed: dict[str, Any] | None = None
    ) -> tuple[optuna.Trial, dict[str, Any], Write]:
        """OptunaBridge.ask, on the loop or in a thread as above."""
        if not self.off_loop and not self._lock.locked():
            return self._timed_ask(fixed)
        async with self._lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(_DRAWS, self._timed_ask, fixed)

    def _timed_ask(
        self, fixed: dict[str, Any] | None
    ) -> tuple[optuna.Trial, dict[str, Any], Write]:
        started = time.thread_time()
        try:
            return self._bridge.ask(fixed)
        finally:
            self.last_s = time.thread_time() - started
