"""Installed plug-in training tasks: what a study may name as `model: {kind: plugin}`."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Tenant
from api.schemas import ERROR_RESPONSES
from service.tasks import installed_tasks

router = APIRouter(prefix="/api/v1/tasks", tags=["tasks"], responses=ERROR_RESPONSES)


class TaskOut(BaseModel):
    name: str = Field(description="What a spec names: model {kind: plugin, name}.")
    package: str
    version: str
    description: str
    task: str | None = Field(description="classification or regression.")
    provides_data: bool = Field(description="Whether dataset {source: plugin, name} works.")
    hyperparameters: dict[str, bool | int | float | str] = Field(
        description="The task's own hyperparameters and their defaults; every built-in one "
        "applies too."
    )
    error: str | None = Field(description="Why the task failed to load, if it did.")


class TaskList(BaseModel):
    items: list[TaskOut]


@router.get("", response_model=TaskList)
def list_tasks(tenant: Tenant) -> TaskList:
    """Tasks installed on the service (entry points in group `hpo.tasks`)."""
    return TaskList(items=[TaskOut(**asdict(info)) for info in installed_tasks()])
