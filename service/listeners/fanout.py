"""The registered listeners, each fed by a bounded queue of its own (see `contract`).

`tell` may be called from any thread (a study's writer thread tells once its batch has
committed); it hands the event to the loop and returns at once. On the loop each
listener has a queue and, while the queue holds events, one task that awaits the
listener on each in turn: a slow listener delays only its own events, a raising one is
logged, and neither holds up a study or another listener.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from service.listeners.contract import StudyListener, StudyTransition, TrialEnded

log = logging.getLogger(__name__)

Event = TrialEnded | StudyTransition
QUEUE_SIZE = 10_000  # events a listener may fall behind before it misses the newer ones


class Listeners:
    """Whoever listens to the studies of one service."""

    def __init__(self, listeners: Iterable[StudyListener] = (), *, queue_size: int = QUEUE_SIZE):
        self._listeners = list(listeners)
        self._queue_size = queue_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._feeds: list[_Feed] = []

    def bind(self) -> None:
        """Deliver on the running loop: the service's entry points call it, so that a
        service used from one `asyncio.run` after another tells on the current one."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._feeds = [_Feed(listener, self._queue_size) for listener in self._listeners]
            self._loop = loop

    def tell(self, event: Event) -> None:
        """Queue `event` for every listener; from any thread, never blocking or raising."""
        if not self._listeners:
            return
        loop = self._loop
        if loop is None:
            log.warning("no listener is told of %s: the service was never started", event)
            return
        try:
            loop.call_soon_threadsafe(self._put, event)
        except RuntimeError:  # the loop has closed: the service stopped
            log.warning("no listener is told of %s: the service has stopped", event)

    def _put(self, event: Event) -> None:
        for feed in self._feeds:
            feed.put(event)

    async def close(self, *, timeout_s: float = 5.0) -> None:
        """Let each listener take what it was told, for up to `timeout_s`; then stop it."""
        await asyncio.sleep(0)  # events told from threads just now reach the queues first
        tasks = [feed.task for feed in self._feeds if feed.task is not None]
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        for task in pending:
            log.warning(
                "listener task %s did not finish in %s s: cancelled", task.get_name(), timeout_s
            )
            task.cancel()


class _Feed:
    """One listener's queue, and the task that awaits the listener while it holds events."""

    def __init__(self, listener: StudyListener, size: int):
        self.listener = listener
        self.name = getattr(listener, "name", None) or type(listener).__qualname__
        self.queue: asyncio.Queue[Event] = asyncio.Queue(size)
        self.task: asyncio.Task[None] | None = None
        self.n_missed = 0

    def put(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.n_missed += 1
            log.warning(
                "listener %s is %d events behind: it misses %s (%d missed)",
                self.name,
                self.queue.qsize(),
                event,
                self.n_missed,
            )
            return
        if self.task is None:
            self.task = asyncio.create_task(self._drain(), name=f"listener-{self.name}")

    async def _drain(self) -> None:
        try:
            while not self.queue.empty():
                event = self.queue.get_nowait()
                try:
                    await _deliver(self.listener, event)
                except Exception:  # noqa: BLE001 - a listener's fault stops no study
                    log.exception("listener %s raised on %s; the study goes on", self.name, event)
        finally:
            self.task = None


async def _deliver(listener: StudyListener, event: Event) -> None:
    if isinstance(event, TrialEnded):
        await listener.on_trial_ended(event)
    else:
        await listener.on_study_state(event)
