"""A client that hangs up mid-stream is normal, not a server error.

FastAPI's Server-Sent Events forward each event through a keep-alive task. When the client
closes while that task is handing an event on, anyio raises `BrokenResourceError` in it,
and the task group's `ExceptionGroup` reaches uvicorn, which logs a traceback as
"Exception in ASGI application" for every early disconnect (fastapi/fastapi#15725, not
fixed upstream). Only that case is swallowed here: a group made of nothing but closed- or
broken-stream errors, after the response has started. Anything else propagates.
"""

from __future__ import annotations

import logging

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
_GONE = (anyio.BrokenResourceError, anyio.ClosedResourceError)


class ClientGoneMiddleware:
    """Ends a streamed response quietly when its client went away mid-stream."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_started(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_started)
        except BaseExceptionGroup as group:
            if not (started and _only_gone(group)):
                raise
            log.debug("client left %s mid-stream", scope.get("path"))


def _only_gone(group: BaseExceptionGroup) -> bool:
    rest = group.split(_GONE)[1]
    return rest is None
