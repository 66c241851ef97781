"""Liveness: answers while the process serves HTTP."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import RuntimeDep, Tenant

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "a part is not reachable"}})
def readyz(runtime: RuntimeDep, tenant: Tenant) -> JSONResponse:
    """The database and Ray are reachable."""
    checks = runtime.readiness()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(runtime: RuntimeDep, tenant: Tenant) -> PlainTextResponse:
    """Prometheus text format: trials, epochs, study states, ask/tell and HTTP latency."""
    assert runtime.studies.metrics is not None
    return PlainTextResponse(runtime.studies.metrics.render(), media_type=CONTENT_TYPE_LATEST)
