"""ETags and 304s for the API's JSON reads, so that pollers (the dashboard, scripts that
wait on a study) revalidate instead of downloading what they already hold.

Every successful JSON answer to a GET carries a strong ETag, a hash of its body; a
request whose `If-None-Match` names it gets `304 Not Modified` without the body. A route
may set its own `Cache-Control` (a finished trial never changes: clients may keep it a
while); anything else is `private, no-cache`: kept, but revalidated before each use.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REVALIDATE = "private, no-cache"


def etag_of(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


def matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110's weak comparison of If-None-Match against our strong tag."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = (t.strip().removeprefix("W/") for t in if_none_match.split(","))
    return etag in tags


class ConditionalGetMiddleware:
    """Buffers GET answers of JSON under `prefix` (small pages by design) to tag them."""

    def __init__(self, app: ASGIApp, *, prefix: str = "/api/"):
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        if_none_match = Headers(scope=scope).get("if-none-match")
        start: Message | None = None
        chunks: list[bytes] = []

        async def tagging_send(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                headers = Headers(raw=message["headers"])
                json = headers.get("content-type", "").startswith("application/json")
                if message["status"] == 200 and json:
                    start = message  # held until the body is whole
                    return
                await send(message)
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await self._send_tagged(start, b"".join(chunks), if_none_match, send)

        await self.app(scope, receive, tagging_send)

    @staticmethod
    async def _send_tagged(
        start: Message, body: bytes, if_none_match: str | None, send: Send
    ) -> None:
        etag = etag_of(body)
        headers = MutableHeaders(raw=list(start["headers"]))
        headers["etag"] = etag
        if "cache-control" not in headers:
            headers["cache-control"] = REVALIDATE
        if matches(if_none_match, etag):
            del headers["content-length"]
            if "content-type" in headers:
                del headers["content-type"]
            await send({"type": "http.response.start", "status": 304, "headers": headers.raw})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({**start, "headers": headers.raw})
        await send({"type": "http.response.body", "body": body})
