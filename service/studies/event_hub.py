"""One poll of the events table per process, fanned out to every open event stream.

Each stream used to poll the table on its own: N dashboards following studies made N
queries every 0.2 s. The hub runs one poller task while anyone listens (the first
subscriber starts it, it ends when the last one leaves), reads the watched studies' new
events in one read (`storage.events.EventFeed`) and puts each on the queues of its
study's subscribers.

Every subscriber keeps its own cursor, the last id it was given, so a stream resuming
after a `Last-Event-ID` and a live one share the poll. A subscriber is fed only while its
queue has room for a whole poll's rows; one that has not drained for `max_stalled_polls`
polls is dropped (its stream ends; the client resumes with `Last-Event-ID`), so a stuck
client holds at most one queue of events, never the study's history.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from service.limits import TenantCap
from service.studies.reads import ACTIVE_STATES
from storage.engine import Engine
from storage.errors import StorageError
from storage.events import EventFeed, FeedBatch
from storage.records import EventRecord

log = logging.getLogger(__name__)
POLL_S = 0.2
BATCH = 500  # events read per poll at most
QUEUE_ROWS = 4 * BATCH  # events a subscriber may have waiting


@dataclass(eq=False)
class Subscription:
    """One stream's place in the hub: its study, its cursor and its queue.

    The queue ends with None: the study ended (or is not the tenant's), or the hub
    dropped a subscriber that did not keep up.
    """

    study_id: int
    tenant: str
    cursor: int
    queue: asyncio.Queue[EventRecord | None] = field(default_factory=asyncio.Queue)
    ended: bool = False
    stalled_polls: int = 0

    async def next_event(self, timeout_s: float) -> EventRecord | None:
        """The next event, None when no more will come; TimeoutError after `timeout_s`
        without one."""
        async with asyncio.timeout(timeout_s):
            return await self.queue.get()

    def end(self, *, drop: bool = False) -> None:
        if drop:  # what it holds is resent after its Last-Event-ID
            while not self.queue.empty():
                self.queue.get_nowait()
        self.ended = True
        self.queue.put_nowait(None)


class EventHub:
    """Subscribers of study events, fed by one shared poll; counts what it does.

    `n_polls` (reads of the feed) and `n_pollers_started` let tests and operators see that
    streams share one poller instead of counting queries by time.
    """

    def __init__(
        self,
        feed: EventFeed,
        *,
        cap: TenantCap,
        poll_s: float = POLL_S,
        max_stalled_polls: int = 150,
    ) -> None:
        self.feed = feed
        self.cap = cap
        self.poll_s = poll_s
        self.max_stalled_polls = max_stalled_polls
        self.n_polls = 0
        self.n_pollers_started = 0
        self.n_dropped = 0
        self._subscribers: set[Subscription] = set()
        self._poller: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @classmethod
    def on(cls, engine: Engine, cap: TenantCap) -> EventHub:
        return cls(EventFeed(engine), cap=cap)

    def n_streams(self, tenant: str) -> int:
        return sum(1 for s in self._subscribers if s.tenant == tenant)

    @contextlib.asynccontextmanager
    async def subscribe(
        self, study_id: int, *, tenant: str, after: int
    ) -> AsyncIterator[Subscription]:
        """A subscription to a study the caller owns, left when the block ends; CapReached
        when the tenant already holds its cap of streams."""
        self.cap.check(self.n_streams(tenant))
        subscription = Subscription(study_id, tenant, after)
        self._subscribers.add(subscription)
        self._ensure_poller()
        try:
            yield subscription
        finally:
            self.leave(subscription)

    def leave(self, subscription: Subscription) -> None:
        """Give the subscription's place back (more than once is harmless)."""
        self._subscribers.discard(subscription)

    def _ensure_poller(self) -> None:
        self._wake.set()  # a new subscriber's first events need not wait a poll interval
        if self._poller is None:
            self.n_pollers_started += 1
            self._poller = asyncio.create_task(self._poll_while_subscribed())

    async def _poll_while_subscribed(self) -> None:
        try:
            while self._subscribers:
                self._wake.clear()
                await self._poll()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_s):
                        await self._wake.wait()
        finally:
            self._poller = None

    async def _poll(self) -> None:
        fed = [s for s in list(self._subscribers) if not s.ended and self._has_room(s)]
        cursors: dict[int, int] = {}
        for s in fed:
            cursors[s.study_id] = min(cursors.get(s.study_id, s.cursor), s.cursor)
        if not cursors:
            return
        self.n_polls += 1
        try:
            batch = await asyncio.to_thread(self.feed.poll, cursors, limit=BATCH)
        except StorageError as exc:  # the next poll tries again; streams send heartbeats
            log.warning("event poll failed: %s", exc)
            return
        for subscription in fed:
            if subscription in self._subscribers:
                _deliver(subscription, batch)

    def _has_room(self, subscription: Subscription) -> bool:
        if subscription.queue.qsize() + BATCH <= QUEUE_ROWS:
            subscription.stalled_polls = 0
            return True
        subscription.stalled_polls += 1
        if subscription.stalled_polls > self.max_stalled_polls:
            self.n_dropped += 1
            subscription.end(drop=True)
            self.leave(subscription)
        return False


def _deliver(subscription: Subscription, batch: FeedBatch) -> None:
    """Queue the subscription's new events; end it once its study can add no more (ended,
    deleted), or at once should the study not be the subscriber's tenant's."""
    study = batch.studies.get(subscription.study_id)
    if study is not None and study.tenant != subscription.tenant:
        subscription.end()
        return
    for study_id, event in batch.events:
        if study_id == subscription.study_id and event.id > subscription.cursor:
            subscription.queue.put_nowait(event)
            subscription.cursor = event.id
    if batch.complete and (study is None or study.state not in ACTIVE_STATES):
        subscription.end()
