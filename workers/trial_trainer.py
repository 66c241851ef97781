"""All folds of one trial in step: `Trainer` per fold, the best epoch kept, the schedule
followed, the whole state saved and restored (`workers.trial_state`)."""

from __future__ import annotations

import time
from typing import Any

import torch

from workers.device import peak_memory_mb, reset_peak_memory
from workers.direction import at_least
from workers.hyperparameters import resolve
from workers.models import plugin_defaults
from workers.tensors import TensorData
from workers.trainer import Trainer
from workers.trial_state import BestEpoch, read_state_file, set_rng_state, state_file, weights_file


class TrialTrainer:
    """All folds of one trial in step; metrics are means over folds.

    `objective` names the validation metric (e.g. `val_accuracy`) whose best
    epoch's weights are kept; `restore_best` then `evaluate` reproduces it.
    """

    def __init__(
        self,
        data: TensorData,
        params: dict[str, Any],
        *,
        model: str = "mlp",
        objective: str = "val_accuracy",
        direction: str = "maximize",
        seed: int = 0,
        max_epochs: int = 30,
        param_schedule: dict[str, list[tuple[int, Any]]] | None = None,
    ):
        self.params = resolve(params, plugin_defaults(model))
        # Values of some knobs from given epochs on: {name: [(from_epoch, value), ...]}.
        self._param_schedule = {k: sorted(v) for k, v in (param_schedule or {}).items()}
        self._model_info = {
            "model": model,
            "sample_shape": tuple(data.sample_shape),
            "n_outputs": data.n_outputs,
            "task": data.task,
            "params": self.params,
        }
        self.objective = objective
        self.direction = direction
        self.folds = [
            Trainer(
                data,
                i,
                self.params,
                model=model,
                max_epochs=max_epochs,
                direction=direction,
                seed=seed + 1000 * i,
            )
            for i in range(len(data.folds))
        ]
        self.epoch = 0
        self.n_params = sum(p.numel() for p in self.folds[0].model.parameters())
        self.train_seconds = 0.0
        self._best = BestEpoch(direction)
        self.history: list[dict[str, float]] = []
        self.adopted_at = 0  # the epoch after which the weights are another member's copy
        # The metrics of the weights as they are now: the last epoch's, or a copy's own.
        self.current_metrics: dict[str, float] = {}

    def train_epoch(self) -> dict[str, float]:
        """Train every fold one epoch; return the mean metrics, the lr used, and the costs
        (`train_seconds` so far, `n_params` of one model) that a second objective may use."""
        started = time.perf_counter()
        reset_peak_memory(self._device)
        self.epoch += 1
        self._follow_schedule(self.epoch)
        lr = self.folds[0].lr
        losses = [fold.train_epoch() for fold in self.folds]
        metrics = {"train_loss": sum(losses) / len(losses), **self.evaluate("val"), "lr": lr}
        if self.objective not in metrics:
            raise ValueError(
                f"objective {self.objective} is not among the metrics {sorted(metrics)}"
            )
        value = metrics[self.objective]
        for fold in self.folds:
            fold.schedule.step(value)
        self._best.offer(value, self.epoch, lambda: [fold.snapshot() for fold in self.folds])
        self.current_metrics = dict(metrics)
        metrics["seconds"] = time.perf_counter() - started
        self.train_seconds += metrics["seconds"]
        metrics["train_seconds"] = self.train_seconds
        metrics["n_params"] = float(self.n_params)
        peak = peak_memory_mb(self._device)
        if peak is not None:
            metrics["peak_gpu_memory_mb"] = peak
        self.history.append(metrics)
        return metrics

    def _follow_schedule(self, epoch: int) -> None:
        """Set the knobs whose scheduled value for `epoch` differs from the current one
        (every one after a resume: the checkpoint holds the optimizer's, not the rest)."""
        changed = {}
        for name, points in self._param_schedule.items():
            due = [value for start, value in points if start <= epoch]
            if due and self.params[name] != due[-1]:
                changed[name] = due[-1]
        if changed:
            self.params.update(changed)
            for fold in self.folds:
                fold.set_knobs(set(changed))

    def evaluate(self, split: str = "val") -> dict[str, float]:
        per_fold = [fold.evaluate(split) for fold in self.folds]
        return {k: sum(m[k] for m in per_fold) / len(per_fold) for k in per_fold[0]}

    @property
    def best_value(self) -> float | None:
        return self._best.value

    @property
    def best_epoch(self) -> int | None:
        return self._best.epoch

    def reaches(self, floor: float | None) -> bool:
        """Whether the best value so far is at least as good as `floor` (any, when None)."""
        return self.best_value is not None and at_least(self.best_value, floor, self.direction)

    def restore_best(self) -> None:
        """Load the weights of the best epoch seen so far into every fold."""
        if self._best.weights is not None:
            for fold, state in zip(self.folds, self._best.weights, strict=True):
                fold.restore(state)

    def checkpoint(self) -> bytes | None:
        """The best epoch's weights (of the first fold) with what rebuilds the model:
        `torch.load(..., weights_only=True)` gives {state_dict, model, sample_shape,
        n_outputs, task, params}; `workers.models.build_model` builds the module."""
        if self._best.weights is None:
            return None
        return weights_file(self._best.weights[0], self._model_info)

    def test_metrics(self) -> dict[str, float] | None:
        """Test-split metrics of the best weights; None before any finite epoch."""
        if self._best.weights is None:
            return None
        self.restore_best()
        return self.evaluate("test") or None

    def state(self) -> bytes:
        """The trial's whole state after its last epoch, serialized: what `load_state`
        needs to train on exactly as if never stopped (every fold, the best epoch's
        weights, the metrics so far and every random generator a trial draws from)."""
        return state_file(
            {
                "epoch": self.epoch,
                **self._best.saved(),
                "train_seconds": self.train_seconds,
                "history": self.history,
                "folds": [fold.state() for fold in self.folds],
                "adopted_at": self.adopted_at,
                "current_metrics": self.current_metrics,
            }
        )

    def adopt(self, data: bytes) -> tuple[int, dict[str, float]]:
        """Continue from another PBT member's `state()` with this trainer's params (the
        member's, mutated): its weights, optimizer moments, schedule and generators, with
        this trainer's optimizer knobs set on top. The trial keeps its own epoch count,
        curve and training time; its best weights start over from the copy. Returns the
        donor's epoch and the metrics of the weights copied (the donor's last epoch's, or,
        when the donor had just copied another itself, that copy's)."""
        epoch, history, seconds = self.epoch, self.history, self.train_seconds
        self.load_state(data)
        donor_epoch, donor_now = self.epoch, dict(self.current_metrics)
        self.epoch, self.history, self.train_seconds = epoch, history, seconds
        self._best.clear()
        self.adopted_at = epoch
        for fold in self.folds:
            fold.set_optimizer_knobs()
        self.current_metrics = self.evaluate("val")
        return donor_epoch, donor_now

    def load_state(self, data: bytes) -> None:
        """Continue from `state()`'s bytes (of a trial with the same params and data).

        Raises ValueError for a checkpoint of another format or fold count."""
        state = read_state_file(data, device=self._device, n_folds=len(self.folds))
        for fold, fold_state in zip(self.folds, state["folds"], strict=True):
            fold.load_state(fold_state)
        self.epoch, self.train_seconds = int(state["epoch"]), float(state["train_seconds"])
        self._best.load(state)
        self.history = list(state["history"])
        self.adopted_at = int(state.get("adopted_at", 0))
        self.current_metrics = dict(state.get("current_metrics") or (self.history or [{}])[-1])
        set_rng_state(state["rng"])

    @property
    def _device(self) -> torch.device:
        return self.folds[0].tensors.device
