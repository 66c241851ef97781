"""Parameter specs of a study's `space` and how Optuna draws them.

A parameter may carry `when: {parent: [values]}`: it is drawn only when every
named parent was drawn (or fixed) with one of the listed values, so a trial's
params never hold a conditional parameter whose condition is false.
"""

from __future__ import annotations

from collections.abc import Mapping
from graphlib import CycleError, TopologicalSorter
from typing import Annotated, Any, Literal

import optuna
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

Choice = bool | int | float | str


class _Param(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    when: dict[str, list[Choice]] | None = Field(
        default=None, description="Draw only when each named parameter has one of these values."
    )

    @model_validator(mode="after")
    def _check_when(self) -> _Param:
        for parent, values in (self.when or {}).items():
            if not values:
                raise ValueError(f"when.{parent} must list at least one value")
        return self


class _Range(_Param):
    """Bounds are checked field by field so errors point at `low` or `high`."""

    log: bool = False

    @field_validator("low", check_fields=False)
    @classmethod
    def _positive_on_log(cls, low: float, info: ValidationInfo) -> float:
        if info.data.get("log") and low <= 0:
            raise ValueError(f"log scale needs low > 0, got low={low}")
        return low

    @field_validator("high", check_fields=False)
    @classmethod
    def _not_below_low(cls, high: float, info: ValidationInfo) -> float:
        low = info.data.get("low")
        if low is not None and high < low:
            raise ValueError(f"high must be >= low, got low={low}, high={high}")
        return high


class FloatParam(_Range):
    type: Literal["float"]
    low: float
    high: float
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _step_or_log(self) -> FloatParam:
        if self.log and self.step is not None:
            raise ValueError("step and log cannot both be set")
        return self


class IntParam(_Range):
    type: Literal["int"]
    low: int
    high: int
    step: int = Field(default=1, ge=1)

    @model_validator(mode="after")
    def _step_or_log(self) -> IntParam:
        if self.log and self.step != 1:
            raise ValueError("step and log cannot both be set")
        return self


class CategoricalParam(_Param):
    type: Literal["categorical"]
    choices: list[Choice] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_unique(self) -> CategoricalParam:
        keys = [(type(c), c) for c in self.choices]
        if len(set(keys)) != len(keys):
            raise ValueError(f"choices must be distinct, got {self.choices}")
        return self


ParamSpec = Annotated[FloatParam | IntParam | CategoricalParam, Field(discriminator="type")]
SearchSpace = dict[str, ParamSpec]


def draw_order(space: Mapping[str, ParamSpec], fixed: Mapping[str, Any]) -> list[str]:
    """Order parameters so that every parent is drawn before its children.

    Raises ValueError when a `when` names an unknown parameter, a value its
    parent can never take, or when conditions form a cycle.
    """
    graph: dict[str, set[str]] = {}
    for name, param in space.items():
        parents = set((param.when or {}).keys())
        for parent in parents:
            _check_parent(name, parent, param.when or {}, space, fixed)
        graph[name] = parents & set(space)
    try:
        return list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        raise ValueError(f"'when' conditions form a cycle: {exc.args[1]}") from exc


def _check_parent(
    name: str,
    parent: str,
    when: Mapping[str, list[Choice]],
    space: Mapping[str, ParamSpec],
    fixed: Mapping[str, Any],
) -> None:
    if parent == name:
        raise ValueError(f"{name}.when cannot refer to {name} itself")
    if parent not in space and parent not in fixed:
        raise ValueError(f"{name}.when refers to '{parent}', which is neither searched nor fixed")
    spec = space.get(parent)
    if isinstance(spec, CategoricalParam):
        unknown = [v for v in when[parent] if v not in spec.choices]
        if unknown:
            raise ValueError(
                f"{name}.when.{parent} lists {unknown}, not among {parent}'s choices {spec.choices}"
            )


def is_active(param: _Param, drawn: Mapping[str, Any]) -> bool:
    """A parameter is active when each parent is present with a listed value."""
    return all(
        parent in drawn and drawn[parent] in values for parent, values in (param.when or {}).items()
    )


def suggest(
    trial: optuna.Trial, space: Mapping[str, ParamSpec], fixed: Mapping[str, Any]
) -> dict[str, Any]:
    """Draw the active parameters of `space` through Optuna's define-by-run API."""
    drawn: dict[str, Any] = {}
    for name in draw_order(space, fixed):
        param = space[name]
        if is_active(param, {**fixed, **drawn}):
            drawn[name] = _suggest_one(trial, name, param)
    return drawn


def _suggest_one(trial: optuna.Trial, name: str, param: ParamSpec) -> Any:
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, log=param.log, step=param.step)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, log=param.log, step=param.step)
    return trial.suggest_categorical(name, param.choices)


def to_distribution(param: ParamSpec) -> optuna.distributions.BaseDistribution:
    """The Optuna distribution a parameter spec stands for (importance needs them)."""
    if isinstance(param, FloatParam):
        return optuna.distributions.FloatDistribution(
            param.low, param.high, log=param.log, step=param.step
        )
    if isinstance(param, IntParam):
        return optuna.distributions.IntDistribution(
            param.low, param.high, log=param.log, step=param.step or 1
        )
    return optuna.distributions.CategoricalDistribution(param.choices)


def contains(param: ParamSpec, value: Any) -> bool:
    """Whether `value` is one the parameter could have been drawn as."""
    if isinstance(param, CategoricalParam):
        return any(type(value) is type(c) and value == c for c in param.choices)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not param.low <= value <= param.high:
        return False
    if param.step is None:
        return True
    steps = (value - param.low) / param.step
    return abs(steps - round(steps)) < 1e-8


MAX_GRID_AXIS = 1000


def grid_values(name: str, param: ParamSpec) -> list[Any]:
    """Every value a categorical or stepped parameter can take, for a grid search.

    Raises ValueError for a continuous range (no step) or an axis over MAX_GRID_AXIS values.
    """
    if isinstance(param, CategoricalParam):
        return list(param.choices)
    if isinstance(param, FloatParam) and param.step is None:
        raise ValueError(f"grid needs a step (or explicit grid values) for continuous '{name}'")
    step = param.step if param.step is not None else 1
    count = int(round((param.high - param.low) / step)) + 1
    if count > MAX_GRID_AXIS:
        raise ValueError(f"grid axis '{name}' would have {count} values (at most {MAX_GRID_AXIS})")
    values = [param.low + i * step for i in range(count)]
    if isinstance(param, FloatParam):
        values = [round(v, 12) for v in values]
    return [v for v in values if v <= param.high + 1e-12]
