"""Liveness: answers while the process serves HTTP."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from api.deps import RuntimeDep, Tenant
from api.schemas import ERROR_RESPONSES

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: ERROR_RESPONSES[401]}

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


class ReadinessOut(BaseModel):
    """`ok`, or what is wrong with each part."""

    status: Literal["ok", "unavailable"]
    database: str
    ray: str


@router.get(
    "/readyz", response_model=ReadinessOut,
    responses={503: {"model": ReadinessOut, "description": "a part is not reachable"},
               **AUTH_ERRORS},
)  # fmt: skip
def readyz(runtime: RuntimeDep, tenant: Tenant) -> JSONResponse:
    """The database and Ray are reachable."""
    checks = runtime.readiness()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503
    )


@router.get("/metrics", response_class=PlainTextResponse, responses=AUTH_ERRORS)
def metrics(runtime: RuntimeDep, tenant: Tenant) -> PlainTextResponse:
    """Prometheus text format: trials, epochs, study states, ask/tell and HTTP latency."""
    assert runtime.studies.metrics is not None
    return PlainTextResponse(runtime.studies.metrics.render(), media_type=CONTENT_TYPE_LATEST)
