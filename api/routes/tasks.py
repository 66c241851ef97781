"""Installed plug-in training tasks: what a study may name as `model: {kind: plugin}`."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter

from api.deps import Tenant
from api.schemas.errors import ERROR_RESPONSES
from api.schemas.tasks import TaskList, TaskOut
from service.tasks import installed_tasks

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


@router.get("", response_model=TaskList)
def list_tasks(tenant: Tenant) -> TaskList:
    """Tasks installed on the service (entry points in group `hpo.tasks`)."""
    return TaskList(items=[TaskOut(**asdict(info)) for info in installed_tasks()])
