"""The sections a study spec is built of (objective, budget, checkpoints, resources) and
the names it accepts for metrics and hyperparameters: `service.spec` composes them."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from search.space import CategoricalParam, FloatParam, ParamSpec
from service.suggest import did_you_mean
from workers.hyperparameters import KNOWN_HYPERPARAMETERS, OPTIMIZER_NAMES
from workers.spec import MAXIMIZED_METRICS, METRICS
from workers.tasks import declared_hyperparameters

COST_METRICS = ("train_seconds", "n_params")
OBJECTIVE_METRICS = (
    *sorted({f"val_{m}" for names in METRICS.values() for m in names}),
    *COST_METRICS,
)


def _known_hyperparameter(name: str) -> str:
    """A built-in hyperparameter, or one an installed plug-in task declares (StudySpec
    then checks that the study's model is that task)."""
    if name not in KNOWN_HYPERPARAMETERS and name not in declared_hyperparameters():
        known = sorted(KNOWN_HYPERPARAMETERS)
        raise ValueError(
            f"unknown hyperparameter '{name}', expected one of {known} or one the study's "
            f"plug-in task declares{did_you_mean(name, known)}"
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
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Objective(_Strict):
    metric: str = Field(
        default="val_accuracy",
        description=f"One of {list(OBJECTIVE_METRICS)}; the cost metrics suit a second objective.",
    )
    direction: Literal["maximize", "minimize"] = Field(
        default="maximize",
        description="Inferred from the metric when omitted (loss, rmse, mae and costs: minimize).",
    )

    @model_validator(mode="before")
    @classmethod
    def _infer_direction(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("direction") is None:
            metric = str(data.get("metric", "val_accuracy"))
            maximize = metric.removeprefix("val_") in MAXIMIZED_METRICS
            return {**data, "direction": "maximize" if maximize else "minimize"}
        return data

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, metric: str) -> str:
        if metric not in OBJECTIVE_METRICS:
            raise ValueError(
                f"metric must be one of {list(OBJECTIVE_METRICS)}, got {metric!r}"
                + did_you_mean(metric, OBJECTIVE_METRICS)
            )
        return metric


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
    max_retries: int = Field(
        default=2, ge=0, le=10, description="Re-runs of a config whose worker was lost."
    )
    trial_timeout_s: float | None = Field(
        default=None, gt=0, description="End a trial (cancelled) that runs longer than this."
    )

    @model_validator(mode="after")
    def _finite_target(self) -> Budget:
        if self.target is not None and not math.isfinite(self.target):
            raise ValueError(f"target must be a finite number, got {self.target}")
        return self


class CheckpointSpec(_Strict):
    enabled: bool = Field(
        default=True,
        description="Save each trial's state (weights, optimizer, schedule, early-stopping "
        "state, random generators) so that a lost worker, a restart, a pause or a preemption "
        "costs at most a checkpoint interval of epochs.",
    )
    every_epochs: int | None = Field(
        default=None,
        ge=1,
        le=10_000,
        description="Save every this many epochs; default: as often as keeps saving under "
        "2% of training time (every epoch for epochs of a second or more).",
    )


class SchedulePoint(_Strict):
    from_epoch: int = Field(ge=2, le=10_000, description="The value holds from this epoch on.")
    value: float | int


class Resources(_Strict):
    # Ray counts resources to 1/10000; a slot smaller than 1/100 of a CPU or GPU is a typo.
    cpus_per_trial: float = Field(default=1, ge=0.01, le=1024)
    gpus_per_trial: float = Field(default=0, ge=0, le=64)

    @field_validator("gpus_per_trial")
    @classmethod
    def _whole_or_a_real_fraction(cls, gpus: float) -> float:
        if 0 < gpus < 0.01:
            raise ValueError(f"gpus_per_trial must be 0 or at least 0.01, got {gpus}")
        return gpus
