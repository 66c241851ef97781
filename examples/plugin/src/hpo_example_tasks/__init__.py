"""An example hpo-service plug-in: a residual MLP on three interleaved spirals.

Install it where the service and its Ray workers run (`pip install -e examples/plugin`);
a study then names it with `model: {kind: plugin, name: residual-mlp}` and
`dataset: {source: plugin, name: residual-mlp}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from workers.tasks import TrainingTask


class ResidualBlock(nn.Module):
    """x + MLP(GroupNorm(x)): the skip keeps deep stacks trainable."""

    def __init__(self, width: int, groups: int, dropout: float):
        super().__init__()
        self.body = nn.Sequential(
            nn.GroupNorm(groups, width),
            nn.Linear(width, width),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(width, width),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResidualMLP(TrainingTask):
    description = "Residual MLP (GroupNorm, GELU) on three interleaved 2-D spirals."
    task = "classification"
    hyperparameters = {"width": 64, "blocks": 2, "groups": 4}

    def build_model(
        self, sample_shape: tuple[int, ...], n_outputs: int, params: dict[str, Any]
    ) -> nn.Module:
        width, blocks, groups = int(params["width"]), int(params["blocks"]), int(params["groups"])
        if width % groups:
            # GroupNorm would raise the same, less clearly; the trial fails with this message.
            raise ValueError(f"width {width} is not divisible by groups {groups}")
        n_inputs = int(np.prod(sample_shape))
        return nn.Sequential(
            nn.Linear(n_inputs, width),
            *(ResidualBlock(width, groups, float(params["dropout"])) for _ in range(blocks)),
            nn.Linear(width, n_outputs),
        )

    def load_data(self, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """1,500 points on three noisy spirals, made here: nothing is downloaded."""
        rng = np.random.default_rng(seed)
        per_class, classes = 500, 3
        radius = np.tile(np.linspace(0.05, 1.0, per_class), classes)
        label = np.repeat(np.arange(classes), per_class)
        angle = radius * 8.0 + label * (2 * np.pi / classes) + rng.normal(0, 0.2, radius.size)
        x = np.stack([radius * np.sin(angle), radius * np.cos(angle)], axis=1)
        return x.astype(np.float32), label
