"""Sampler specs keyed by `type`, each built into the Optuna sampler it names.

What a sampler is and cannot do is declared on its spec class, as its `traits`, and
every user reads it from there (adding a sampler is one edit here):
- `numeric_only` (`cmaes`, `qmc`): float and int parameters only; categorical ones
  are drawn by Optuna's independent (random) sampler, as Optuna itself does, and the
  study records a warning saying which parameters that is.
- `single_objective` (`cmaes`): no multi-objective mode; such a spec is refused.
- `slow` (`gp`): draws are slow from the first model-based one on, so the driver
  always draws in a worker thread.
- finite (`grid`, its `n_points`): a study ends when its points are spent. The grid
  is given as `grid` or derived from categorical choices and stepped int/float
  ranges; a continuous range without a step is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, model_validator

from search.space import CategoricalParam, ParamSpec, grid_values

GridValue = bool | int | float | str
Space = Mapping[str, ParamSpec]


@dataclass(frozen=True, kw_only=True)
class SamplerTraits:
    """What a sampler is, as the checks and the driver need to know it."""

    numeric_only: bool = False  # categoricals fall back to random draws (a warning)
    single_objective: bool = False  # a multi-objective spec is refused
    slow: bool = False  # every draw runs off the event loop


class _SamplerSpec(BaseModel):
    """A sampler's spec. Each concrete one declares its `traits` (a ClassVar, so not a
    field of the schema); `__pydantic_init_subclass__` refuses one that does not."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    traits: ClassVar[SamplerTraits]
    if TYPE_CHECKING:  # each concrete spec's discriminator, a Literal field of its own
        type: str
    seed: int | None = None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if not isinstance(cls.__dict__.get("traits"), SamplerTraits):
            raise TypeError(f"{cls.__name__} must declare traits = SamplerTraits(...)")

    def n_points(self, space: Space) -> int | None:
        """How many distinct points the sampler can draw over `space`; None when it has
        no end. A finite sampler's study ends when they are spent."""
        return None


class TPESamplerSpec(_SamplerSpec):
    traits = SamplerTraits()
    type: Literal["tpe"]
    n_startup_trials: int = Field(default=10, ge=0)
    multivariate: bool = False
    group: bool = Field(default=False, description="Model conditional branches separately.")
    constant_liar: bool = Field(default=True, description="Avoid duplicates among parallel trials.")

    @model_validator(mode="after")
    def _group_needs_multivariate(self) -> TPESamplerSpec:
        if self.group and not self.multivariate:
            raise ValueError("group: true needs multivariate: true")
        return self


class RandomSamplerSpec(_SamplerSpec):
    traits = SamplerTraits()
    type: Literal["random"]


class CmaEsSamplerSpec(_SamplerSpec):
    traits = SamplerTraits(numeric_only=True, single_objective=True)
    type: Literal["cmaes"]
    n_startup_trials: int = Field(default=1, ge=0)
    popsize: int | None = Field(default=None, ge=2)
    with_margin: bool = False


class GPSamplerSpec(_SamplerSpec):
    traits = SamplerTraits(slow=True)
    type: Literal["gp"]
    n_startup_trials: int = Field(default=10, ge=0)


class QMCSamplerSpec(_SamplerSpec):
    traits = SamplerTraits(numeric_only=True)
    type: Literal["qmc"]
    qmc_type: Literal["sobol", "halton"] = "sobol"
    scramble: bool = False


class GridSamplerSpec(_SamplerSpec):
    traits = SamplerTraits()
    type: Literal["grid"]
    grid: dict[str, list[GridValue]] | None = Field(
        default=None, description="Values per parameter; derived from the space when omitted."
    )

    def n_points(self, space: Space) -> int:
        return grid_size(self, space)


class NSGAIISamplerSpec(_SamplerSpec):
    traits = SamplerTraits()
    type: Literal["nsga2"]
    population_size: int = Field(default=50, ge=2)
    mutation_prob: float | None = Field(default=None, ge=0, le=1)
    crossover_prob: float = Field(default=0.9, ge=0, le=1)
    swapping_prob: float = Field(default=0.5, ge=0, le=1)


AnySamplerSpec = (
    TPESamplerSpec
    | RandomSamplerSpec
    | CmaEsSamplerSpec
    | GPSamplerSpec
    | QMCSamplerSpec
    | GridSamplerSpec
    | NSGAIISamplerSpec
)
SamplerSpec = Annotated[AnySamplerSpec, Field(discriminator="type")]


def _tpe(spec: TPESamplerSpec, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.TPESampler(
        seed=spec.seed,
        n_startup_trials=spec.n_startup_trials,
        multivariate=spec.multivariate,
        group=spec.group,
        constant_liar=spec.constant_liar,
    )


def _random(spec: RandomSamplerSpec, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.RandomSampler(seed=spec.seed)


def _cmaes(spec: CmaEsSamplerSpec, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.CmaEsSampler(
        seed=spec.seed,
        n_startup_trials=spec.n_startup_trials,
        popsize=spec.popsize,
        with_margin=spec.with_margin,
        warn_independent_sampling=False,
        independent_sampler=optuna.samplers.RandomSampler(seed=spec.seed),
    )


def _gp(spec: GPSamplerSpec, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.GPSampler(
        seed=spec.seed, n_startup_trials=spec.n_startup_trials, warn_independent_sampling=False
    )


class _QMCSampler(optuna.samplers.QMCSampler):
    """Optuna's QMC sampler, starting its sequence at `start`: it counts its points in the
    study's system attributes, which an in-memory study rebuilt after a resume has not
    got, so it would start the sequence again from its first point."""

    def __init__(self, *, start: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._start = start

    def _find_sample_id(self, study: optuna.Study, search_space: dict[str, Any]) -> int:
        return int(super()._find_sample_id(study, search_space)) + self._start


def _qmc(spec: QMCSamplerSpec, space: Space, *, start: int = 0) -> optuna.samplers.BaseSampler:
    independent_seed = None if spec.seed is None else (spec.seed + 7919 * start) % 2**32
    return _QMCSampler(
        start=start,
        qmc_type=spec.qmc_type,
        scramble=spec.scramble,
        seed=spec.seed,
        warn_independent_sampling=False,
        warn_asynchronous_seeding=False,
        independent_sampler=optuna.samplers.RandomSampler(seed=independent_seed),
    )


class _GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler without its `study.stop()`, which works only inside `optimize`;
    the driver ends a grid study when its grid is spent (see `grid_size`)."""

    def after_trial(self, *args: Any, **kwargs: Any) -> None:
        return None


def _grid(spec: GridSamplerSpec, space: Space) -> optuna.samplers.BaseSampler:
    return _GridSampler(grid_of(spec, space), seed=spec.seed)


def _nsga2(spec: NSGAIISamplerSpec, space: Space) -> optuna.samplers.BaseSampler:
    return optuna.samplers.NSGAIISampler(
        population_size=spec.population_size,
        mutation_prob=spec.mutation_prob,
        crossover_prob=spec.crossover_prob,
        swapping_prob=spec.swapping_prob,
        seed=spec.seed,
    )


SAMPLERS: dict[str, Callable[[Any, Space], optuna.samplers.BaseSampler]] = {
    "tpe": _tpe,
    "random": _random,
    "cmaes": _cmaes,
    "gp": _gp,
    "qmc": _qmc,
    "grid": _grid,
    "nsga2": _nsga2,
}


def build_sampler(
    spec: AnySamplerSpec, space: Space, *, n_existing: int = 0
) -> optuna.samplers.BaseSampler:
    """The Optuna sampler for a validated sampler spec over `space`.

    A study that goes on after a resume or a restart (`n_existing` trials already)
    gets a seed derived from its own and that count: a sampler rebuilt with the same
    seed would draw its first points again. A new study keeps its seed as given, so
    its draws are reproducible.
    """
    if spec.type == "qmc":  # a sequence: it goes on from where it was, with its seed
        return _qmc(spec, space, start=n_existing)
    # The grid sampler keeps its seed: its trials record grid points by their index in the
    # seed's order, and it never draws a visited point again.
    if spec.seed is not None and n_existing and spec.type != "grid":
        spec = spec.model_copy(update={"seed": (spec.seed + 7919 * n_existing) % 2**32})
    return SAMPLERS[spec.type](spec, space)


def grid_of(spec: GridSamplerSpec, space: Space) -> dict[str, list[GridValue]]:
    """The grid a grid sampler walks: the given one, or one derived from the space."""
    if spec.grid is not None:
        return {name: list(values) for name, values in spec.grid.items()}
    return {name: grid_values(name, param) for name, param in space.items()}


def check_sampler(spec: _SamplerSpec, space: Space, *, n_objectives: int) -> list[str]:
    """Refuse what the sampler cannot do (ValueError); return warnings for what it degrades."""
    if spec.traits.single_objective and n_objectives > 1:
        raise ValueError(
            f"sampler {spec.type} supports one objective; use tpe, nsga2, gp or random"
        )
    if isinstance(spec, GridSamplerSpec):
        _check_grid(spec, space)
    categorical = sorted(n for n, p in space.items() if isinstance(p, CategoricalParam))
    if spec.traits.numeric_only and categorical:
        return [
            f"sampler {spec.type} searches float and int parameters only; "
            f"{categorical} are drawn at random (Optuna's independent sampler)"
        ]
    return []


def _check_grid(spec: GridSamplerSpec, space: Space) -> None:
    grid = grid_of(spec, space)
    missing = sorted(set(space) - set(grid))
    if missing:
        raise ValueError(f"grid has no values for searched parameters {missing}")
    extra = sorted(set(grid) - set(space))
    if extra:
        raise ValueError(f"grid names {extra}, which are not in the space")
    empty = sorted(name for name, values in grid.items() if not values)
    if empty:
        raise ValueError(f"grid gives no values for {empty}")


def grid_size(spec: GridSamplerSpec, space: Space) -> int:
    size = 1
    for values in grid_of(spec, space).values():
        size *= len(values)
    return size
