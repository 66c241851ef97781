"""Learning-rate schedules from torch.optim.lr_scheduler, stepped once per epoch.

With `warmup_epochs` = w, epoch e < w (0-based) trains at lr * (e + 1) / (w + 1);
the schedule then runs over the remaining T = max_epochs - w epochs, its own
epoch k counting from 0:

    constant        lr
    step            lr * lr_gamma ** (k // lr_step_epochs)      (gamma 0.1, 10 epochs)
    exponential     lr * lr_gamma ** k                          (gamma 0.95)
    linear          lr * (1 - k / T)
    polynomial      lr * (1 - k / T) ** 2
    inverse_sqrt    lr / sqrt(k + 1)
    cosine          lr * (1 + cos(pi * k / T)) / 2
    cosine_restarts lr * (1 + cos(pi * (k % lr_step_epochs) / lr_step_epochs)) / 2   (10 epochs)
    plateau         lr * lr_gamma each time lr_step_epochs + 1 epochs in a row bring no
                    better validation value (torch's patience)  (gamma 0.1, 3 epochs)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from torch.optim import Optimizer, lr_scheduler

Scheduler = lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau
Builder = Callable[[Optimizer, dict[str, Any], int, str], Scheduler]


def _gamma(params: dict[str, Any], default: float) -> float:
    value = params.get("lr_gamma")
    return float(value) if value is not None else default


def _every(params: dict[str, Any], default: int) -> int:
    value = params.get("lr_step_epochs")
    return int(value) if value is not None else default


SCHEDULES: dict[str, Builder] = {
    "constant": lambda opt, p, t, d: lr_scheduler.LambdaLR(opt, lambda k: 1.0),
    "step": lambda opt, p, t, d: lr_scheduler.StepLR(opt, _every(p, 10), gamma=_gamma(p, 0.1)),
    "exponential": lambda opt, p, t, d: lr_scheduler.ExponentialLR(opt, gamma=_gamma(p, 0.95)),
    "linear": lambda opt, p, t, d: lr_scheduler.LinearLR(opt, 1.0, 0.0, total_iters=t),
    "polynomial": lambda opt, p, t, d: lr_scheduler.PolynomialLR(opt, total_iters=t, power=2.0),
    "inverse_sqrt": lambda opt, p, t, d: lr_scheduler.LambdaLR(opt, lambda k: 1 / math.sqrt(k + 1)),
    "cosine": lambda opt, p, t, d: lr_scheduler.CosineAnnealingLR(opt, T_max=t),
    "cosine_restarts": lambda opt, p, t, d: lr_scheduler.CosineAnnealingWarmRestarts(
        opt, T_0=_every(p, 10)
    ),
    "plateau": lambda opt, p, t, d: lr_scheduler.ReduceLROnPlateau(
        opt, mode="max" if d == "maximize" else "min", factor=_gamma(p, 0.1), patience=_every(p, 3)
    ),
}


class EpochSchedule:
    """Warmup, then the named schedule; `step(value)` after every epoch."""

    def __init__(
        self,
        optimizer: Optimizer,
        params: dict[str, Any],
        *,
        max_epochs: int,
        direction: str = "maximize",
    ):
        name = params.get("lr_schedule") or "constant"
        if name not in SCHEDULES:
            raise ValueError(f"unknown lr_schedule '{name}', expected one of {sorted(SCHEDULES)}")
        warmup_epochs = int(params.get("warmup_epochs") or 0)
        main = SCHEDULES[name](optimizer, params, max(1, max_epochs - warmup_epochs), direction)
        self._plateau = main if isinstance(main, lr_scheduler.ReduceLROnPlateau) else None
        self._warmup_epochs = warmup_epochs if self._plateau is not None else 0
        self._scheduler: lr_scheduler.LRScheduler | None = None
        if warmup_epochs:
            warmup = lr_scheduler.LinearLR(optimizer, 1 / (warmup_epochs + 1), 1.0, warmup_epochs)
            self._scheduler = (
                warmup
                if self._plateau is not None
                else lr_scheduler.SequentialLR(optimizer, [warmup, main], [warmup_epochs])  # type: ignore[list-item]
            )
        elif self._plateau is None:
            self._scheduler = main  # type: ignore[assignment]
        self._epoch = 0

    def step(self, value: float) -> None:
        """Move to the next epoch; `value` is the validation value plateau watches."""
        self._epoch += 1
        if self._plateau is not None and self._epoch > self._warmup_epochs:
            self._plateau.step(value)
        elif self._scheduler is not None:
            self._scheduler.step()

    def set_base_lr(self, lr: float) -> None:
        """Make `lr` the schedule's base from here on (PBT changed it mid-run); the
        schedule's factor for the current epoch still applies."""
        schedulers = [] if self._scheduler is None else [self._scheduler]
        schedulers += getattr(self._scheduler, "_schedulers", [])
        for scheduler in schedulers:
            scheduler.base_lrs = [lr] * len(scheduler.base_lrs)

    def state_dict(self) -> dict[str, Any]:
        """What continues the schedule exactly after a resume (see TrialTrainer.state)."""
        return {
            "epoch": self._epoch,
            "plateau": None if self._plateau is None else self._plateau.state_dict(),
            "scheduler": None if self._scheduler is None else self._scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._epoch = int(state["epoch"])
        if self._plateau is not None:
            self._plateau.load_state_dict(state["plateau"])
        if self._scheduler is not None:
            self._scheduler.load_state_dict(state["scheduler"])
