"""The training vocabulary of a study spec: data set, split and model.

These types belong to `workers`; `service.StudySpec` composes them. They import
no torch, so validating a spec is cheap.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

BUILTIN_DATASET_NAMES = ("digits",)
MODEL_KINDS = ("mlp",)


class BuiltinDataset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["builtin"]
    name: str = Field(description=f"One of {list(BUILTIN_DATASET_NAMES)}.")

    @field_validator("name")
    @classmethod
    def _known(cls, name: str) -> str:
        if name not in BUILTIN_DATASET_NAMES:
            raise ValueError(
                f"unknown builtin dataset '{name}', expected one of {list(BUILTIN_DATASET_NAMES)}"
            )
        return name


class SplitSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    validation: float = Field(default=0.2, gt=0, lt=1)
    test: float = Field(default=0.2, ge=0, lt=1)
    seed: int = 0

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitSpec:
        if self.validation + self.test >= 1:
            raise ValueError(f"validation + test must be < 1, got {self.validation} + {self.test}")
        return self


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["mlp"] = "mlp"
