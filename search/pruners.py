"""Pruner specs keyed by `type`; epochs are the resource every pruner counts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field


class _PrunerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoPrunerSpec(_PrunerSpec):
    type: Literal["none"]


class MedianPrunerSpec(_PrunerSpec):
    type: Literal["median"]
    n_startup_trials: int = Field(default=5, ge=0, description="Trials to finish before pruning.")
    n_warmup_epochs: int = Field(default=0, ge=0, description="Epochs a trial runs unpruned.")
    interval_epochs: int = Field(default=1, ge=1)


class AshaPrunerSpec(_PrunerSpec):
    type: Literal["asha"]
    min_epochs: int = Field(default=1, ge=1, description="Epochs of the first rung.")
    reduction_factor: int = Field(default=3, ge=2)
    min_early_stopping_rate: int = Field(default=0, ge=0)


PrunerSpec = Annotated[
    NoPrunerSpec | MedianPrunerSpec | AshaPrunerSpec, Field(discriminator="type")
]


def _none(spec: NoPrunerSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.NopPruner()


def _median(spec: MedianPrunerSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.MedianPruner(
        n_startup_trials=spec.n_startup_trials,
        n_warmup_steps=spec.n_warmup_epochs,
        interval_steps=spec.interval_epochs,
    )


def _asha(spec: AshaPrunerSpec) -> optuna.pruners.BasePruner:
    return optuna.pruners.SuccessiveHalvingPruner(
        min_resource=spec.min_epochs,
        reduction_factor=spec.reduction_factor,
        min_early_stopping_rate=spec.min_early_stopping_rate,
    )


PRUNERS: dict[str, Callable[..., optuna.pruners.BasePruner]] = {
    "none": _none,
    "median": _median,
    "asha": _asha,
}


def build_pruner(
    spec: NoPrunerSpec | MedianPrunerSpec | AshaPrunerSpec,
) -> optuna.pruners.BasePruner:
    """The Optuna pruner for a validated pruner spec."""
    return PRUNERS[spec.type](spec)
