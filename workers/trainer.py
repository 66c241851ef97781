"""A trial's training loop: set up, train one epoch, evaluate, keep the best weights.

`Trainer` trains one fold on tensors sliced per batch (`workers.batches`; no DataLoader:
slicing in-memory tensors is 1.4x faster for small models). `TrialTrainer` runs every
fold of a trial in step (`workers.trial_trainer`) and reports their mean, so k-fold
cross-validation is one more knob, not another loop; what it keeps, saves and restores
is `workers.trial_state`'s.

The tensors go to the slot's device once per study (`workers.tensors`), so an epoch on a
GPU copies nothing from the host; `precision`, `compile` and (for the CNN on CUDA)
channels-last memory are per trial.
"""

from __future__ import annotations

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
from workers.metrics import classification_metrics, loss_function, regression_metrics
from workers.models import build_model, plugin_loss
from workers.optimizers import build_optimizer
from workers.precision import Precision
from workers.schedules import EpochSchedule
from workers.tensors import TensorData, model_on_device
from workers.trial_state import copy_weights


class Trainer:
    """Trains one fold epoch by epoch with the trial's optimizer, schedule and regularizers."""

    def __init__(
        self,
        data: TensorData,
        fold: int,
        params: dict[str, Any],
        *,
        model: str,
        max_epochs: int,
        direction: str,
        seed: int,
    ):
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
