"""Cross-field rules of a StudySpec that no single leaf type can check alone.

Each returns a message naming the field and what was expected, or raises it as
a ValueError, so pydantic turns it into a 422 with the field's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search.space import CategoricalParam, FloatParam, IntParam, ParamSpec, contains
from workers.hyperparameters import OPTIMIZER_KNOBS, check_value
from workers.spec import METRICS, BuiltinDataset, PathDataset, UploadedDataset

DEFAULT_OPTIMIZER = "adam"


def check_space_values(space: Mapping[str, ParamSpec]) -> None:
    """Every value a searched hyperparameter can take is one the worker accepts."""
    for name, param in space.items():
        if isinstance(param, CategoricalParam):
            values: list[Any] = list(param.choices)
        elif isinstance(param, FloatParam | IntParam):
            values = [param.low, param.high]
        for value in values:
            problem = check_value(name, value)
            if problem:
                raise ValueError(f"space.{name}: {problem}")


def check_fixed_values(params: Mapping[str, Any]) -> None:
    for name, value in params.items():
        problem = check_value(name, value)
        if problem:
            raise ValueError(f"params.{name}: {problem}")


def check_optimizer_knobs(space: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> None:
    """A fixed optimizer knob must be read by at least one optimizer the study can use."""
    possible = _possible_optimizers(space, params)
    for knob, readers in OPTIMIZER_KNOBS.items():
        if knob in params and not possible & set(readers):
            raise ValueError(
                f"params.{knob} is read only by {list(readers)}, "
                f"but the study's optimizer is one of {sorted(possible)}"
            )


def _possible_optimizers(space: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> set[str]:
    if "optimizer" in params:
        return {str(params["optimizer"])}
    param = space.get("optimizer")
    if isinstance(param, CategoricalParam):
        return {str(c) for c in param.choices}
    return {DEFAULT_OPTIMIZER}


def check_objective(metric: str, dataset: BuiltinDataset | PathDataset | UploadedDataset) -> None:
    """The objective must be a validation metric of the data's task, where that is known."""
    task = dataset.task
    if task is not None and metric.removeprefix("val_") not in METRICS[task]:
        allowed = [f"val_{m}" for m in METRICS[task]]
        raise ValueError(
            f"objective.metric {metric} does not fit a {task} task; use one of {allowed}"
        )


def check_model(kind: str, dataset: BuiltinDataset | PathDataset | UploadedDataset) -> None:
    if kind == "cnn" and isinstance(dataset, BuiltinDataset) and dataset.name != "digits":
        raise ValueError(f"model.kind cnn needs image data; builtin '{dataset.name}' is tabular")


def check_initial_trials(trials: list[dict[str, Any]], space: Mapping[str, ParamSpec]) -> None:
    """Each initial config sets searched parameters only, to values the space allows."""
    for i, config in enumerate(trials):
        unknown = sorted(set(config) - set(space))
        if unknown:
            raise ValueError(f"initial_trials[{i}] sets {unknown}, which are not searched")
        for name, value in config.items():
            if not contains(space[name], value):
                raise ValueError(f"initial_trials[{i}].{name}={value!r} is outside the space")
