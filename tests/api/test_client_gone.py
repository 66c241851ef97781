"""A client that hangs up on an event stream is no server error (fastapi/fastapi#15725).

Driven through FastAPI's own SSE machinery over ASGI, with a client whose socket is slow
(each body chunk takes a while) and which hangs up mid-stream: the exact moment when
FastAPI's keep-alive task is blocked handing an event on."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.sse import EventSourceResponse, ServerSentEvent

from api.app import create_app
from api.client_gone import ClientGoneMiddleware
from service.settings import Settings


def stream_app(*, fail_at: int | None = None) -> FastAPI:
    app = FastAPI()

    @app.get("/events", response_class=EventSourceResponse)
    async def events() -> AsyncIterator[ServerSentEvent]:
        for i in itertools.count():
            if i == fail_at:
                raise ValueError("a bug in the stream")
            yield ServerSentEvent(data={"i": i}, id=str(i))

    return app


async def slow_client_hangs_up(app: Any, *, after_chunks: int = 5) -> list[dict[str, Any]]:
    """Reads `after_chunks` body chunks at 10 ms each, then disconnects; what it got."""
    got: list[dict[str, Any]] = []
    gone = asyncio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        got.append(message)
        if message["type"] == "http.response.body":
            await asyncio.sleep(0.01)
            if len(got) > after_chunks:
                gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/events",
        "raw_path": b"/events",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    return got


def test_fastapi_alone_raises_when_a_client_hangs_up_mid_stream() -> None:
    """The fault the middleware is for; when FastAPI fixes it, this fails: drop the middleware."""
    with pytest.raises(BaseExceptionGroup) as raised:
        asyncio.run(slow_client_hangs_up(stream_app()))
    assert raised.value.split(anyio.BrokenResourceError)[1] is None


def test_a_client_that_hangs_up_mid_stream_ends_its_response_quietly() -> None:
    got = asyncio.run(slow_client_hangs_up(ClientGoneMiddleware(stream_app())))
    assert got[0]["type"] == "http.response.start" and got[0]["status"] == 200
    bodies = [m["body"] for m in got[1:]]
    assert bodies == [b'data: {"i": %d}\nid: %d\n\n' % (i, i) for i in range(len(bodies))]
    assert len(bodies) == 5


def test_any_other_error_in_a_stream_still_reaches_the_server() -> None:
    with pytest.raises(BaseExceptionGroup) as raised:
        asyncio.run(
            slow_client_hangs_up(ClientGoneMiddleware(stream_app(fail_at=2)), after_chunks=50)
        )
    assert raised.value.split(ValueError)[0] is not None


def test_the_service_app_has_the_middleware(tmp_path: Any) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'hpo.db'}", data_dir=tmp_path))
    assert ClientGoneMiddleware in [m.cls for m in app.user_middleware]
