"""The training vocabulary of a study spec: data set, split and model.

These types belong to `workers`; `service.StudySpec` composes them. They import
no torch, so validating a spec is cheap.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from workers.tasks import NAME_PATTERN

Task = Literal["classification", "regression"]
BUILTIN_TASKS: dict[str, Task] = {
    "digits": "classification",
    "synthetic-classification": "classification",
    "synthetic-regression": "regression",
}
METRICS: dict[str, tuple[str, ...]] = {
    "classification": ("loss", "accuracy", "f1"),
    "regression": ("loss", "rmse", "mae", "r2"),
}
MAXIMIZED_METRICS = ("accuracy", "f1", "r2")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class BuiltinDataset(_Strict):
    """A data set that ships with the service: scikit-learn's digits or a seeded synthetic set."""

    source: Literal["builtin"]
    name: Literal["digits", "synthetic-classification", "synthetic-regression"]
    seed: int = Field(default=0, description="Seed of the synthetic generators.")

    @property
    def task(self) -> Task | None:
        return BUILTIN_TASKS[self.name]


class PathDataset(_Strict):
    """A file under one of the service's data roots: features plus a target column or array."""

    source: Literal["path"]
    path: str = Field(min_length=1, max_length=1000)
    format: Literal["csv", "parquet", "npz"] | None = Field(
        default=None, description="Inferred from the file's suffix when omitted."
    )
    target: str = Field(default="target", min_length=1, description="Target column or array.")
    task: Task | None = Field(default=None, description="Inferred from the target when omitted.")

    @model_validator(mode="after")
    def _known_format(self) -> PathDataset:
        if self.format is None and PurePath(self.path).suffix.lstrip(".") not in _FORMATS:
            raise ValueError(
                f"cannot infer format from '{self.path}': give format (csv, parquet, npz)"
            )
        return self

    @property
    def file_format(self) -> str:
        return self.format or PurePath(self.path).suffix.lstrip(".")


class UploadedDataset(_Strict):
    """A file uploaded through POST /api/v1/datasets, named by the id it was given."""

    source: Literal["uploaded"]
    id: str = Field(pattern=r"^[0-9a-f]{12,32}$")

    @property
    def task(self) -> Task | None:
        return None


class PluginDataset(_Strict):
    """The data an installed plug-in task makes itself (see workers.tasks)."""

    source: Literal["plugin"]
    name: str = Field(pattern=NAME_PATTERN, description="An installed task's name.")
    seed: int = Field(default=0, description="Passed to the task's load_data.")

    @property
    def task(self) -> Task | None:
        from workers.tasks import TaskError, load_task

        try:
            return load_task(self.name).task
        except TaskError:
            return None  # StudySpec reports the name with what is installed


_FORMATS = ("csv", "parquet", "npz")
DatasetSpec = Annotated[
    BuiltinDataset | PathDataset | UploadedDataset | PluginDataset, Field(discriminator="source")
]


class SplitSpec(_Strict):
    validation: float = Field(default=0.2, gt=0, lt=1)
    test: float = Field(default=0.2, ge=0, lt=1)
    seed: int = 0
    folds: int | None = Field(
        default=None,
        ge=2,
        le=20,
        description="k-fold cross-validation on the non-test part; replaces `validation`.",
    )

    @model_validator(mode="after")
    def _leaves_training_data(self) -> SplitSpec:
        if self.folds is None and self.validation + self.test >= 1:
            raise ValueError(f"validation + test must be < 1, got {self.validation} + {self.test}")
        return self


class ModelSpec(_Strict):
    kind: Literal["mlp", "cnn", "plugin"] = Field(
        default="mlp", description="cnn needs image data (N,C,H,W); plugin needs `name`."
    )
    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="With kind plugin: an installed task's name (GET /api/v1/tasks).",
    )

    @model_validator(mode="after")
    def _name_iff_plugin(self) -> ModelSpec:
        if (self.kind == "plugin") != (self.name is not None):
            raise ValueError("model.name is required with kind plugin, and only then")
        return self

    @property
    def key(self) -> str:
        """What a worker builds: `mlp`, `cnn` or `plugin:<name>`."""
        return f"plugin:{self.name}" if self.kind == "plugin" else self.kind
