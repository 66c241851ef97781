"""Validation metrics per task, computed on the device without leaving torch."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def loss_function(task: str, *, label_smoothing: float = 0.0) -> LossFn:
    """Cross-entropy for classification, mean squared error for regression."""
    if task == "classification":
        return nn.CrossEntropyLoss(label_smoothing=label_smoothing)
    mse = nn.MSELoss()
    return lambda output, target: mse(output.squeeze(-1), target)


def classification_metrics(logits: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """Accuracy and macro-F1 over the classes present in targets or predictions."""
    n_classes = logits.shape[1]
    predicted = logits.argmax(dim=1)
    hits = predicted == y
    true_pos = torch.bincount(y[hits], minlength=n_classes).float()
    predicted_n = torch.bincount(predicted, minlength=n_classes).float()
    actual_n = torch.bincount(y, minlength=n_classes).float()
    present = (predicted_n + actual_n) > 0
    f1 = 2 * true_pos / (predicted_n + actual_n).clamp(min=1)
    return {"accuracy": hits.float().mean(), "f1": f1[present].mean()}


def regression_metrics(
    output: torch.Tensor, y: torch.Tensor, y_scale: float
) -> dict[str, torch.Tensor]:
    """RMSE and MAE in the target's own units, and R2."""
    error = output.squeeze(-1) - y
    total = ((y - y.mean()) ** 2).sum().clamp(min=1e-12)
    return {
        "rmse": error.pow(2).mean().sqrt() * y_scale,
        "mae": error.abs().mean() * y_scale,
        "r2": 1 - error.pow(2).sum() / total,
    }
