"""The FastAPI app: built by `create_app(settings)`, started by its lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

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
    app.include_router(health.router)
    app.include_router(studies.router)
    app.include_router(schema.router)
    app.include_router(events.router)
    return app
