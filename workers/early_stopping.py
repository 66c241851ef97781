"""Patience-based early stopping on the validation objective."""

from __future__ import annotations

import math

from workers.direction import DIRECTIONS, improves


class EarlyStopping:
    """Stops once `patience` epochs pass without improving by more than `min_delta`."""

    def __init__(self, *, patience: int, min_delta: float = 0.0, direction: str = "maximize"):
        if patience < 1:
            raise ValueError(f"patience must be >= 1, got {patience}")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be maximize or minimize, got {direction!r}")
        self.patience = patience
        self.min_delta = min_delta
        self.direction = direction
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._epochs_without_gain = 0

    def update(self, epoch: int, value: float) -> bool:
        """Record one epoch's value; True when training should stop."""
        if math.isfinite(value) and improves(value, self.best, self.direction, by=self.min_delta):
            self.best, self.best_epoch = value, epoch
            self._epochs_without_gain = 0
        else:
            self._epochs_without_gain += 1
        return self._epochs_without_gain >= self.patience
