"""Population-based training (PBT): the spec section and its pure rules.

A PBT study trains `size` members at once. Every `interval_epochs`, a member whose
latest score is in the bottom `quantile` of the population copies the weights and
hyperparameters of a member in the top `quantile` (exploit) and changes the listed
hyperparameters (explore: multiply by one of the `perturb` factors, or draw afresh
from the space), as Ray Tune's PopulationBasedTraining does. The rest train on
unchanged. Nothing here does I/O; the service applies the decisions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from search.direction import cost
from search.space import CategoricalParam, FloatParam, IntParam, ParamSpec

# What a running trial can change between two epochs without rebuilding what it has
# learnt: optimizer knobs (set on its param groups) and regularizers read every epoch.
MUTABLE = frozenset(
    {
        "lr",
        "momentum",
        "beta1",
        "beta2",
        "eps",
        "rho",
        "weight_decay",
        "l1",
        "dropout",
        "input_noise",
        "label_smoothing",
        "grad_clip",
    }
)


class Mutation(BaseModel):
    """How one hyperparameter changes when a member exploits another."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    perturb: list[float] | None = Field(
        default=None,
        min_length=1,
        max_length=8,
        description="Multiply by one of these factors, chosen at random (clipped to the space).",
    )
    resample: bool = Field(default=False, description="Draw a new value from the space.")
    resample_probability: float = Field(
        default=0.25, ge=0, le=1, description="With both, how often to resample instead."
    )

    @model_validator(mode="after")
    def _something(self) -> Mutation:
        if self.perturb is None and not self.resample:
            raise ValueError("a mutation needs perturb factors, resample: true, or both")
        if self.perturb is not None and any(f <= 0 for f in self.perturb):
            raise ValueError(f"perturb factors must be > 0, got {self.perturb}")
        return self


class PopulationSpec(BaseModel):
    """The `population` section of a study spec: train members together, exploit, explore."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    size: int = Field(default=8, ge=2, le=256, description="Members trained at once.")
    interval_epochs: int = Field(default=3, ge=1, description="Epochs between exploit steps.")
    quantile: float = Field(
        default=0.25,
        gt=0,
        le=0.5,
        description="The bottom fraction copies the top fraction of the population.",
    )
    mutations: dict[str, Mutation] = Field(min_length=1)


def mutation_errors(
    population: PopulationSpec, space: Mapping[str, ParamSpec], fixed: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """(field, message) for each mutation the study cannot run: a name that is not
    searched, that a running trial cannot change, or that the space or params make
    unsafe to change."""
    errors = []
    for name, mutation in population.mutations.items():
        where = f"population.mutations.{name}"
        if name not in MUTABLE:
            errors.append(
                (
                    where,
                    f"{name} cannot change while a trial runs (it shapes the "
                    f"model, the data order or the optimizer); mutable: "
                    f"{sorted(MUTABLE)}",
                )
            )
            continue
        param = space.get(name)
        if param is None:
            errors.append(
                (
                    where,
                    f"{name} must be in space, so that the sampler draws each member's first value",
                )
            )
            continue
        if mutation.perturb is not None and isinstance(param, CategoricalParam):
            errors.append((where, f"{name} is categorical: use resample, not perturb"))
        if name == "dropout" and _low(param) <= 0:
            errors.append(
                (
                    where,
                    "dropout's space must start above 0: a dropout of 0 builds the model without "
                    "its dropout layers",
                )
            )
        if name == "lr":
            schedule = fixed.get("lr_schedule", "constant")
            if "lr_schedule" in space or schedule != "constant" or fixed.get("warmup_epochs"):
                errors.append(
                    (
                        where,
                        "PBT learns the lr's schedule itself: fix lr_schedule to constant, "
                        "without warmup",
                    )
                )
    return errors


def _low(param: ParamSpec) -> float:
    if isinstance(param, FloatParam | IntParam):
        return float(param.low)
    return min(float(c) for c in param.choices if isinstance(c, int | float))


@dataclass(frozen=True)
class Exploit:
    """A member's decision at a boundary: copy `donor` and train on with `params`."""

    donor: int
    params: dict[str, Any]
    changed: dict[str, Any]


def split_quantiles(
    scores: Mapping[int, float], quantile: float, direction: str
) -> tuple[list[int], list[int]]:
    """(bottom, top) members by their latest score, as Tune splits them: ceil(n * q)
    each, at most half of the population; ties keep member order (the earlier member
    ranks lower) in either direction. A missing (NaN) score ranks lowest."""
    ranked = sorted(scores, key=lambda m: (-cost(scores[m], direction), m))
    n = min(math.ceil(len(ranked) * quantile), len(ranked) // 2)
    if n == 0:
        return [], []
    return ranked[:n], ranked[-n:]


def decide(
    member: int,
    scores: Mapping[int, float],
    params: Mapping[int, Mapping[str, Any]],
    population: PopulationSpec,
    space: Mapping[str, ParamSpec],
    direction: str,
    rng: random.Random,
) -> Exploit | None:
    """Whether `member` exploits another at this boundary, and with which params.

    `scores` holds every member's latest score (this member's too) and `params` the
    searched params each trains with now. Only a member in the bottom quantile exploits,
    copying a member of the top one at random: its searched params, then mutated."""
    bottom, top = split_quantiles(scores, population.quantile, direction)
    if member not in bottom or not top:
        return None
    donor = rng.choice(top)
    new = dict(params[donor])
    changed = {}
    for name, mutation in population.mutations.items():
        if name not in new:  # a conditional parameter the donor does not use
            continue
        new[name] = changed[name] = mutate(new[name], mutation, space[name], rng)
    return Exploit(donor, new, changed)


def mutate(value: Any, mutation: Mutation, param: ParamSpec, rng: random.Random) -> Any:
    """One mutated value, inside the param's space."""
    resample = mutation.perturb is None or (
        mutation.resample and rng.random() < mutation.resample_probability
    )
    if resample:
        return draw(param, rng)
    assert mutation.perturb is not None
    return clip(value * rng.choice(mutation.perturb), param)


def draw(param: ParamSpec, rng: random.Random) -> Any:
    """A value drawn uniformly (log-uniformly on a log scale) from the space."""
    if isinstance(param, CategoricalParam):
        return rng.choice(param.choices)
    low, high = float(param.low), float(param.high)
    value = (
        math.exp(rng.uniform(math.log(low), math.log(high)))
        if param.log
        else rng.uniform(low, high)
    )
    return clip(value, param)


def clip(value: float, param: ParamSpec) -> Any:
    """`value` moved into the param's bounds (and onto its step)."""
    if isinstance(param, CategoricalParam):
        return value
    low, high = param.low, param.high
    value = min(max(value, low), high)
    if isinstance(param, IntParam):
        return int(min(max(low + round((value - low) / param.step) * param.step, low), high))
    if param.step is not None:
        value = min(max(low + round((value - low) / param.step) * param.step, low), high)
    return float(value)
