"""A study's live events as Server-Sent Events (FastAPI's own), resumable with Last-Event-ID.

Streams share one poll of the events table (`service.studies.event_hub`). A stream with nothing
to send sends a `: heartbeat` comment every HPO_EVENT_HEARTBEAT_S, which SSE clients
skip; it ends after HPO_EVENT_IDLE_S of heartbeats only, when its client goes, or when
its study ends, and each way gives its place under max_event_streams_per_tenant back.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import RuntimeDep, Studies, StudyId, Tenant
from api.schemas.errors import ERROR_RESPONSES
from service.limits import TenantCaps
from service.studies.event_hub import EventHub, Subscription

router = APIRouter(prefix="/api/v1/studies", tags=["events"], responses=ERROR_RESPONSES)
# Event ids are 64-bit: a larger one cannot name an event (and overflowed the database).
MAX_EVENT_ID = 2**63 - 1
HEARTBEAT = ServerSentEvent(comment="heartbeat")


async def _owned(study_id: StudyId, studies: Studies, tenant: Tenant) -> int:
    """The study's id; 404 before the stream starts when it is not the caller's."""
    await asyncio.to_thread(functools.partial(studies.get, study_id, tenant=tenant))
    return study_id


async def get_hub(request: Request, runtime: RuntimeDep) -> EventHub:
    """The app's one hub, made by its first stream (async: on the loop, so only once)."""
    hub: EventHub | None = getattr(request.app.state, "event_hub", None)
    if hub is None:
        hub = EventHub.on(runtime.engine, TenantCaps.of(runtime.settings).event_streams)
        request.app.state.event_hub = hub
    return hub


async def _subscription(
    study_id: Annotated[int, Depends(_owned)],
    tenant: Tenant,
    hub: Annotated[EventHub, Depends(get_hub)],
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_EVENT_ID)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Same as Last-Event-ID.")] = 0,
) -> AsyncIterator[Subscription]:
    """A place in the hub for the whole response; 429 when the tenant holds its cap."""
    start = last_event_id if last_event_id is not None else after
    async with hub.subscribe(study_id, tenant=tenant, after=start) as subscription:
        yield subscription


@router.get(
    "/{study_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def study_events(
    subscription: Annotated[Subscription, Depends(_subscription)],
    hub: Annotated[EventHub, Depends(get_hub)],
    request: Request,
    runtime: RuntimeDep,
) -> AsyncIterator[ServerSentEvent]:
    """trial_started, epoch, trial_finished and study events; ends when the study ends."""
    settings = runtime.settings
    quiet_since = time.monotonic()
    try:
        while True:
            try:
                event = await subscription.next_event(settings.event_heartbeat_s)
            except TimeoutError:
                idle = time.monotonic() - quiet_since >= settings.event_idle_s
                if idle or await request.is_disconnected():
                    return
                yield HEARTBEAT
                continue
            if event is None:
                return
            quiet_since = time.monotonic()
            data = {**event.data, "at": event.created_at.isoformat()}
            yield ServerSentEvent(data=data, event=event.kind, id=str(event.id))
    finally:
        hub.leave(subscription)  # before the last bytes go out: a reconnect finds it free
