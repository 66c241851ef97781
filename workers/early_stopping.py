"""Patience-based early stopping on the validation objective."""

from __future__ import annotations

import math


class EarlyStopping:
    """Stops once `patience` epochs pass without improving by more than `min_delta`."""

    def __init__(self, *, patience: int, min_delta: float = 0.0, direction: str = "maximize"):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be maximize or minimize, got {direction!r}")
        self.patience = patience
        self.min_delta = min_delta
        self._sign = 1.0 if direction == "maximize" else -1.0
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._epochs_without_gain = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record one epoch's value; True when training should stop."""
        if math.isfinite(value) and self._improves(value):
            self.best, self.best_epoch = value, epoch
            self._epochs_without_gain = 0
        else:
            self._epochs_without_gain += 1
        return self._epochs_without_gain >= self.patience

    def _improves(self, value: float) -> bool:
        if self.best is None:
            return True
        return self._sign * (value - self.best) > self.min_delta
