"""The FastAPI app: built by `create_app(settings)`, started by its lifespan."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from api.errors import install_error_handlers
from api.routes import events, health, schema, studies
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

    app = FastAPI(title="hpo-service", version="0.1.0", lifespan=lifespan)
    install_error_handlers(app)
    app.middleware("http")(_time_requests)
    app.include_router(health.router)
    app.include_router(studies.router)
    app.include_router(schema.router)
    app.include_router(events.router)
    return app


async def _time_requests(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Observe each request's latency by route template (not raw path: ids would explode)."""
    started = time.perf_counter()
    response = await call_next(request)
    runtime = getattr(request.app.state, "runtime", None)
    route = request.scope.get("route")
    if runtime is not None and runtime.studies.metrics is not None and route is not None:
        runtime.studies.metrics.http_seconds.labels(
            request.method, getattr(route, "path", "?"), str(response.status_code)
        ).observe(time.perf_counter() - started)
    return response
