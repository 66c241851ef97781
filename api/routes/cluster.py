"""The shared cluster: nodes, slots, per-tenant usage against share and quota, the queue."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import RuntimeDep, Studies, Tenant
from api.schemas.cluster import ClusterOut
from api.schemas.errors import ERROR_RESPONSES

router = APIRouter(prefix="/api/v1/cluster", tags=["cluster"], responses=ERROR_RESPONSES)


@router.get("", response_model=ClusterOut)
def get_cluster(studies: Studies, tenant: Tenant, runtime: RuntimeDep) -> ClusterOut:
    """Nodes, slots, usage per tenant and the queue; other tenants' studies are not named."""
    scoped_to = tenant if runtime.tenants_by_token else None
    return ClusterOut.of(studies.cluster(tenant=scoped_to))
