"""Cross-field rules of a StudySpec that no single leaf type can check alone.

Each returns a message naming the field and what was expected, or raises it as
a ValueError, so pydantic turns it into a 422 with the field's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from search.space import CategoricalParam, FloatParam, IntParam, ParamSpec, contains
from workers.hyperparameters import KNOWN_HYPERPARAMETERS, OPTIMIZER_KNOBS, check_value
from workers.spec import METRICS, BuiltinDataset, DatasetSpec, ModelSpec, PluginDataset
from workers.tasks import TaskError, TrainingTask, load_task

DEFAULT_OPTIMIZER = "adam"


def check_space_values(space: Mapping[str, ParamSpec]) -> None:
    """Every value a searched hyperparameter can take is one the worker accepts."""
    for name, param in space.items():
        if isinstance(param, CategoricalParam):
            values: list[tuple[str, Any]] = [("choices", c) for c in param.choices]
        elif isinstance(param, FloatParam | IntParam):
            values = [("low", param.low), ("high", param.high)]
        for field, value in values:
            problem = check_value(name, value)
            if problem:
                raise ValueError(f"space.{name}.{field}: {problem}")


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


def check_objective(metric: str, dataset: DatasetSpec) -> None:
    """The objective must be a validation metric of the data's task, where that is known."""
    task = dataset.task
    if task is not None and metric.removeprefix("val_") not in METRICS[task]:
        allowed = [f"val_{m}" for m in METRICS[task]]
        raise ValueError(
            f"objective.metric {metric} does not fit a {task} task; use one of {allowed}"
        )


def check_model(model: ModelSpec, dataset: DatasetSpec) -> None:
    if model.kind == "cnn" and isinstance(dataset, BuiltinDataset) and dataset.name != "digits":
        raise ValueError(f"model.kind cnn needs image data; builtin '{dataset.name}' is tabular")
    if model.name is not None:
        _installed(model.name, "model.name")
    if (
        isinstance(dataset, PluginDataset)
        and not _installed(dataset.name, "dataset.name").provides_data
    ):
        raise ValueError(f"dataset.name: task '{dataset.name}' does not load data of its own")


def _installed(name: str, field: str) -> TrainingTask:
    try:
        return load_task(name)
    except TaskError as exc:
        raise ValueError(f"{field}: {exc}") from exc


def check_task_hyperparameters(
    model: ModelSpec, space: Mapping[str, ParamSpec], params: Mapping[str, Any]
) -> None:
    """Hyperparameters that only a plug-in declares go with that plug-in's model only."""
    own = load_task(model.name).hyperparameters if model.name is not None else {}
    for section, names in (("space", space), ("params", params)):
        for name in names:
            if name not in KNOWN_HYPERPARAMETERS and name not in own:
                declares = (
                    f"task '{model.name}' declares {sorted(own)}"
                    if model.name
                    else (f"model {model.kind} has no hyperparameter '{name}'")
                )
                raise ValueError(f"{section}.{name}: {declares}")


def check_initial_trials(trials: list[dict[str, Any]], space: Mapping[str, ParamSpec]) -> None:
    """Each initial config sets searched parameters only, to values the space allows."""
    for i, config in enumerate(trials):
        unknown = sorted(set(config) - set(space))
        if unknown:
            raise ValueError(f"initial_trials[{i}] sets {unknown}, which are not searched")
        for name, value in config.items():
            if not contains(space[name], value):
                raise ValueError(f"initial_trials[{i}].{name}={value!r} is outside the space")
