"""Pruner specs keyed by `type`; epochs are the resource every pruner counts.

Epochs count from 1 and are Optuna's steps. `n_warmup_epochs: w` means a trial
trains w epochs before it can be pruned (Optuna's n_warmup_steps = w + 1).
`patient` wraps any other pruner (or none): it prunes once the best value of the
last `patience` + 1 epochs is worse than the best before them by more than
`min_delta`, and then only if the wrapped pruner agrees. `threshold` prunes a
trial whose value leaves [lower, upper].
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _PrunerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class NoPrunerSpec(_PrunerSpec):
    type: Literal["none"]


class MedianPrunerSpec(_PrunerSpec):
    type: Literal["median"]
    n_startup_trials: int = Field(default=5, ge=0, description="Trials to finish before pruning.")
    n_warmup_epochs: int = Field(default=0, ge=0, description="Epochs before pruning may start.")
    interval_epochs: int = Field(default=1, ge=1)
    n_min_trials: int = Field(
        default=1, ge=1, description="Trials reporting an epoch before it prunes."
    )


class PercentilePrunerSpec(MedianPrunerSpec):
    type: Literal["percentile"]  # type: ignore[assignment]
    percentile: float = Field(ge=0, le=100, description="Keep trials in the best percentile.")


class AshaPrunerSpec(_PrunerSpec):
    type: Literal["asha"]
    min_epochs: int = Field(default=1, ge=1, description="Epochs of the first rung.")
    reduction_factor: int = Field(default=3, ge=2)
    min_early_stopping_rate: int = Field(default=0, ge=0)
    bootstrap_count: int = Field(default=0, ge=0)


class HyperbandPrunerSpec(_PrunerSpec):
    type: Literal["hyperband"]
    min_epochs: int = Field(default=1, ge=1)
    max_epochs: int | None = Field(default=None, ge=1, description="Default: budget.max_epochs.")
    reduction_factor: int = Field(default=3, ge=2)
    bootstrap_count: int = Field(default=0, ge=0)


class ThresholdPrunerSpec(_PrunerSpec):
    type: Literal["threshold"]
    lower: float | None = None
    upper: float | None = None
    n_warmup_epochs: int = Field(default=0, ge=0)
    interval_epochs: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _a_bound(self) -> ThresholdPrunerSpec:
        if self.lower is None and self.upper is None:
            raise ValueError("threshold needs lower, upper or both")
        if self.lower is not None and self.upper is not None and self.lower > self.upper:
            raise ValueError(f"lower must be <= upper, got lower={self.lower}, upper={self.upper}")
        return self


class PatientPrunerSpec(_PrunerSpec):
    type: Literal["patient"]
    patience: int = Field(ge=0, description="Epochs without improvement before pruning.")
    min_delta: float = Field(default=0.0, ge=0)
    wrapped: PrunerSpec | None = Field(default=None, description="Pruner consulted after patience.")


PrunerSpec = Annotated[
    NoPrunerSpec
    | MedianPrunerSpec
    | PercentilePrunerSpec
    | AshaPrunerSpec
    | HyperbandPrunerSpec
    | ThresholdPrunerSpec
    | PatientPrunerSpec,
    Field(discriminator="type"),
]
PatientPrunerSpec.model_rebuild()


def _none(spec: NoPrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def _median(spec: MedianPrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.n_startup_trials,
        n_warmup_steps=spec.n_warmup_epochs + 1,
        interval_steps=spec.interval_epochs,
        n_min_trials=spec.n_min_trials,
    )


def _percentile(spec: PercentilePrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.PercentilePruner(
        spec.percentile,
        n_startup_trials=spec.n_startup_trials,
        n_warmup_steps=spec.n_warmup_epochs + 1,
        interval_steps=spec.interval_epochs,
        n_min_trials=spec.n_min_trials,
    )


def _asha(spec: AshaPrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=spec.min_epochs,
        reduction_factor=spec.reduction_factor,
        min_early_stopping_rate=spec.min_early_stopping_rate,
        bootstrap_count=spec.bootstrap_count,
    )


def _hyperband(spec: HyperbandPrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.HyperbandPruner(
        min_resource=spec.min_epochs,
        max_resource=spec.max_epochs or max_epochs,
        reduction_factor=spec.reduction_factor,
        bootstrap_count=spec.bootstrap_count,
    )


def _threshold(spec: ThresholdPrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    return optuna.pruners.ThresholdPruner(
        lower=spec.lower,
        upper=spec.upper,
        n_warmup_steps=spec.n_warmup_epochs + 1,
        interval_steps=spec.interval_epochs,
    )


def _patient(spec: PatientPrunerSpec, max_epochs: int) -> optuna.pruners.BasePruner:
    wrapped = build_pruner(spec.wrapped, max_epochs=max_epochs) if spec.wrapped else None
    return optuna.pruners.PatientPruner(wrapped, patience=spec.patience, min_delta=spec.min_delta)


PRUNERS: dict[str, Callable[[Any, int], optuna.pruners.BasePruner]] = {
    "none": _none,
    "median": _median,
    "percentile": _percentile,
    "asha": _asha,
    "hyperband": _hyperband,
    "threshold": _threshold,
    "patient": _patient,
}


def build_pruner(spec: Any, *, max_epochs: int) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a validated pruner spec; `max_epochs` bounds hyperband."""
    return PRUNERS[spec.type](spec, max_epochs)
