"""torch.optim optimizers keyed by the `optimizer` hyperparameter."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch

Builder = Callable[[Iterable[torch.nn.Parameter], dict[str, Any]], torch.optim.Optimizer]


def _sgd(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(parameters, lr=p["lr"], weight_decay=p["weight_decay"])


def _momentum(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        parameters, lr=p["lr"], momentum=p["momentum"], weight_decay=p["weight_decay"]
    )


def _nesterov(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.SGD(
        parameters,
        lr=p["lr"],
        momentum=p["momentum"],
        nesterov=True,
        weight_decay=p["weight_decay"],
    )


def _adagrad(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adagrad(parameters, lr=p["lr"], eps=p["eps"], weight_decay=p["weight_decay"])


def _adadelta(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adadelta(
        parameters, lr=p["lr"], rho=p["rho"], eps=p["eps"], weight_decay=p["weight_decay"]
    )


def _rmsprop(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.RMSprop(
        parameters, lr=p["lr"], alpha=p["rho"], eps=p["eps"], weight_decay=p["weight_decay"]
    )


def _adam(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.Adam(
        parameters,
        lr=p["lr"],
        betas=(p["beta1"], p["beta2"]),
        eps=p["eps"],
        weight_decay=p["weight_decay"],
    )


def _adamw(parameters: Iterable[torch.nn.Parameter], p: dict[str, Any]) -> torch.optim.Optimizer:
    return torch.optim.AdamW(
        parameters,
        lr=p["lr"],
        betas=(p["beta1"], p["beta2"]),
        eps=p["eps"],
        weight_decay=p["weight_decay"],
    )


OPTIMIZERS: dict[str, Builder] = {
    "sgd": _sgd,
    "momentum": _momentum,
    "nesterov": _nesterov,
    "adagrad": _adagrad,
    "adadelta": _adadelta,
    "rmsprop": _rmsprop,
    "adam": _adam,
    "adamw": _adamw,
}


def build_optimizer(
    parameters: Iterable[torch.nn.Parameter], params: dict[str, Any]
) -> torch.optim.Optimizer:
    """The optimizer named by `params['optimizer']`, with its own knobs from `params`."""
    name = params["optimizer"]
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer '{name}', expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name](parameters, params)
