"""Trial slots inside the service's own process: the worker's trainer on threads, no Ray.

The same `workers` code trains as in a Ray slot, without a process per slot:
tests and benchmarks of the search logic use it, and it documents what a
runner must do. Only CPU; epochs run on worker threads so the event loop stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from service.data.datasets import DataRoots, prepare_data
from service.run.runner import LastEpoch, TrialEnd, TrialError, TrialStart, trial_error
from service.spec import StudySpec
from workers.slot import EpochResult, Exploited, Resumed
from workers.tensors import TensorData
from workers.trial_trainer import TrialTrainer


class InProcessSlot:
    node = "in-process"
    device = "cpu"

    def __init__(self, tensors: TensorData, spec: StudySpec):
        self._tensors = tensors
        self._spec = spec
        self._trainer: TrialTrainer | None = None

    async def start_trial(self, start: TrialStart) -> None:
        self._trainer = await _guarded(
            TrialTrainer,
            self._tensors,
            start.params,
            model=self._spec.model.key,
            objective=self._spec.primary.metric,
            direction=self._spec.primary.direction,
            seed=start.seed,
            max_epochs=self._spec.budget.max_epochs,
            param_schedule={
                name: [(p.from_epoch, p.value) for p in points]
                for name, points in self._spec.param_schedule.items()
            },
        )

    async def resume_trial(self, start: TrialStart) -> Resumed:
        """No checkpoints here: a resumed trial starts over."""
        await self.start_trial(start)
        return Resumed([])

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        if self._trainer is None:
            raise TrialError("run_epoch called before start_trial")
        return EpochResult(await _guarded(self._trainer.train_epoch))

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        return None, None

    async def exploit(self, start: TrialStart, donor_key: str) -> Exploited:
        """No checkpoints here, so no copies: a PBT member trains on unchanged."""
        return Exploited(error="in-process slots keep no checkpoints to copy")

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        trainer, self._trainer = self._trainer, None
        if trainer is None:
            return TrialEnd()
        weights = await _guarded(trainer.checkpoint) if keep_weights else None
        return TrialEnd(await _guarded(trainer.test_metrics), weights)

    async def close(self) -> None:
        self._trainer = None


async def _guarded(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - a trial's own failure, as a Ray slot reports it
        raise trial_error(exc) from exc


class InProcessRunner:
    """Slots for one study on threads of this process, sharing the study's tensors."""

    def __init__(self, spec: StudySpec, tensors: TensorData):
        self._spec = spec
        self._tensors = tensors

    @classmethod
    async def for_study(cls, study_id: int, spec: StudySpec, roots: DataRoots) -> InProcessRunner:
        data = await asyncio.to_thread(prepare_data, spec, roots)
        return cls(spec, TensorData.on_cpu(data))

    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> InProcessSlot:
        if on_grant is not None:
            on_grant()
        return InProcessSlot(self._tensors, self._spec)

    async def release_slot(self, slot: InProcessSlot, *, healthy: bool) -> None:
        await slot.close()

    def should_yield(self, slot: InProcessSlot) -> bool:
        return False

    async def close(self) -> None:
        return None
