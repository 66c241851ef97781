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
                f"params.{knob} is read only by {list(readers)}, but the study's optimizer is one "
                f"of {sorted(possible)}"
            )


def _possible_optimizers(space: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> set[str]:
    if "optimizer" in params:
        return {str(params["optimizer"])}
    param = space.get("optimizer")
    if isinstance(param, CategoricalParam):
        return {str(c) for c in param.choices}
    return {DEFAULT_OPTIMIZER}


def check_objective(metric: str, dataset: DatasetSpec, *, field: str | None = None) -> None:
    """The objective must be a validation metric of the data's task, where that is known;
    `field` is where the metric is (`objective.metric` by default)."""
    task = dataset.task
    if task is not None and metric.removeprefix("val_") not in METRICS[task]:
        allowed = [f"val_{m}" for m in METRICS[task]]
        raise ValueError(
            f"{field or 'objective.metric'}: {metric} does not fit a {task} task; use one of "
            f"{allowed}"
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


def check_batch_norm_batch_size(space: Mapping[str, ParamSpec], params: Mapping[str, Any]) -> None:
    """No trial may draw batch size 1 with batch norm on: every training batch would be one
    row, which batch norm cannot normalize (torch raises on the first step). A last batch
    of one row at other sizes is the trainer's to join to the one before."""
    one_row = _path_allowing("batch_size", 1, space, params)
    with_norm = _path_allowing("batch_norm", True, space, params)
    if one_row is None or with_norm is None or _excluded_by_when(space):
        return
    raise ValueError(
        f"{one_row}: batch size 1 puts one row in every training batch, which batch norm "
        f"cannot normalize, and {with_norm} lets batch_norm be true; allow only batch sizes "
        "of 2 or more, or only batch_norm false, or make one conditional on the other (when)"
    )


def _path_allowing(
    name: str, value: Any, space: Mapping[str, ParamSpec], params: Mapping[str, Any]
) -> str | None:
    """The spec path that lets hyperparameter `name` take `value`; None when nothing does
    (the worker's defaults, batch size 64 without batch norm, never do)."""
    if name in params:
        fixed = params[name]
        return f"params.{name}" if type(fixed) is type(value) and fixed == value else None
    param = space.get(name)
    if param is None or not contains(param, value):
        return None
    if isinstance(param, CategoricalParam):
        return f"space.{name}.choices"
    return f"space.{name}.low" if param.low == value else f"space.{name}"


def _excluded_by_when(space: Mapping[str, ParamSpec]) -> bool:
    """Whether a `when` keeps batch size 1 and batch norm apart: a searched batch size drawn
    only without batch norm, or batch norm drawn only at other batch sizes (else it is off)."""
    size, norm = space.get("batch_size"), space.get("batch_norm")
    size_when = (size.when or {}) if size is not None else {}
    norm_when = (norm.when or {}) if norm is not None else {}
    return ("batch_norm" in size_when and not _lists(size_when["batch_norm"], True)) or (
        "batch_size" in norm_when and not _lists(norm_when["batch_size"], 1)
    )


def _lists(values: list[Any], value: Any) -> bool:
    return any(type(v) is type(value) and v == value for v in values)
