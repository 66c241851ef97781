"""An installed plug-in training task: what a study may name as `model: {kind: plugin}`."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
