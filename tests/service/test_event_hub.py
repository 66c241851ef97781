"""The events hub on a real SQLite store: a subscriber that never reads is dropped, and
what it held is let go, instead of the hub queueing a study's history for it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.limits import TenantCap
from service.studies.event_hub import QUEUE_ROWS, EventHub
from storage import Store, create_engine_for, upgrade_schema
from storage.events import EventFeed


def test_a_subscriber_that_never_reads_is_dropped_and_its_queue_let_go(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hpo.db'}"
    upgrade_schema(url)
    engine = create_engine_for(url)
    store = Store(engine)
    study = store.create_study(name="busy", spec={}, direction="maximize")
    with store.batch():
        for n in range(QUEUE_ROWS + 600):
            store.set_study_state(study.id, ("running", "queued")[n % 2])
    hub = EventHub(EventFeed(engine), cap=TenantCap("cap", 2), poll_s=0.001, max_stalled_polls=3)

    async def main() -> tuple[int, int, object]:
        async with hub.subscribe(study.id, tenant="default", after=0) as stuck:
            while not stuck.ended:
                await asyncio.sleep(0.001)
            held = stuck.queue.qsize()
            return held, hub.n_streams("default"), await stuck.next_event(1.0)

    try:
        held, streams, last = asyncio.run(main())
    finally:
        engine.dispose()
    assert (hub.n_dropped, held, streams, last) == (1, 1, 0, None)
    assert hub.n_pollers_started == 1
