"""Dependencies that hand handlers the service objects built at start-up."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.runtime import Runtime
from service.studies.insights import InsightService
from service.studies.study_service import DEFAULT_TENANT, StudyService


def get_runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def get_studies(runtime: Annotated[Runtime, Depends(get_runtime)]) -> StudyService:
    return runtime.studies


def get_insights(runtime: Annotated[Runtime, Depends(get_runtime)]) -> InsightService:
    assert runtime.insights is not None, "open_runtime builds the insights"
    return runtime.insights


Studies = Annotated[StudyService, Depends(get_studies)]
Insights = Annotated[InsightService, Depends(get_insights)]
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


# Declares the scheme in the OpenAPI document (Swagger's Authorize button); the check is ours,
# since without HPO_API_TOKENS no token is needed at all.
bearer = HTTPBearer(auto_error=False, description="A token of HPO_API_TOKENS, when it is set.")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def get_tenant(credentials: Credentials, runtime: RuntimeDep) -> str:
    """The caller's tenant: from its bearer token when tokens are configured."""
    if not runtime.tenants_by_token:
        return DEFAULT_TENANT
    if credentials is not None:
        token = credentials.credentials.strip().encode()
        for known, tenant in runtime.tenants_by_token.items():
            if hmac.compare_digest(known.encode(), token):
                return tenant
    raise HTTPException(
        401, "a valid `Authorization: Bearer <token>` is required", {"WWW-Authenticate": "Bearer"}
    )


Tenant = Annotated[str, Depends(get_tenant)]


# Ids beyond 64-bit integers cannot name a row: refuse them (422) before the database does.
StudyId = Annotated[int, Path(ge=0, le=2**63 - 1, description="A study's id.")]
TrialNumber = Annotated[int, Path(ge=0, le=2**31 - 1, description="A trial's number.")]
