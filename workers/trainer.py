"""One trial's training loop: set up, train one epoch, evaluate, keep the best weights."""

from __future__ import annotations

import copy
import math
import time
from typing import Any

import torch
from torch import nn

from workers.data import DataSplits
from workers.hyperparameters import resolve
from workers.models import MODELS
from workers.optimizers import build_optimizer


class TensorData:
    """A study's splits as tensors on one device, built once and shared by trials."""

    def __init__(self, data: DataSplits, device: torch.device):
        def put(array: Any) -> torch.Tensor:
            return torch.tensor(array, device=device)

        self.x_train, self.y_train = put(data.x_train), put(data.y_train)
        self.x_val, self.y_val = put(data.x_val), put(data.y_val)
        self.x_test, self.y_test = put(data.x_test), put(data.y_test)
        self.n_features = data.n_features
        self.n_classes = data.n_classes


class Trainer:
    """Trains a model epoch by epoch on in-memory tensors sliced per batch.

    `objective` names the validation metric (e.g. `val_accuracy`) whose best
    epoch's weights are kept; `evaluate` after `restore_best` reproduces it.
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
    ):
        self.params = resolve(params)
        self.data = data
        self.objective = objective
        self._sign = 1.0 if direction == "maximize" else -1.0
        torch.manual_seed(seed)
        device = data.x_train.device
        self.model = MODELS[model](data.n_features, data.n_classes, self.params).to(device)
        self.optimizer = build_optimizer(self.model.parameters(), self.params)
        self.loss_fn = nn.CrossEntropyLoss()
        self._generator = torch.Generator(device=device).manual_seed(seed)
        self.epoch = 0
        self.best_value: float | None = None
        self.best_epoch: int | None = None
        self._best_state: dict[str, torch.Tensor] | None = None

    def train_epoch(self) -> dict[str, float]:
        """Run one pass over the training split; return the epoch's metrics."""
        started = time.perf_counter()
        self.epoch += 1
        train_loss = self._fit_one_pass()
        metrics = {"train_loss": train_loss, **self.evaluate("val")}
        metrics["lr"] = float(self.optimizer.param_groups[0]["lr"])
        self._keep_if_best(metrics)
        metrics["seconds"] = time.perf_counter() - started
        return metrics

    def _fit_one_pass(self) -> float:
        x, y = self.data.x_train, self.data.y_train
        n = x.shape[0]
        batch_size = n if self.params["batch_size"] == "full" else int(self.params["batch_size"])
        order = torch.randperm(n, generator=self._generator, device=x.device)
        x, y = x[order], y[order]
        self.model.train()
        total = torch.zeros((), device=x.device)
        for start in range(0, n, batch_size):
            xb, yb = x[start : start + batch_size], y[start : start + batch_size]
            loss = self.loss_fn(self.model(xb), yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.detach() * xb.shape[0]
        return float(total) / n

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> dict[str, float]:
        """Loss and accuracy on a split, with dropout off."""
        x, y = getattr(self.data, f"x_{split}"), getattr(self.data, f"y_{split}")
        self.model.eval()
        logits = self.model(x)
        loss = float(self.loss_fn(logits, y))
        accuracy = float((logits.argmax(dim=1) == y).float().mean())
        return {f"{split}_loss": loss, f"{split}_accuracy": accuracy}

    def _keep_if_best(self, metrics: dict[str, float]) -> None:
        value = metrics[self.objective]
        if not math.isfinite(value):
            return
        if self.best_value is None or self._sign * (value - self.best_value) > 0:
            self.best_value, self.best_epoch = value, self.epoch
            self._best_state = copy.deepcopy(self.model.state_dict())

    def restore_best(self) -> None:
        """Load the weights of the best epoch seen so far."""
        if self._best_state is not None:
            self.model.load_state_dict(self._best_state)

    def best_state(self) -> dict[str, torch.Tensor] | None:
        return self._best_state
