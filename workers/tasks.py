"""Plug-in training tasks: a user's own torch model (and data) tuned by the worker's loop.

A task is a class installed in a Python package and registered under the entry-point
group `hpo.tasks`; a study names it (`model: {kind: plugin, name: ...}`), never a module
path, so an HTTP caller can only choose among what the operator installed. The worker's
own loop trains the model the task builds: optimizers, schedules, regularizers, early
stopping, device placement and per-epoch reporting all work as for the built-in models.

    class ResidualMLP(TrainingTask):
        description = "A residual MLP"
        task = "classification"
        hyperparameters = {"width": 64, "blocks": 2}      # extra knobs and their defaults

        def build_model(self, sample_shape, n_outputs, params):
            return MyModule(sample_shape, n_outputs, params["width"], params["blocks"])

        def load_data(self, seed):                       # optional: `dataset: {source: plugin}`
            return features, targets                       # numpy arrays, one row per sample
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any, ClassVar, Literal

GROUP = "hpo.tasks"
# What a study may name: no dots, colons or slashes, so nothing reads as a module path.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
_HYPERPARAMETER = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class TaskError(ValueError):
    """A plug-in is not installed, or is installed but broken; the message says which."""


class TrainingTask:
    """Base class of plug-in tasks: set the class attributes, implement `build_model`.

    `params` holds every built-in hyperparameter (with its default when not searched or
    fixed) plus the task's own `hyperparameters`.
    """

    description: ClassVar[str] = ""
    task: ClassVar[Literal["classification", "regression"]] = "classification"
    hyperparameters: ClassVar[Mapping[str, bool | int | float | str]] = {}

    def build_model(
        self, sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]
    ) -> Any:
        """The torch.nn.Module to train; flat samples of `sample_shape` come in."""
        raise NotImplementedError

    def load_data(self, seed: int) -> tuple[Any, Any]:
        """(features, targets) as arrays, for studies with `dataset: {source: plugin}`."""
        raise NotImplementedError

    def loss_function(self) -> Callable[[Any, Any], Any] | None:
        """A loss to train with instead of the task's default (cross-entropy or MSE)."""
        return None

    @property
    def provides_data(self) -> bool:
        return type(self).load_data is not TrainingTask.load_data


@dataclass(frozen=True)
class TaskInfo:
    """An installed task as GET /api/v1/tasks shows it; `error` when it fails to load."""

    name: str
    package: str
    version: str
    description: str = ""
    task: str | None = None
    provides_data: bool = False
    hyperparameters: dict[str, bool | int | float | str] = field(default_factory=dict)
    error: str | None = None


def installed_tasks() -> list[TaskInfo]:
    """Every installed task, loaded to read what it declares."""
    infos = []
    for name, point in sorted(_entry_points().items()):
        package = point.dist.name if point.dist else "?"
        version = point.dist.version if point.dist else "?"
        try:
            task = _load(point)
        except TaskError as exc:
            infos.append(TaskInfo(name, package, version, error=str(exc)))
            continue
        infos.append(
            TaskInfo(
                name,
                package,
                version,
                task.description,
                task.task,
                task.provides_data,
                dict(task.hyperparameters),
            )
        )
    return infos


def installed_names() -> list[str]:
    """The names of every installed task (without importing them)."""
    return sorted(_entry_points())


def load_task(name: str) -> TrainingTask:
    """The installed task `name`; TaskError names what is installed when it is not."""
    found = _entry_points().get(name)
    if found is None:
        raise TaskError(f"task '{name}' is not installed; installed tasks: {installed_names()}")
    return _load(found)


def declared_hyperparameters() -> dict[str, bool | int | float | str]:
    """Every installed task's own hyperparameters with their defaults (a spec may name them)."""
    declared: dict[str, bool | int | float | str] = {}
    for name in installed_names():
        try:
            declared.update(load_task(name).hyperparameters)
        except TaskError:
            continue  # a broken plug-in is reported when a study names it
    return declared


@cache
def _entry_points() -> dict[str, EntryPoint]:
    return {
        point.name: point
        for point in entry_points(group=GROUP)
        if re.fullmatch(NAME_PATTERN, point.name)
    }


@cache
def _load(point: EntryPoint) -> TrainingTask:
    try:
        loaded = point.load()
        task = loaded() if isinstance(loaded, type) else loaded
    except Exception as exc:
        raise TaskError(f"task '{point.name}' failed to load: {type(exc).__name__}: {exc}") from exc
    if not isinstance(task, TrainingTask):
        raise TaskError(f"task '{point.name}' ({point.value}) is not a TrainingTask")
    _check_hyperparameters(point.name, task)
    return task


def _check_hyperparameters(name: str, task: TrainingTask) -> None:
    from workers.hyperparameters import KNOWN_HYPERPARAMETERS

    for knob, default in task.hyperparameters.items():
        if not _HYPERPARAMETER.fullmatch(knob) or knob in KNOWN_HYPERPARAMETERS:
            raise TaskError(
                f"task '{name}' declares hyperparameter '{knob}': names must be new "
                "lower_snake_case words (built-in ones are already there)"
            )
        if not isinstance(default, bool | int | float | str):
            raise TaskError(f"task '{name}': default of '{knob}' must be a plain value")
