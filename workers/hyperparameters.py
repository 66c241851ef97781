"""The hyperparameter vocabulary a worker understands, and its defaults."""

from __future__ import annotations

from typing import Any

KNOWN_HYPERPARAMETERS: frozenset[str] = frozenset(
    {
        "lr", "optimizer", "momentum", "beta1", "beta2", "eps", "rho", "batch_size",
        "weight_decay", "l1", "dropout", "input_noise", "batch_norm", "label_smoothing",
        "grad_clip", "lr_schedule", "lr_gamma", "lr_step_epochs", "warmup_epochs",
        "hidden_layers", "hidden_units", "activation", "init", "conv_channels",
    }
)  # fmt: skip

DEFAULTS: dict[str, Any] = {
    "lr": 1e-3,
    "optimizer": "adam",
    "momentum": 0.9,
    "beta1": 0.9,
    "beta2": 0.999,
    "eps": 1e-8,
    "rho": 0.9,
    "batch_size": 64,
    "weight_decay": 0.0,
    "dropout": 0.0,
    "hidden_layers": 1,
    "hidden_units": 128,
}


def resolve(params: dict[str, Any]) -> dict[str, Any]:
    """The trial's params over the defaults, so every knob has a value."""
    unknown = set(params) - KNOWN_HYPERPARAMETERS
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}")
    return {**DEFAULTS, **params}
