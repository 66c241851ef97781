"""The StudySpec: what a user submits, composed of the leaves' own input types."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from search.pruners import AshaPrunerSpec, PrunerSpec
from search.samplers import SamplerSpec, TPESamplerSpec
from search.space import CategoricalParam, FloatParam, ParamSpec, draw_order
from service import spec_checks
from workers.hyperparameters import KNOWN_HYPERPARAMETERS, OPTIMIZER_NAMES
from workers.spec import (
    MAXIMIZED_METRICS,
    METRICS,
    BuiltinDataset,
    DatasetSpec,
    ModelSpec,
    SplitSpec,
)

OBJECTIVE_METRICS = tuple(sorted({f"val_{m}" for names in METRICS.values() for m in names}))


def _known_hyperparameter(name: str) -> str:
    if name not in KNOWN_HYPERPARAMETERS:
        raise ValueError(
            f"unknown hyperparameter '{name}', expected one of {sorted(KNOWN_HYPERPARAMETERS)}"
        )
    return name


HyperparameterName = Annotated[str, AfterValidator(_known_hyperparameter)]
FixedValue = bool | int | float | str


def default_space() -> dict[str, ParamSpec]:
    """The space searched when a spec omits `space` (the one in DESIGN.md)."""
    optimizers = list(OPTIMIZER_NAMES)
    return {
        "lr": FloatParam(type="float", low=1e-4, high=0.3, log=True),
        "optimizer": CategoricalParam(type="categorical", choices=list(optimizers)),
        "momentum": FloatParam(
            type="float", low=0.5, high=0.99, when={"optimizer": ["momentum", "nesterov"]}
        ),
        "batch_size": CategoricalParam(type="categorical", choices=[16, 32, 64, 128, 256]),
        "weight_decay": FloatParam(type="float", low=1e-6, high=1e-2, log=True),
        "dropout": FloatParam(type="float", low=0.0, high=0.5),
    }


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Objective(_Strict):
    metric: str = Field(default="val_accuracy", description=f"One of {list(OBJECTIVE_METRICS)}.")
    direction: Literal["maximize", "minimize"] = Field(
        default="maximize",
        description="Inferred from the metric when omitted (loss, rmse, mae: minimize).",
    )

    @model_validator(mode="before")
    @classmethod
    def _infer_direction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("direction") is None:
            metric = str(data.get("metric", "val_accuracy"))
            maximize = metric.removeprefix("val_") in MAXIMIZED_METRICS
            return {**data, "direction": "maximize" if maximize else "minimize"}
        return data

    @model_validator(mode="after")
    def _known_metric(self) -> Objective:
        if self.metric not in OBJECTIVE_METRICS:
            raise ValueError(
                f"metric must be one of {list(OBJECTIVE_METRICS)}, got {self.metric!r}"
            )
        return self


class EarlyStoppingSpec(_Strict):
    patience: int = Field(default=5, ge=1, description="Epochs without gain before stopping.")
    min_delta: float = Field(default=0.0, ge=0, description="Smallest change that counts as gain.")


class Budget(_Strict):
    max_trials: int = Field(default=40, ge=1, le=100_000)
    max_epochs: int = Field(default=30, ge=1, le=10_000)
    parallelism: int = Field(default=2, ge=1, le=1_024)
    timeout_s: float | None = Field(default=None, gt=0)
    target: float | None = Field(default=None, description="Stop once a trial reaches this value.")
    max_failed_trials: int = Field(default=10, ge=1, description="Fail the study at this many.")

    @model_validator(mode="after")
    def _finite_target(self) -> Budget:
        if self.target is not None and not math.isfinite(self.target):
            raise ValueError(f"target must be a finite number, got {self.target}")
        return self


class Resources(_Strict):
    cpus_per_trial: float = Field(default=1, gt=0)
    gpus_per_trial: float = Field(default=0, ge=0)


class StudySpec(_Strict):
    """A study definition; field names are a contract (see DESIGN.md)."""

    name: str = Field(min_length=1, max_length=200)
    dataset: DatasetSpec = BuiltinDataset(source="builtin", name="digits")
    model: ModelSpec = ModelSpec()
    split: SplitSpec = SplitSpec()
    objective: Objective = Objective()
    space: dict[HyperparameterName, ParamSpec] = Field(default_factory=default_space)
    params: dict[HyperparameterName, FixedValue] = Field(default_factory=dict)
    sampler: SamplerSpec = TPESamplerSpec(type="tpe")
    pruner: PrunerSpec = AshaPrunerSpec(type="asha")
    early_stopping: EarlyStoppingSpec = EarlyStoppingSpec()
    budget: Budget = Budget()
    resources: Resources = Resources()

    @field_validator("space")
    @classmethod
    def _space_values(cls, space: dict[str, ParamSpec]) -> dict[str, ParamSpec]:
        spec_checks.check_space_values(space)
        return space

    @field_validator("params")
    @classmethod
    def _fixed_values(cls, params: dict[str, FixedValue]) -> dict[str, FixedValue]:
        spec_checks.check_fixed_values(params)
        return params

    @model_validator(mode="after")
    def _space_is_consistent(self) -> StudySpec:
        both = sorted(set(self.space) & set(self.params))
        if both:
            raise ValueError(f"{both} cannot be both searched (space) and fixed (params)")
        draw_order(self.space, self.params)
        spec_checks.check_optimizer_knobs(self.space, self.params)
        return self

    @model_validator(mode="after")
    def _fits_the_data(self) -> StudySpec:
        spec_checks.check_objective(self.objective.metric, self.dataset)
        spec_checks.check_model(self.model.kind, self.dataset)
        return self

    def fixed_params(self) -> dict[str, Any]:
        return dict(self.params)
