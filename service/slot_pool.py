"""Warm trial slots: idle slot actors kept between studies, by resource shape.

A new slot process starts Python and imports torch and the workers: about 5 s
here, before a new study's first epoch. A study that finds a warm slot of its
shape starts at once. Idle slots keep their Ray resources, so asking for a
slot of another shape first ends every idle slot of other shapes (Ray could
not place the new one otherwise); `max_idle` bounds what is kept.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import ray

from workers.slot import create_slot


@dataclass(frozen=True)
class SlotShape:
    cpus: float
    gpus: float


class SlotPool:
    """Idle slot actors by shape; use it from the service's event loop only."""

    def __init__(self, *, max_idle: int):
        self.max_idle = max_idle
        self._idle: dict[SlotShape, list[Any]] = defaultdict(list)

    @property
    def n_idle(self) -> int:
        return sum(len(actors) for actors in self._idle.values())

    def acquire(self, shape: SlotShape) -> tuple[Any, bool]:
        """An actor of `shape` and whether it was warm; idle ones of other shapes end first."""
        idle = self._idle.get(shape)
        if idle:
            return idle.pop(), True
        for other in [s for s in self._idle if s != shape]:
            for actor in self._idle.pop(other):
                ray.kill(actor, no_restart=True)
        return create_slot(num_cpus=shape.cpus, num_gpus=shape.gpus), False

    def release(self, actor: Any, shape: SlotShape) -> None:
        """Keep a healthy actor whose trial has ended, or end it when the pool is full."""
        if self.n_idle < self.max_idle:
            self._idle[shape].append(actor)
        else:
            ray.kill(actor, no_restart=True)

    def prewarm(self, shape: SlotShape, n: int) -> None:
        """Start idle actors until `n` are kept; each imports what trials need meanwhile.

        Nothing waits here: a study may take a warm slot before it has finished importing
        (its first call then waits), and a slot that fails to start is replaced when taken.
        """
        for _ in range(min(n, self.max_idle) - self.n_idle):
            actor = create_slot(num_cpus=shape.cpus, num_gpus=shape.gpus)
            actor.warm_up.remote()
            self._idle[shape].append(actor)

    def close(self) -> None:
        for actors in self._idle.values():
            for actor in actors:
                ray.kill(actor, no_restart=True)
        self._idle.clear()
