"""The FastAPI app: built by `create_app(settings)`, started by its lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.body_limit import BodyLimitMiddleware
from api.client_gone import ClientGoneMiddleware
from api.conditional import ConditionalGetMiddleware
from api.errors import install_error_handlers
from api.routes import (
    cluster,
    dashboard,
    datasets,
    docs,
    events,
    health,
    insights,
    schema,
    studies,
    tasks,
)
from service.runtime import open_runtime
from service.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    """An app whose lifespan migrates the store, connects Ray and runs study drivers."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = await open_runtime(settings)
        app.state.runtime = runtime
        try:
            yield
        finally:
            await runtime.close()

    # Operation ids are the handlers' names (`submit_study`), which generated clients use.
    # /docs and /redoc come from api/routes/docs.py, over files shipped in the package.
    app = FastAPI(
        title="hpo-service",
        version="0.1.0",
        lifespan=lifespan,
        generate_unique_id_function=lambda route: route.name,
        docs_url=None,
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(RequestTimer)
    multipart_slack = 64 * 1024
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_request_bytes,
        overrides={"/api/v1/datasets": settings.max_upload_bytes + multipart_slack},
    )
    app.add_middleware(ClientGoneMiddleware)  # outermost: sees what reaches uvicorn
    app.include_router(health.router)
    app.include_router(studies.router)
    app.include_router(cluster.router)
    app.include_router(schema.router)
    app.include_router(events.router)
    app.include_router(datasets.router)
    app.include_router(insights.router)
    app.include_router(tasks.router)
    app.include_router(docs.router)
    app.include_router(dashboard.router)
    return app


class RequestTimer:
    """Observe each request's latency by route template (raw paths would explode the labels).

    Pure ASGI: a BaseHTTPMiddleware would swallow errors raised while the body streams in.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            _observe(scope, status, time.perf_counter() - started)


def _observe(scope: Scope, status: int, seconds: float) -> None:
    runtime = getattr(scope["app"].state, "runtime", None)
    route = scope.get("route")
    if runtime is None or runtime.studies.metrics is None or route is None:
        return
    labels = (scope["method"], getattr(route, "path", "?"), str(status))
    runtime.studies.metrics.http_seconds.labels(*labels).observe(seconds)
