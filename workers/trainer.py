"""A trial's training loop: set up, train one epoch, evaluate, keep the best weights.

`Trainer` trains one fold on tensors sliced per batch (`workers.batches`; no DataLoader:
slicing in-memory tensors is 1.4x faster for small models). `TrialTrainer` runs every
fold of a trial in step and reports their mean, so k-fold cross-validation is one more
knob, not another loop; what it keeps, saves and restores is `workers.trial_state`'s.

The tensors go to the slot's device once per study (`workers.tensors`), so an epoch on a
GPU copies nothing from the host; `precision`, `compile` and (for the CNN on CUDA)
channels-last memory are per trial.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from workers.batches import (
    EVAL_CHUNK_ROWS,
    batch_bounds,
    batch_rows,
    forward_in_chunks,
    mean_over_samples,
    min_batch_rows,
)
from workers.compiled import compile_model
from workers.device import peak_memory_mb, reset_peak_memory
from workers.direction import at_least
from workers.hyperparameters import resolve
from workers.metrics import classification_metrics, loss_function, regression_metrics
from workers.models import build_model, plugin_defaults, plugin_loss
from workers.optimizers import build_optimizer
from workers.precision import Precision
from workers.schedules import EpochSchedule
from workers.tensors import TensorData, model_on_device
from workers.trial_state import (
    BestEpoch,
    copy_weights,
    read_state_file,
    set_rng_state,
    state_file,
    weights_file,
)


class Trainer:
    """Trains one fold epoch by epoch with the trial's optimizer, schedule and regularizers."""

    def __init__(self, data: TensorData, fold: int, params: dict[str, Any], *, model: str,
                 max_epochs: int, direction: str, seed: int):  # fmt: skip
        self.params = params
        self.tensors = data.folds[fold]
        self.task = data.task
        device = self.tensors.device
        _seed(seed, device)
        built = build_model(model, data.sample_shape, data.n_outputs, params)
        self.model = model_on_device(built, device, channels_last=model == "cnn")
        self.precision = Precision(params["precision"], device)
        if params["compile"]:
            compile_model(self.model)
        self.optimizer = build_optimizer(self.model.parameters(), params)
        self.schedule = EpochSchedule(
            self.optimizer, params, max_epochs=max_epochs, direction=direction
        )
        smoothing = float(params["label_smoothing"]) if data.task == "classification" else 0.0
        task_loss = plugin_loss(model)
        self._own_loss = task_loss is None
        self.loss_fn = task_loss or loss_function(data.task, label_smoothing=smoothing)
        self._generator = torch.Generator(device=device).manual_seed(seed)
        self._weights = [p for p in self.model.parameters() if p.dim() > 1]
        self._min_batch_rows = min_batch_rows(self.model)

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    def train_epoch(self) -> float:
        """One pass over the training split; the mean training loss."""
        rows = self.tensors.rows_train
        n = rows.shape[0]
        order = rows[torch.randperm(n, generator=self._generator, device=rows.device)]
        x, y = self.tensors.features(order), self.tensors.targets(order)
        noise, l1, clip = self.params["input_noise"], self.params["l1"], self.params["grad_clip"]
        self.model.train()
        losses = []
        autocast, step = self.precision.autocast, self.precision.backward_and_step
        bounds = batch_bounds(n, self._batch_rows(), min_rows=self._min_batch_rows)
        for start, stop in bounds:
            xb, yb = x[start:stop], y[start:stop]
            if noise:
                xb = xb + noise * torch.randn(xb.shape, generator=self._generator, device=xb.device)
            with autocast():
                loss = self.loss_fn(self.model(xb), yb)
            losses.append(loss.detach())
            if l1:
                loss = loss + l1 * sum(w.abs().sum() for w in self._weights)
            self.optimizer.zero_grad(set_to_none=True)
            step(loss, self.optimizer, clip=clip, model=self.model)
        return mean_over_samples(losses, bounds)

    def _batch_rows(self) -> int:
        return batch_rows(self.tensors.rows_train.shape[0], self.params["batch_size"])

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Loss and task metrics on a split, in evaluation mode (no dropout, no noise).

        The forward passes run over chunks of `max(batch rows, EVAL_CHUNK_ROWS)` rows, so
        that a large split costs a training step's activations rather than the whole
        split's; the chunks' outputs (rows x outputs) are joined so that every metric,
        macro-F1 and a plug-in's loss included, is computed as over the whole split."""
        rows = self.tensors.rows(split)
        if len(rows) == 0:
            return {}
        self.model.eval()
        chunk = max(self._batch_rows(), EVAL_CHUNK_ROWS)
        output = forward_in_chunks(self._forward, rows, chunk)
        y = self.tensors.targets(rows)
        values = {"loss": self.loss_fn(output, y)}
        if self.task == "classification":
            values.update(classification_metrics(output, y))
        else:
            values.update(regression_metrics(output, y, self.tensors.y_scale))
        return {f"{split}_{k}": float(v) for k, v in values.items()}

    def _forward(self, rows: torch.Tensor) -> torch.Tensor:
        with self.precision.autocast():
            return self.model(self.tensors.features(rows)).float()

    def snapshot(self) -> dict[str, torch.Tensor]:
        return copy_weights(self.model)

    def restore(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

    def state(self) -> dict[str, Any]:
        """Everything that the next epoch depends on: weights, optimizer, schedule, the
        data-order and noise generator."""
        return {
            "model": self.snapshot(),
            "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(),
            "generator": self._generator.get_state(),
            "scaler": self.precision.scaler.state_dict(),
        }

    def set_optimizer_knobs(self) -> None:
        """Put this trainer's own optimizer knobs (lr, weight decay, momentum, betas, ...)
        on its optimizer after another trainer's state was loaded into it (PBT's exploit):
        a fresh optimizer built from `params` says what each param group's values are."""
        fresh = build_optimizer(self.model.parameters(), self.params)
        for group, new in zip(self.optimizer.param_groups, fresh.param_groups, strict=True):
            group.update({k: v for k, v in new.items() if k != "params"})
            if "initial_lr" in group:
                group["initial_lr"] = new["lr"]
        self.schedule.set_base_lr(float(self.params["lr"]))

    def set_knobs(self, changed: set[str]) -> None:
        """Apply `params`' new values of the `changed` knobs mid-run (a replayed PBT
        schedule): optimizer knobs on the param groups, dropout on its layers, label
        smoothing on the loss; l1, input noise and grad clipping are read every epoch."""
        self.set_optimizer_knobs()
        if "dropout" in changed:
            for module in self.model.modules():
                if isinstance(module, torch.nn.Dropout):
                    module.p = float(self.params["dropout"])
        if "label_smoothing" in changed and self._own_loss and self.task == "classification":
            smoothing = float(self.params["label_smoothing"])
            self.loss_fn = loss_function(self.task, label_smoothing=smoothing)

    def load_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self._generator.set_state(state["generator"])
        if state.get("scaler"):
            self.precision.scaler.load_state_dict(state["scaler"])


def _seed(seed: int, device: torch.device) -> None:
    """Seed the generators this trial draws from. `torch.manual_seed` would also queue a
    lazy seed for every accelerator backend, formatting a stack trace each time: a third
    of a trivial trial's set-up on a CPU slot."""
    torch.random.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


class TrialTrainer:
    """All folds of one trial in step; metrics are means over folds.

    `objective` names the validation metric (e.g. `val_accuracy`) whose best
    epoch's weights are kept; `restore_best` then `evaluate` reproduces it.
    """

    def __init__(self, data: TensorData, params: dict[str, Any], *, model: str = "mlp",
                 objective: str = "val_accuracy", direction: str = "maximize", seed: int = 0,
                 max_epochs: int = 30,
                 param_schedule: dict[str, list[tuple[int, Any]]] | None = None):  # fmt: skip
        self.params = resolve(params, plugin_defaults(model))
        # Values of some knobs from given epochs on: {name: [(from_epoch, value), ...]}.
        self._param_schedule = {k: sorted(v) for k, v in (param_schedule or {}).items()}
        self._model_info = {
            "model": model, "sample_shape": tuple(data.sample_shape), "n_outputs": data.n_outputs,
            "task": data.task, "params": self.params,
        }  # fmt: skip
        self.objective = objective
        self.direction = direction
        self.folds = [
            Trainer(data, i, self.params, model=model, max_epochs=max_epochs, direction=direction,
                    seed=seed + 1000 * i)
            for i in range(len(data.folds))
        ]  # fmt: skip
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
        return state_file({
            "epoch": self.epoch, **self._best.saved(), "train_seconds": self.train_seconds,
            "history": self.history, "folds": [fold.state() for fold in self.folds],
            "adopted_at": self.adopted_at, "current_metrics": self.current_metrics,
        })  # fmt: skip

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
