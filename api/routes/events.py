"""A study's live events as Server-Sent Events (FastAPI's own), resumable with Last-Event-ID."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.deps import Studies, StudyId, Tenant
from api.schemas import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/studies", tags=["events"], responses=ERROR_RESPONSES)
POLL_S = 0.2
# Event ids are 64-bit: a larger one cannot name an event (and overflowed the database).
MAX_EVENT_ID = 2**63 - 1


async def _owned(study_id: StudyId, studies: Studies, tenant: Tenant) -> int:
    """The study's id; 404 before the stream starts when it is not the caller's."""
    await asyncio.to_thread(functools.partial(studies.get, study_id, tenant=tenant))
    return study_id


@router.get(
    "/{study_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def study_events(
    study_id: Annotated[int, Depends(_owned)],
    request: Request,
    studies: Studies,
    tenant: Tenant,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_EVENT_ID)] = None,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Same as Last-Event-ID.")] = 0,
) -> AsyncIterator[ServerSentEvent]:
    """trial_started, epoch, trial_finished and study events; ends when the study ends."""
    last = last_event_id if last_event_id is not None else after
    while not await request.is_disconnected():
        found, ended = await asyncio.to_thread(
            functools.partial(studies.events, study_id, after=last, tenant=tenant)
        )
        for event in found:
            last = event.id
            data = {**event.data, "at": event.created_at.isoformat()}
            yield ServerSentEvent(data=data, event=event.kind, id=str(event.id))
        if ended and not found:
            return
        if not found:
            await asyncio.sleep(POLL_S)
