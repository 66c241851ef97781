"""A study's live events as Server-Sent Events, resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from api.deps import Studies, StudyId, Tenant
from api.schemas import ERROR_RESPONSES
from service.studies import StudyService

router = APIRouter(prefix="/api/v1/studies", tags=["events"], responses=ERROR_RESPONSES)
POLL_S = 0.2
KEEPALIVE_S = 15.0
# Event ids are 64-bit: a larger one cannot name an event (and overflowed the database).
MAX_EVENT_ID = 2**63 - 1


@router.get(
    "/{study_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def study_events(
    study_id: StudyId,
    request: Request,
    studies: Studies,
    tenant: Tenant,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_EVENT_ID)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Same as Last-Event-ID.")] = 0,
) -> StreamingResponse:
    """trial_started, epoch, trial_finished and study events; ends when the study ends."""
    start = last_event_id if last_event_id is not None else after
    await asyncio.to_thread(lambda: studies.get(study_id, tenant=tenant))  # 404 before streaming
    return StreamingResponse(
        _stream(studies, study_id, start, request, tenant), media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )  # fmt: skip


async def _stream(
    studies: StudyService, study_id: int, last: int, request: Request, tenant: str
) -> AsyncIterator[str]:
    idle_s = 0.0
    while not await request.is_disconnected():
        found, ended = await asyncio.to_thread(
            functools.partial(studies.events, study_id, after=last, tenant=tenant)
        )
        for event in found:
            last = event.id
            data = json.dumps({**event.data, "at": event.created_at.isoformat()})
            yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"
        if found:
            idle_s = 0.0
            continue
        if ended:
            return
        await asyncio.sleep(POLL_S)
        idle_s += POLL_S
        if idle_s >= KEEPALIVE_S:
            idle_s = 0.0
            yield ": keep-alive\n\n"
