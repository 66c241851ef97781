"""The study spec's JSON Schema, for editors, generators and validation before submitting."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Tenant
from api.schemas.errors import ERROR_RESPONSES
from service.spec import StudySpec

router = APIRouter(prefix="/api/v1/schema", tags=["schema"], responses=ERROR_RESPONSES)


@router.get("/study")
def study_schema(tenant: Tenant) -> dict[str, Any]:
    """JSON Schema of the study spec that POST /api/v1/studies accepts."""
    return StudySpec.model_json_schema()
