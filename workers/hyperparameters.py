"""The hyperparameter vocabulary a worker understands: names, defaults and allowed values.

`check_value` is what lets a spec be refused at submission (422) rather than
failing trials one by one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adagrad", "adadelta", "rmsprop", "adam", "adamw")
SCHEDULE_NAMES = (
    "constant",
    "step",
    "exponential",
    "linear",
    "polynomial",
    "inverse_sqrt",
    "cosine",
    "cosine_restarts",
    "plateau",
)
ACTIVATION_NAMES = ("relu", "tanh", "sigmoid", "gelu", "leaky_relu")
INIT_NAMES = ("default", "xavier", "kaiming", "orthogonal")
PRECISION_NAMES = ("fp32", "bf16", "fp16")

# Which optimizers read each optimizer-specific knob; any other optimizer ignores it.
OPTIMIZER_KNOBS: dict[str, tuple[str, ...]] = {
    "momentum": ("momentum", "nesterov"),
    "beta1": ("adam", "adamw"),
    "beta2": ("adam", "adamw"),
    "eps": ("adagrad", "adadelta", "rmsprop", "adam", "adamw"),
    "rho": ("adadelta", "rmsprop"),
}

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
    "l1": 0.0,
    "dropout": 0.0,
    "input_noise": 0.0,
    "batch_norm": False,
    "label_smoothing": 0.0,
    "grad_clip": None,
    "lr_schedule": "constant",
    "lr_gamma": None,
    "lr_step_epochs": None,
    "warmup_epochs": 0,
    "hidden_layers": 1,
    "hidden_units": 128,
    "activation": "relu",
    "init": "default",
    "conv_channels": 16,
    "precision": "fp32",
    "compile": False,
}
KNOWN_HYPERPARAMETERS: frozenset[str] = frozenset(DEFAULTS)

_CHOICES: dict[str, tuple[Any, ...]] = {
    "optimizer": OPTIMIZER_NAMES,
    "lr_schedule": SCHEDULE_NAMES,
    "activation": ACTIVATION_NAMES,
    "init": INIT_NAMES,
    "batch_norm": (True, False),
    "precision": PRECISION_NAMES,
    "compile": (True, False),
}
# name -> (low, high, low inclusive, high inclusive, integer)
_RANGES: dict[str, tuple[float, float, bool, bool, bool]] = {
    "lr": (0, math.inf, False, False, False),
    "momentum": (0, 1, True, False, False),
    "beta1": (0, 1, True, False, False),
    "beta2": (0, 1, True, False, False),
    "eps": (0, 1, False, True, False),
    "rho": (0, 1, True, True, False),
    "weight_decay": (0, math.inf, True, False, False),
    "l1": (0, math.inf, True, False, False),
    "dropout": (0, 1, True, False, False),
    "input_noise": (0, math.inf, True, False, False),
    "label_smoothing": (0, 1, True, False, False),
    "grad_clip": (0, math.inf, False, False, False),
    "lr_gamma": (0, math.inf, False, False, False),
    "lr_step_epochs": (1, math.inf, True, False, True),
    "warmup_epochs": (0, math.inf, True, False, True),
    "hidden_layers": (0, 64, True, True, True),
    "hidden_units": (1, 65536, True, True, True),
    "conv_channels": (1, 4096, True, True, True),
}


def check_value(name: str, value: Any) -> str | None:
    """Why `value` is not allowed for hyperparameter `name`, or None when it is.

    A plug-in task's own hyperparameters are its to check (a bad value fails the trial).
    """
    if name not in KNOWN_HYPERPARAMETERS:
        return None
    if name == "batch_size":
        return _check_batch_size(value)
    if name in _CHOICES:
        allowed = _CHOICES[name]
        if not any(type(value) is type(c) and value == c for c in allowed):
            return f"{name} must be one of {list(allowed)}, got {value!r}"
        return None
    low, high, low_in, high_in, integer = _RANGES[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name} must be a number, got {value!r}"
    if integer and not float(value).is_integer():
        return f"{name} must be a whole number, got {value!r}"
    if (value < low or (value == low and not low_in)) or (
        value > high or (value == high and not high_in)
    ):
        left, right = "[" if low_in else "(", "]" if high_in else ")"
        return f"{name} must be in {left}{low}, {high}{right}, got {value!r}"
    return None


def _check_batch_size(value: Any) -> str | None:
    if value == "full" or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return None
    return f"batch_size must be an integer >= 1 or 'full', got {value!r}"


def resolve(params: dict[str, Any], extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The trial's params over the defaults (and a plug-in task's `extra` defaults), so
    every knob has a value."""
    defaults = {**DEFAULTS, **(extra or {})}
    unknown = set(params) - set(defaults)
    if unknown:
        raise ValueError(f"unknown hyperparameters {sorted(unknown)}")
    return {**defaults, **params}
