"""How a driver reaches trial slots: a small protocol, and its Ray implementation.

The driver sees only `TrialRunner` and `Slot`, so its logic runs the same with
a fake runner in tests and with Ray actors in the service.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import ray
import ray.exceptions

from service.cluster.scheduler import SlotScheduler
from service.cluster.slot_contract import Lease
from service.data.datasets import DataRoots, prepare_data
from service.spec import StudySpec
from workers import device
from workers.data import PreparedData
from workers.slot import EpochResult, Exploited, Resumed
from workers.trial_checkpoints import CheckpointPolicy


class WorkerLost(Exception):
    """The slot's process or node died; the trial may be retried on a new slot."""


class TrialError(Exception):
    """Training raised for these params; the trial fails, the study goes on."""


class TrialOutOfMemory(TrialError):
    """The trial ran out of device memory: its params' fault. The slot has freed the
    memory and takes the next trial."""


class SlotCannotTrain(TrialError):
    """The slot was given GPUs that it cannot use: the trial fails without training, and
    the study is warned (the cluster, not the params, needs fixing)."""


_KINDS: dict[type[Exception], type[TrialError]] = {
    device.OutOfMemory: TrialOutOfMemory,
    device.DeviceUnavailable: SlotCannotTrain,
}


def trial_error(cause: BaseException) -> TrialError:
    """What a trial's training raised, as the driver sees it: the worker's own kinds keep
    their meaning; torch's out-of-memory error (a slot that did not catch it) is one too."""
    for kind, error in _KINDS.items():
        if isinstance(cause, kind):
            return error(str(cause))
    if device.is_out_of_memory(cause):
        return TrialOutOfMemory(f"out of memory: {cause}")
    return TrialError(f"{type(cause).__name__}: {cause}")


@dataclass(frozen=True)
class TrialStart:
    params: dict[str, Any]
    seed: int
    checkpoint: CheckpointPolicy | None = None


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
    device: str | None
    """What the slot trains on (a GPU's name, or `cpu`); None when its GPUs are unusable."""

    async def start_trial(self, start: TrialStart) -> None:
        """Begin a trial; a slot may defer the work to the first `run_epoch`."""
        ...

    async def resume_trial(self, start: TrialStart) -> Resumed:
        """Begin a trial that ran before, from its checkpoint when there is one."""
        ...

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        """Train one epoch (and save a checkpoint when due); with `last`, the slot may also
        end the trial (see LastEpoch)."""
        ...

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        """Save the trial's state now unless its last epoch was saved: bytes, or an error."""
        ...

    async def exploit(self, start: TrialStart, donor_key: str) -> Exploited:
        """PBT: go on from another member's checkpoint with `start`'s params."""
        ...

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        """Finish the trial; its best weights too when `keep_weights` (None before any epoch)."""
        ...

    async def close(self) -> None: ...


class TrialRunner(Protocol):
    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
        """A slot for one trial; it may wait for the cluster's scheduler. `on_grant` is
        called once the slot is the study's, before its actor is known to be up."""
        ...

    async def release_slot(self, slot: Slot, *, healthy: bool) -> None:
        """The slot's trial has ended: keep it for the next trial (of any study), or end
        it when it is not `healthy` (worker lost, trial abandoned mid-epoch)."""
        ...

    def should_yield(self, slot: Slot) -> bool:
        """Whether the cluster's scheduler wants `slot` back for a study that waited
        (preemption): the trial then stops at this epoch boundary, with a checkpoint."""
        ...

    async def close(self) -> None:
        """The study wants no more slots."""
        ...


class RaySlot:
    """One `workers.slot.TrialSlot` actor, with Ray's errors turned into ours.

    One round trip per epoch and none more: the start rides with the first epoch, and
    the end (test metrics, weights) with the epoch marked last, or with `end_trial`
    when the trial stops before `max_epochs`.
    """

    def __init__(
        self, lease: Lease, data_key: str, data_ref: ray.ObjectRef | None, spec: StudySpec
    ):
        self.lease = lease
        self._actor = lease.actor
        self._data_key = data_key
        self.data_ref = data_ref  # set before the slot's first trial
        self._spec = spec
        self._pending_start: dict[str, Any] | None = None
        self._ended: TrialEnd | None = None
        self.node = ""
        self.device: str | None = None

    async def locate(self) -> str:
        """Where the slot runs (node, pid, GPUs). The call waits for a new actor to start,
        and finds a warm one that died while idle before a trial is given to it."""
        placement = await _call(self._actor.placement.remote())
        gpus = f" gpu={','.join(placement.gpu_ids)}" if placement.gpu_ids else ""
        self.node = f"{placement.node[:12]} pid={placement.pid}{gpus}"
        self.device = placement.device
        return self.node

    def _start_arguments(self, start: TrialStart) -> dict[str, Any]:
        # The data ref travels inside a dict so Ray hands it over unresolved: the slot
        # fetches the data only when it has not got this study's tensors yet.
        return {
            "data_key": self._data_key,
            "data": self.data_ref,
            "params": start.params,
            "model": self._spec.model.key,
            "objective": self._spec.primary.metric,
            "direction": self._spec.primary.direction,
            "seed": start.seed,
            "max_epochs": self._spec.budget.max_epochs,
            "checkpoint": start.checkpoint,
            "param_schedule": {
                name: [(p.from_epoch, p.value) for p in points]
                for name, points in self._spec.param_schedule.items()
            },
            "threads": self.lease.shape.threads(),
        }

    async def start_trial(self, start: TrialStart) -> None:
        self._pending_start = self._start_arguments(start)

    async def resume_trial(self, start: TrialStart) -> Resumed:
        self._pending_start = None
        resumed: Resumed = await _call(
            self._actor.resume_trial.remote(self._start_arguments(start))
        )
        return resumed

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        start, self._pending_start = self._pending_start, None
        if last is None:
            result: EpochResult = await _call(self._actor.run_epoch.remote(start))
            return result
        ref = self._actor.run_last_epoch.remote(start, keep=last.keep, floor=last.floor)
        metrics, test_metrics, weights = await _call(ref)
        self._ended = TrialEnd(test_metrics, weights)
        return EpochResult(metrics)

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        saved: tuple[int | None, str | None] = await _call(self._actor.save_checkpoint.remote())
        return saved

    async def exploit(self, start: TrialStart, donor_key: str) -> Exploited:
        exploited: Exploited = await _call(
            self._actor.exploit.remote(self._start_arguments(start), donor_key)
        )
        return exploited

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        self._pending_start = None
        ended, self._ended = self._ended, None
        if ended is not None:
            return ended if keep_weights else TrialEnd(ended.test_metrics)
        test_metrics, weights = await _call(self._actor.end_trial.remote(keep_weights))
        return TrialEnd(test_metrics, weights)

    async def close(self) -> None:
        ray.kill(self._actor, no_restart=True)


async def _call(ref: ray.ObjectRef) -> Any:
    try:
        return await ref
    except ray.exceptions.RayActorError as exc:
        raise WorkerLost(str(exc).splitlines()[0]) from exc
    except ray.exceptions.RayTaskError as exc:
        raise trial_error(exc.cause if exc.cause is not None else exc) from exc


class DataUnavailable(Exception):
    """The study's data set could not be prepared: every trial would fail the same way,
    so the study fails (its slot goes back untouched)."""


class RayTrialRunner:
    """Slots for one study, granted by the cluster's scheduler; the data put in Ray once.

    The data set is read at the study's first grant, not before: a queued study holds
    no copy of its data while it waits, however long the queue.
    """

    def __init__(
        self,
        study_id: int,
        spec: StudySpec,
        data: PreparedData | None,
        scheduler: SlotScheduler,
        *,
        data_roots: DataRoots | None = None,
    ):
        self._study_id = study_id
        self._spec = spec
        self._scheduler = scheduler
        self._data_key = f"study-{study_id}"
        self._data_ref: ray.ObjectRef | None = None if data is None else ray.put(data)
        self._data_roots = data_roots
        self._data_error: DataUnavailable | None = None
        self._data_lock = asyncio.Lock()

    @classmethod
    async def for_study(
        cls, study_id: int, spec: StudySpec, data_roots: DataRoots, scheduler: SlotScheduler
    ) -> RayTrialRunner:
        return cls(study_id, spec, None, scheduler, data_roots=data_roots)

    async def _data(self) -> ray.ObjectRef:
        """The study's data in Ray's object store, prepared once, at the first grant."""
        async with self._data_lock:
            if self._data_error is not None:
                raise self._data_error
            if self._data_ref is None:
                assert self._data_roots is not None
                try:
                    data = await asyncio.to_thread(prepare_data, self._spec, self._data_roots)
                except Exception as exc:  # noqa: BLE001 - the study's fault: it fails
                    self._data_error = DataUnavailable(f"{type(exc).__name__}: {exc}")
                    raise self._data_error from exc
                self._data_ref = ray.put(data)
            return self._data_ref

    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
        """A granted slot whose actor answers; one that died idle, or whose node left
        before it started, is ended and the next grant taken (a few times at most).
        The lease goes back on every path that does not return the slot."""
        for attempt in range(_START_ATTEMPTS):
            lease = await self._scheduler.acquire(self._study_id)
            try:
                if on_grant is not None:
                    on_grant()
                # The data set is read while the actor starts (the first grant's wait).
                data = asyncio.ensure_future(self._data())
                slot = RaySlot(lease, self._data_key, None, self._spec)
                try:
                    await slot.locate()
                except BaseException:
                    data.cancel()
                    await asyncio.wait({data})
                    if not data.cancelled():
                        data.exception()  # retrieved: the actor's error is the one raised
                    raise
                slot.data_ref = await data
            except WorkerLost:
                self._scheduler.release(lease, keep=False)
                if attempt + 1 == _START_ATTEMPTS:
                    raise
                continue
            except BaseException as exc:
                # Cancelled while the actor started, or no data: the slot itself is fine.
                # Any other error came from the actor's set-up: it is ended.
                keep = isinstance(exc, asyncio.CancelledError | DataUnavailable)
                self._scheduler.release(lease, keep=keep)
                raise
            self._scheduler.serving(lease)
            return slot
        raise AssertionError("unreachable")

    async def release_slot(self, slot: Slot, *, healthy: bool) -> None:
        assert isinstance(slot, RaySlot)
        self._scheduler.release(slot.lease, keep=healthy)

    def should_yield(self, slot: Slot) -> bool:
        assert isinstance(slot, RaySlot)
        return self._scheduler.should_yield(slot.lease)

    async def close(self) -> None:
        self._scheduler.unregister(self._study_id)


_START_ATTEMPTS = 3
