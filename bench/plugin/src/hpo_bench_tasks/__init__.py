"""An objective that trains nothing, for measuring orchestration cost (bench/overhead.py).

The model outputs a constant: `score(params)` for every sample, through a parameter that
gradients reach but that cannot change the output. With zero-mean standardized targets,
`val_rmse` is then a fixed, increasing function of the score: the service's arm ranks
configurations exactly as the peers' plain `score` does, in one epoch of a few samples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn

from workers.tasks import TrainingTask


def score(lr: float, x: float) -> float:
    """A bowl with its minimum 0 at lr = 0.01, x = 0."""
    return (math.log10(lr) + 2.0) ** 2 + x**2


class ConstantOutput(nn.Module):
    def __init__(self, value: float):
        super().__init__()
        self.value = value
        self.anchor = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full((len(x), 1), self.value, device=x.device) + 0.0 * self.anchor


class Analytic(TrainingTask):
    description = "score(lr, x) as a constant prediction; trains nothing (benchmarks only)"
    task = "regression"
    hyperparameters = {"x": 0.0}

    def build_model(
        self, sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]
    ) -> nn.Module:
        return ConstantOutput(score(float(params["lr"]), float(params["x"])))

    def load_data(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.arange(40, dtype=np.float32)[:, None]
        y = np.tile([-1.0, 1.0], 20).astype(np.float32)
        return x, y
