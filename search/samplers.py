"""Sampler specs keyed by `type`, each built into the Optuna sampler it names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator


class _SamplerSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int | None = None


class TPESamplerSpec(_SamplerSpec):
    type: Literal["tpe"]
    n_startup_trials: int = Field(default=10, ge=0)
    multivariate: bool = False
    group: bool = False

    @model_validator(mode="after")
    def _group_needs_multivariate(self) -> TPESamplerSpec:
        if self.group and not self.multivariate:
            raise ValueError("group: true needs multivariate: true")
        return self


class RandomSamplerSpec(_SamplerSpec):
    type: Literal["random"]


SamplerSpec = Annotated[TPESamplerSpec | RandomSamplerSpec, Field(discriminator="type")]


def _tpe(spec: TPESamplerSpec) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=spec.seed,
        n_startup_trials=spec.n_startup_trials,
        multivariate=spec.multivariate,
        group=spec.group,
        constant_liar=True,
    )


def _random(spec: RandomSamplerSpec) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=spec.seed)


SAMPLERS: dict[str, Callable[..., optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
}


def build_sampler(spec: TPESamplerSpec | RandomSamplerSpec) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for a validated sampler spec."""
    return SAMPLERS[spec.type](spec)
