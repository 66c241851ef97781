"""The trial slot: a long-lived Ray actor that trains one epoch per call.

A slot is reused from trial to trial so torch is imported once per process,
and a study's tensors are built once per slot. It never touches a database.
A slot given GPUs trains on CUDA or refuses to (`workers.device`); a trial that
runs out of device memory ends there, and the slot takes the next one.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import ray

from workers.device import (
    DeviceUnavailable,
    OutOfMemory,
    device_name,
    free_memory,
    is_out_of_memory,
    slot_device,
)
from workers.trial_checkpoints import CheckpointPolicy, TrialCheckpoints

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpochResult:
    """One epoch's metrics, and the checkpoint written after it: its size, or why the
    store refused it (the trial goes on either way)."""

    metrics: dict[str, float]
    checkpoint_bytes: int | None = None
    checkpoint_error: str | None = None


@dataclass(frozen=True)
class Resumed:
    """What a resumed trial continues from: the metrics of each epoch in the checkpoint
    (none when there is no usable checkpoint), and why one could not be used."""

    history: list[dict[str, float]]
    error: str | None = None
    adopted_at: int = 0
    """A PBT member's last exploit: its weights from this epoch on are another's copy."""


@dataclass(frozen=True)
class Exploited:
    """A PBT member's copy of another: the donor's epoch and metrics there, and the
    copy's validation metrics before it trains (equal when the copy is exact); or why no
    copy was made (the donor's checkpoint is gone: it failed, or the study ended)."""

    donor_epoch: int | None = None
    donor_metrics: dict[str, float] | None = None
    loaded_metrics: dict[str, float] | None = None
    error: str | None = None


@dataclass(frozen=True)
class SlotPlacement:
    """Where a slot runs: shown with each trial it trains. `device` is the GPU's name or
    `cpu`; None when the slot's GPUs cannot be used (its trials fail, saying why)."""

    node: str
    pid: int
    gpu_ids: list[str]
    device: str | None = None


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _ends_trial_on_oom(method: _Method) -> _Method:
    """Out of memory in any call of a trial ends that trial: the slot drops it, frees
    the memory and raises OutOfMemory, ready for the next trial."""

    @functools.wraps(method)
    def call(self: TrialSlot, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            message = (str(exc).strip().splitlines() or ["no detail"])[0][:300]
        # Outside the handler: the error's traceback (and the tensors its frames hold) is gone.
        where = self._drop_trial()
        raise OutOfMemory(f"out of memory on {where}: {message}")

    return call  # type: ignore[return-value]


class TrialSlot:
    """Holds one Trainer at a time; `data` arrives once per study from the object store.

    `allow_cpu_for_gpus` lets a slot whose GPUs CUDA cannot see train on the CPU: only
    for test clusters that declare GPUs they do not have."""

    def __init__(self, *, num_threads: int = 1, allow_cpu_for_gpus: bool = False):
        import torch

        torch.set_num_threads(max(1, num_threads))
        self._allow_cpu = allow_cpu_for_gpus
        self._device: Any = None
        self._data_key: str | None = None
        self._tensors: Any = None
        self._trainer: Any = None
        self._policy: CheckpointPolicy | None = None
        self._saved = (0, 0.0)  # (epoch, train_seconds) of the last checkpoint
        self._save_s: float | None = None  # how long that save took

    def warm_up(self) -> None:
        """Import what a trial needs (torch, the trainer, installed plug-in tasks), so a
        warm slot's first epoch starts at once."""
        import workers.trial_trainer  # noqa: F401 - imported for its cost, not its names
        from workers.tasks import installed_tasks

        installed_tasks()

    def placement(self) -> SlotPlacement:
        context = ray.get_runtime_context()
        gpu_ids = [str(g) for g in context.get_accelerator_ids().get("GPU", [])]
        try:
            device: str | None = device_name(self.device())
        except DeviceUnavailable:
            device = None
        return SlotPlacement(
            node=context.get_node_id(), pid=os.getpid(), gpu_ids=gpu_ids, device=device
        )

    def device(self) -> Any:
        """The torch device this slot trains on. Raises DeviceUnavailable when Ray gave it
        GPUs that CUDA cannot use."""
        if self._device is None:
            context = ray.get_runtime_context()
            gpu_ids = [str(g) for g in context.get_accelerator_ids().get("GPU", [])]
            self._device = slot_device(
                gpu_ids, node=context.get_node_id(), allow_cpu=self._allow_cpu
            )
        return self._device

    def _drop_trial(self) -> str:
        """Forget the trial and hand back the device memory it held; the device's name."""
        self._trainer, self._policy = None, None
        device = self.device()
        free_memory(device)
        return device_name(device)

    @_ends_trial_on_oom
    def start_trial(
        self,
        data_key: str,
        data: Any,
        params: dict[str, Any],
        *,
        model: str,
        objective: str,
        direction: str,
        seed: int,
        max_epochs: int,
        checkpoint: CheckpointPolicy | None = None,
        param_schedule: dict[str, list[tuple[int, Any]]] | None = None,
        threads: int | None = None,
    ) -> None:
        """Build the trial's model and optimizer; tensors are reused for the same data_key.

        `data` may be an object ref: it is fetched only when the tensors must be built.
        With `checkpoint`, the trial's state is saved as that policy says. `threads`: the
        trial's torch threads (its CPUs), since one slot process may serve trials of
        different CPU shapes (service/cluster/placement.py).
        """
        import torch

        from workers.tensors import TensorData
        from workers.trial_trainer import TrialTrainer

        if threads is not None and threads != torch.get_num_threads():
            torch.set_num_threads(max(1, threads))

        if data_key != self._data_key:
            self._tensors, self._data_key = None, None
            if isinstance(data, ray.ObjectRef):
                data = ray.get(data)
            self._tensors = TensorData(data, self.device())
            self._data_key = data_key
        self._trainer = None
        self._trainer = TrialTrainer(
            self._tensors,
            params,
            model=model,
            objective=objective,
            direction=direction,
            seed=seed,
            max_epochs=max_epochs,
            param_schedule=param_schedule,
        )
        self._policy, self._saved, self._save_s = checkpoint, (0, 0.0), None

    @_ends_trial_on_oom
    def resume_trial(self, start: dict[str, Any]) -> Resumed:
        """Begin a trial that ran before: continue from its checkpoint when there is a
        usable one, else from its first epoch."""
        self.start_trial(**start)
        assert self._trainer is not None
        if self._policy is None:
            return Resumed([])
        try:
            data = TrialCheckpoints(self._policy.uri).load(self._policy.key)
            if data is None:
                return Resumed([])
            self._trainer.load_state(data)
        except Exception as exc:  # noqa: BLE001 - an unreadable checkpoint: start over
            if is_out_of_memory(exc):
                raise
            self.start_trial(**start)
            return Resumed([], f"checkpoint unreadable, trained from epoch 1: {exc}")
        self._saved = (self._trainer.epoch, self._trainer.train_seconds)
        return Resumed(list(self._trainer.history), adopted_at=self._trainer.adopted_at)

    @_ends_trial_on_oom
    def exploit(self, start: dict[str, Any], donor_key: str) -> Exploited:
        """PBT's exploit: continue this trial from another member's checkpoint, with
        `start`'s params (the donor's, mutated). The trial keeps its epoch count and
        curve; its own checkpoint is rewritten at once, so a lost worker resumes the copy."""
        trainer, policy = self._trainer, self._policy
        if trainer is None or policy is None:
            raise RuntimeError("exploit needs a running trial with checkpoints")
        data = TrialCheckpoints(policy.uri).load(donor_key)
        if data is None:
            return Exploited(error="the donor's checkpoint is gone")
        epoch, history, seconds = trainer.epoch, trainer.history, trainer.train_seconds
        self.start_trial(**start)
        assert self._trainer is not None
        self._trainer.epoch, self._trainer.history = epoch, history
        self._trainer.train_seconds = seconds
        donor_epoch, donor_metrics = self._trainer.adopt(data)
        loaded = self._trainer.current_metrics
        size, error = self.save_checkpoint()
        if error is not None:
            log.warning("checkpoint after exploit not written: %s", error)
        return Exploited(donor_epoch, donor_metrics, loaded)

    @_ends_trial_on_oom
    def run_epoch(self, start: dict[str, Any] | None = None) -> EpochResult:
        """Train one epoch, then save a checkpoint when the policy says it is due;
        `start` (start_trial's arguments) first begins a new trial, so a trial's first
        epoch costs one round trip."""
        if start is not None:
            self.start_trial(**start)
        if self._trainer is None:
            raise RuntimeError("run_epoch called before start_trial")
        metrics: dict[str, float] = self._trainer.train_epoch()
        epochs_since = self._trainer.epoch - self._saved[0]
        seconds_since = self._trainer.train_seconds - self._saved[1]
        policy = self._policy
        if policy is not None and policy.due(epochs_since, seconds_since, self._save_s):
            return EpochResult(metrics, *self.save_checkpoint())
        return EpochResult(metrics)

    @_ends_trial_on_oom
    def save_checkpoint(self) -> tuple[int | None, str | None]:
        """Save the trial's state now (unless its last epoch was saved already): the bytes
        written, or why the store refused them."""
        trainer, policy = self._trainer, self._policy
        if trainer is None or policy is None or self._saved[0] == trainer.epoch:
            return None, None
        started = time.perf_counter()
        try:
            data = trainer.state()
            TrialCheckpoints(policy.uri).save(policy.key, data)
        except Exception as exc:  # noqa: BLE001 - a store that refuses never fails the trial
            # The kind of failure, not the message: that names the store's paths, which
            # the study's users need not see (the service's log has them).
            reason = getattr(exc, "strerror", None) or "see the service's log"
            log.warning("checkpoint %s not written: %s", policy.key, exc)
            return None, f"{type(exc).__name__} ({reason})"
        self._saved = (trainer.epoch, trainer.train_seconds)
        self._save_s = time.perf_counter() - started
        return len(data), None

    @_ends_trial_on_oom
    def run_last_epoch(
        self, start: dict[str, Any] | None = None, *, keep: bool, floor: float | None
    ) -> tuple[dict[str, float], dict[str, float] | None, bytes | None]:
        """The trial's last possible epoch, and its end in the same call: the metrics, then
        end_trial's test metrics and weights (when `keep` and the best value reaches `floor`)."""
        if start is not None:
            self.start_trial(**start)
        if self._trainer is None:
            raise RuntimeError("run_last_epoch called before start_trial")
        metrics: dict[str, float] = self._trainer.train_epoch()
        test_metrics, weights = self.end_trial(keep and self._trainer.reaches(floor))
        return metrics, test_metrics, weights

    @_ends_trial_on_oom
    def end_trial(self, keep_weights: bool = False) -> tuple[dict[str, float] | None, bytes | None]:
        """Drop the trial; the test metrics of its best weights, and those weights
        serialized when `keep_weights` (see TrialTrainer.checkpoint)."""
        trainer, self._trainer, self._policy = self._trainer, None, None
        if trainer is None:
            return None, None
        weights = trainer.checkpoint() if keep_weights else None
        metrics: dict[str, float] | None = trainer.test_metrics()
        return metrics, weights


def create_slot(
    *,
    num_cpus: float,
    num_gpus: float,
    num_threads: int | None = None,
    scheduling_strategy: Any = None,
    allow_cpu_for_gpus: bool = False,
) -> Any:
    """Start a slot actor reserving `num_cpus` and `num_gpus` in Ray, where
    `scheduling_strategy` says (any fitting node by default). `num_threads` (default: the
    CPUs rounded down) is torch's until a trial brings its own."""
    threads = num_threads if num_threads is not None else max(1, int(num_cpus))
    actor_class = ray.remote(TrialSlot)
    return actor_class.options(
        num_cpus=num_cpus, num_gpus=num_gpus, scheduling_strategy=scheduling_strategy
    ).remote(num_threads=threads, allow_cpu_for_gpus=allow_cpu_for_gpus)
