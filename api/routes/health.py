"""Liveness: answers while the process serves HTTP."""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from api.deps import Credentials, RuntimeDep, Tenant, get_tenant
from api.schemas.errors import ERROR_RESPONSES
from api.schemas.health import ReadinessOut

AUTH_ERRORS: dict[int | str, dict[str, Any]] = {401: ERROR_RESPONSES[401]}

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=ReadinessOut,
    responses={
        503: {"model": ReadinessOut, "description": "a part is not reachable"},
        **AUTH_ERRORS,
    },
)
def readyz(runtime: RuntimeDep, tenant: Tenant) -> JSONResponse:
    """The database and Ray are reachable."""
    checks = runtime.readiness()
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ready else "unavailable", **checks}, 200 if ready else 503
    )


def metrics_scope(credentials: Credentials, runtime: RuntimeDep) -> str | None:
    """Whose series /metrics shows: None for all of them (no tenant tokens, or the operator's
    HPO_METRICS_TOKEN), else the caller's tenant; 401 for any other token."""
    operator = runtime.settings.metrics_token
    if operator is not None and operator.get_secret_value() and credentials is not None:
        given = credentials.credentials.strip().encode()
        if hmac.compare_digest(operator.get_secret_value().encode(), given):
            return None
    tenant = get_tenant(credentials, runtime)
    return tenant if runtime.tenants_by_token else None


@router.get("/metrics", response_class=PlainTextResponse, responses=AUTH_ERRORS)
def metrics(
    runtime: RuntimeDep, scope: Annotated[str | None, Depends(metrics_scope)]
) -> PlainTextResponse:
    """Prometheus text format: trials, epochs, study states, ask/tell and HTTP latency; a
    tenant's token sees its own per-tenant series and an `others` total."""
    assert runtime.studies.metrics is not None
    body = runtime.studies.metrics.render(tenant=scope)
    return PlainTextResponse(body, media_type=CONTENT_TYPE_LATEST)
