"""Plug-in task discovery through real entry points: installed, broken and hostile packages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from workers import tasks
from workers.data import load_prepared
from workers.models import build_model
from workers.spec import PluginDataset, SplitSpec
from workers.tasks import TaskError, TrainingTask, installed_names, installed_tasks, load_task
from workers.tensors import TensorData
from workers.trial_trainer import TrialTrainer

MODULE = """
from workers.tasks import TrainingTask
from torch import nn

class Tiny(TrainingTask):
    description = "tiny"
    task = "regression"
    hyperparameters = {"width": 3}
    def build_model(self, sample_shape, n_outputs, params):
        return nn.Linear(sample_shape[0], n_outputs)

class Clashing(Tiny):
    hyperparameters = {"lr": 0.5}

class NotATask:
    pass

raise_on_import = False
"""
ENTRY_POINTS = """[hpo.tasks]
tiny = fake_tasks:Tiny
clashing = fake_tasks:Clashing
not-a-task = fake_tasks:NotATask
missing = fake_tasks_missing:Gone
Dotted.Name = fake_tasks:Tiny
"""


@pytest.fixture
def fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A package installed the way pip installs one: a module and its dist-info on sys.path."""
    (tmp_path / "fake_tasks.py").write_text(MODULE)
    info = tmp_path / "fake_tasks-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-tasks\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    tasks._entry_points.cache_clear()
    tasks._load.cache_clear()
    yield
    tasks._entry_points.cache_clear()
    tasks._load.cache_clear()


def test_installed_tasks_come_from_entry_points(fake_distribution: None) -> None:
    names = installed_names()
    assert {"tiny", "clashing", "not-a-task", "missing"} <= set(names)
    assert "Dotted.Name" not in names, "a name that reads like a module path is never offered"
    tiny = load_task("tiny")
    assert isinstance(tiny, TrainingTask) and tiny.hyperparameters == {"width": 3}
    assert not tiny.provides_data
    assert isinstance(build_model("plugin:tiny", (4,), 2, {"init": "default"}), torch.nn.Linear)


def test_unknown_and_broken_tasks_say_what_is_wrong(fake_distribution: None) -> None:
    with pytest.raises(TaskError, match=r"task 'nope' is not installed; installed tasks: \["):
        load_task("nope")
    with pytest.raises(TaskError, match="task 'missing' failed to load: ModuleNotFoundError"):
        load_task("missing")
    with pytest.raises(TaskError, match="is not a TrainingTask"):
        load_task("not-a-task")
    with pytest.raises(TaskError, match="declares hyperparameter 'lr'"):
        load_task("clashing")
    listed = {info.name: info for info in installed_tasks()}
    assert listed["tiny"].package == "fake-tasks" and listed["tiny"].error is None
    assert "ModuleNotFoundError" in (listed["missing"].error or "")


def test_the_example_plugin_is_installed_and_trains_in_the_workers_loop() -> None:
    assert "residual-mlp" in installed_names(), "make install installs examples/plugin"
    data = load_prepared(PluginDataset(source="plugin", name="residual-mlp"), SplitSpec())
    assert data.task == "classification" and data.n_outputs == 3 and data.sample_shape == (2,)
    params = {"lr": 0.01, "optimizer": "adam", "width": 32, "groups": 4, "dropout": 0.1}
    trainer = TrialTrainer(
        TensorData(data, torch.device("cpu")), params, model="plugin:residual-mlp", max_epochs=20
    )
    accuracies = [trainer.train_epoch()["val_accuracy"] for _ in range(20)]
    assert max(accuracies) > 0.9 > accuracies[0]
    assert trainer.params["blocks"] == 2, "the task's defaults fill what the study leaves out"


def test_a_task_that_raises_on_its_params_raises_in_the_trainer() -> None:
    data = load_prepared(PluginDataset(source="plugin", name="residual-mlp"), SplitSpec())
    with pytest.raises(ValueError, match="width 30 is not divisible by groups 4"):
        TrialTrainer(
            TensorData(data, torch.device("cpu")), {"width": 30}, model="plugin:residual-mlp"
        )
    assert np.isfinite(data.folds[0].x_train).all()
