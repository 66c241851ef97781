"""Each optimizer's first steps match its textbook update on a tiny problem."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
import torch

from workers.hyperparameters import DEFAULTS
from workers.optimizers import OPTIMIZERS, build_optimizer

W0 = [0.5, -1.0, 2.0]
GRADS = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1]]
LR = 0.1


def steps(name: str, **knobs: Any) -> list[list[float]]:
    """Weights after each of two steps from W0 with the fixed gradients GRADS."""
    weight = torch.nn.Parameter(torch.tensor(W0, dtype=torch.float64))
    optimizer = build_optimizer([weight], {**DEFAULTS, "optimizer": name, "lr": LR, **knobs})
    seen = []
    for grad in GRADS:
        weight.grad = torch.tensor(grad, dtype=torch.float64)
        optimizer.step()
        seen.append(weight.detach().tolist())
    return seen


def sgd(w: float, gs: list[float]) -> list[float]:
    out = []
    for g in gs:
        w -= LR * g
        out.append(w)
    return out


def momentum(w: float, gs: list[float], m: float = 0.9, nesterov: bool = False) -> list[float]:
    out, buf = [], 0.0
    for i, g in enumerate(gs):
        buf = g if i == 0 else m * buf + g
        w -= LR * (g + m * buf if nesterov else buf)
        out.append(w)
    return out


def adagrad(w: float, gs: list[float], eps: float = 1e-8) -> list[float]:
    out, total = [], 0.0
    for g in gs:
        total += g * g
        w -= LR * g / (math.sqrt(total) + eps)
        out.append(w)
    return out


def adadelta(w: float, gs: list[float], rho: float = 0.9, eps: float = 1e-8) -> list[float]:
    out, square, delta_square = [], 0.0, 0.0
    for g in gs:
        square = rho * square + (1 - rho) * g * g
        delta = math.sqrt(delta_square + eps) / math.sqrt(square + eps) * g
        delta_square = rho * delta_square + (1 - rho) * delta * delta
        w -= LR * delta
        out.append(w)
    return out


def rmsprop(w: float, gs: list[float], alpha: float = 0.9, eps: float = 1e-8) -> list[float]:
    out, square = [], 0.0
    for g in gs:
        square = alpha * square + (1 - alpha) * g * g
        w -= LR * g / (math.sqrt(square) + eps)
        out.append(w)
    return out


def adam(
    w: float,
    gs: list[float],
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    decoupled_decay: float = 0.0,
) -> list[float]:
    out, m, v = [], 0.0, 0.0
    for t, g in enumerate(gs, start=1):
        w *= 1 - LR * decoupled_decay
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        w -= LR * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
        out.append(w)
    return out


FORMULAS: dict[str, tuple[dict[str, Any], Callable[[float, list[float]], list[float]]]] = {
    "sgd": ({}, sgd),
    "momentum": ({"momentum": 0.8}, lambda w, gs: momentum(w, gs, m=0.8)),
    "nesterov": ({"momentum": 0.8}, lambda w, gs: momentum(w, gs, m=0.8, nesterov=True)),
    "adagrad": ({}, adagrad),
    "adadelta": ({"rho": 0.8}, lambda w, gs: adadelta(w, gs, rho=0.8)),
    "rmsprop": ({"rho": 0.7}, lambda w, gs: rmsprop(w, gs, alpha=0.7)),
    "adam": ({"beta1": 0.8, "beta2": 0.99}, lambda w, gs: adam(w, gs, b1=0.8, b2=0.99)),
    "adamw": ({"weight_decay": 0.1}, lambda w, gs: adam(w, gs, decoupled_decay=0.1)),
}


def test_every_optimizer_has_a_formula() -> None:
    assert set(FORMULAS) == set(OPTIMIZERS)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_two_steps_match_the_formula(name: str) -> None:
    knobs, formula = FORMULAS[name]
    got = steps(name, **knobs)
    for i, w in enumerate(W0):
        expected = formula(w, [grads[i] for grads in GRADS])
        assert [step[i] for step in got] == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_nesterov_looks_ahead_where_momentum_does_not() -> None:
    plain, ahead = steps("momentum", momentum=0.9), steps("nesterov", momentum=0.9)
    assert plain[0] != pytest.approx(ahead[0])
    first = [w - LR * (1 + 0.9) * g for w, g in zip(W0, GRADS[0], strict=True)]
    assert ahead[0] == pytest.approx(first)


def test_adam_applies_l2_to_the_gradient_and_adamw_decouples_it() -> None:
    coupled, decoupled = steps("adam", weight_decay=0.1), steps("adamw", weight_decay=0.1)
    assert coupled[1] != pytest.approx(decoupled[1])
    expected = [adam(w, [g + 0.1 * w]) for w, g in zip(W0, GRADS[0], strict=True)]
    assert coupled[0] == pytest.approx([e[0] for e in expected])
