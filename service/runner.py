"""How a driver reaches trial slots: a small protocol, and its Ray implementation.

The driver sees only `TrialRunner` and `Slot`, so its logic runs the same with
a fake runner in tests and with Ray actors in the service.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Protocol

import ray
import ray.exceptions

from service.datasets import DataRoots, prepare_data
from service.slot_pool import SlotPool, SlotShape
from service.spec import StudySpec
from workers.data import PreparedData


class WorkerLost(Exception):
    """The slot's process or node died; the trial may be retried on a new slot."""


class TrialError(Exception):
    """Training raised for these params; the trial fails, the study goes on."""


@dataclass(frozen=True)
class TrialStart:
    params: dict[str, Any]
    seed: int


@dataclass(frozen=True)
class TrialEnd:
    """What a finished trial hands back: test metrics of its best weights, and the
    weights themselves (serialized) when they were asked for."""

    test_metrics: dict[str, float] | None = None
    weights: bytes | None = None


@dataclass(frozen=True)
class LastEpoch:
    """Marks a trial's last possible epoch, so a slot may end the trial in the same call.

    The weights come along when `keep` holds and the trial's best value is at least as
    good as `floor` (any value when None): the study's best when the epoch began.
    """

    keep: bool
    floor: float | None = None


class Slot(Protocol):
    node: str

    async def start_trial(self, start: TrialStart) -> None:
        """Begin a trial; a slot may defer the work to the first `run_epoch`."""
        ...

    async def run_epoch(self, *, last: LastEpoch | None = None) -> dict[str, float]:
        """Train one epoch; with `last`, the slot may also end the trial (see LastEpoch)."""
        ...

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        """Finish the trial; its best weights too when `keep_weights` (None before any epoch)."""
        ...

    async def close(self) -> None: ...


class TrialRunner(Protocol):
    async def open_slot(self) -> Slot: ...

    async def close(self, *, keep_warm: bool = False) -> None:
        """End the study's slots; with `keep_warm`, healthy ones may serve later studies."""
        ...


class RaySlot:
    """One `workers.slot.TrialSlot` actor, with Ray's errors turned into ours.

    One round trip per epoch and none more: the start rides with the first epoch, and
    the end (test metrics, weights) with the epoch marked last, or with `end_trial`
    when the trial stops before `max_epochs`.
    """

    def __init__(self, actor: Any, data_key: str, data_ref: ray.ObjectRef, spec: StudySpec):
        self._actor = actor
        self._data_key = data_key
        self._data_ref = data_ref
        self._spec = spec
        self._pending_start: dict[str, Any] | None = None
        self._ended: TrialEnd | None = None
        self.closed = False
        self.used = False
        self.node = ""

    async def locate(self) -> None:
        placement = await _call(self._actor.placement.remote())
        gpus = f" gpu={','.join(placement.gpu_ids)}" if placement.gpu_ids else ""
        self.node = f"{placement.node[:12]} pid={placement.pid}{gpus}"

    async def start_trial(self, start: TrialStart) -> None:
        self.used = True
        # The data ref travels inside a dict so Ray hands it over unresolved: the slot
        # fetches the data only when it has not got this study's tensors yet.
        self._pending_start = {
            "data_key": self._data_key, "data": self._data_ref, "params": start.params,
            "model": self._spec.model.key, "objective": self._spec.primary.metric,
            "direction": self._spec.primary.direction, "seed": start.seed,
            "max_epochs": self._spec.budget.max_epochs,
        }  # fmt: skip

    async def run_epoch(self, *, last: LastEpoch | None = None) -> dict[str, float]:
        start, self._pending_start = self._pending_start, None
        if last is None:
            metrics: dict[str, float] = await _call(self._actor.run_epoch.remote(start))
            return metrics
        ref = self._actor.run_last_epoch.remote(start, keep=last.keep, floor=last.floor)
        metrics, test_metrics, weights = await _call(ref)
        self._ended = TrialEnd(test_metrics, weights)
        return metrics

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        self._pending_start = None
        ended, self._ended = self._ended, None
        if ended is not None:
            return ended if keep_weights else TrialEnd(ended.test_metrics)
        test_metrics, weights = await _call(self._actor.end_trial.remote(keep_weights))
        return TrialEnd(test_metrics, weights)

    async def close(self) -> None:
        self.closed = True
        ray.kill(self._actor, no_restart=True)

    def hand_over(self) -> Any:
        """The actor, for a pool to keep; this slot is closed from here on."""
        self.closed = True
        return self._actor


async def _call(ref: ray.ObjectRef) -> Any:
    try:
        return await ref
    except ray.exceptions.RayActorError as exc:
        raise WorkerLost(str(exc).splitlines()[0]) from exc
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if exc.cause is not None else exc
        raise TrialError(f"{type(cause).__name__}: {cause}") from exc


class RayTrialRunner:
    """Slots for one study: actors sized by `resources` (warm ones from `pool` first),
    the data put in Ray once."""

    def __init__(self, study_id: int, spec: StudySpec, data: PreparedData, pool: SlotPool):
        self._spec = spec
        self._pool = pool
        self._shape = SlotShape(spec.resources.cpus_per_trial, spec.resources.gpus_per_trial)
        self._data_key = f"study-{study_id}"
        self._data_ref = ray.put(data)
        self._slots: list[RaySlot] = []

    @classmethod
    async def for_study(
        cls, study_id: int, spec: StudySpec, data_roots: DataRoots, pool: SlotPool
    ) -> RayTrialRunner:
        data = await asyncio.to_thread(prepare_data, spec, data_roots)
        return cls(study_id, spec, data, pool)

    async def open_slot(self) -> Slot:
        while True:
            actor, warm = self._pool.acquire(self._shape)
            slot = RaySlot(actor, self._data_key, self._data_ref, self._spec)
            self._slots.append(slot)
            try:
                await slot.locate()
            except WorkerLost:
                await slot.close()
                if warm:  # it died while idle: start a fresh one
                    continue
                raise
            return slot

    async def close(self, *, keep_warm: bool = False) -> None:
        for slot in self._slots:
            if slot.closed:
                continue
            if keep_warm or not slot.used:  # one that never trained has nothing to abort
                self._pool.release(slot.hand_over(), self._shape)
            else:
                await slot.close()
        self._slots.clear()
