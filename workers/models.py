"""Model builders keyed by the spec's `model.kind`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn


def build_mlp(n_features: int, n_outputs: int, params: dict[str, Any]) -> nn.Module:
    """A ReLU MLP: `hidden_layers` blocks of `hidden_units`, dropout after each."""
    layers: list[nn.Module] = []
    width = n_features
    for _ in range(int(params["hidden_layers"])):
        layers += [nn.Linear(width, int(params["hidden_units"])), nn.ReLU()]
        if params["dropout"] > 0:
            layers.append(nn.Dropout(float(params["dropout"])))
        width = int(params["hidden_units"])
    layers.append(nn.Linear(width, n_outputs))
    return nn.Sequential(*layers)


MODELS: dict[str, Callable[[int, int, dict[str, Any]], nn.Module]] = {"mlp": build_mlp}
