"""The trial slot: a long-lived Ray actor that trains one epoch per call.

A slot is reused from trial to trial so torch is imported once per process,
and a study's tensors are built once per slot. It never touches a database.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import ray


@dataclass(frozen=True)
class SlotPlacement:
    """Where a slot runs: shown with each trial it trains."""

    node: str
    pid: int
    gpu_ids: list[str]


class TrialSlot:
    """Holds one Trainer at a time; `data` arrives once per study from the object store."""

    def __init__(self, *, num_threads: int = 1):
        import torch

        torch.set_num_threads(max(1, num_threads))
        self._data_key: str | None = None
        self._tensors: Any = None
        self._trainer: Any = None

    def warm_up(self) -> None:
        """Import what a trial needs (torch, the trainer, installed plug-in tasks), so a
        warm slot's first epoch starts at once."""
        import workers.trainer  # noqa: F401 - imported for its cost, not its names
        from workers.tasks import installed_tasks

        installed_tasks()

    def placement(self) -> SlotPlacement:
        context = ray.get_runtime_context()
        return SlotPlacement(
            node=context.get_node_id(),
            pid=os.getpid(),
            gpu_ids=[str(g) for g in context.get_accelerator_ids().get("GPU", [])],
        )

    def start_trial(
        self, data_key: str, data: Any, params: dict[str, Any], *, model: str, objective: str,
        direction: str, seed: int, max_epochs: int,
    ) -> None:  # fmt: skip
        """Build the trial's model and optimizer; tensors are reused for the same data_key.

        `data` may be an object ref: it is fetched only when the tensors must be built.
        """
        from workers.trainer import TensorData, TrialTrainer

        if data_key != self._data_key:
            self._tensors = None
            if isinstance(data, ray.ObjectRef):
                data = ray.get(data)
            self._tensors = TensorData(data, _device(self.placement().gpu_ids))
            self._data_key = data_key
        self._trainer = None
        self._trainer = TrialTrainer(
            self._tensors, params, model=model, objective=objective, direction=direction,
            seed=seed, max_epochs=max_epochs,
        )  # fmt: skip

    def run_epoch(self, start: dict[str, Any] | None = None) -> dict[str, float]:
        """Train one epoch and return its metrics; `start` (start_trial's arguments) first
        begins a new trial, so a trial's first epoch costs one round trip."""
        if start is not None:
            self.start_trial(**start)
        if self._trainer is None:
            raise RuntimeError("run_epoch called before start_trial")
        metrics: dict[str, float] = self._trainer.train_epoch()
        return metrics

    def run_last_epoch(
        self, start: dict[str, Any] | None = None, *, keep: bool, floor: float | None
    ) -> tuple[dict[str, float], dict[str, float] | None, bytes | None]:
        """The trial's last possible epoch, and its end in the same call: the metrics, then
        end_trial's test metrics and weights (when `keep` and the best value reaches `floor`)."""
        metrics = self.run_epoch(start)
        assert self._trainer is not None
        test_metrics, weights = self.end_trial(keep and self._trainer.reaches(floor))
        return metrics, test_metrics, weights

    def end_trial(self, keep_weights: bool = False) -> tuple[dict[str, float] | None, bytes | None]:
        """Drop the trial; the test metrics of its best weights, and those weights
        serialized when `keep_weights` (see TrialTrainer.checkpoint)."""
        trainer, self._trainer = self._trainer, None
        if trainer is None:
            return None, None
        weights = trainer.checkpoint() if keep_weights else None
        metrics: dict[str, float] | None = trainer.test_metrics()
        return metrics, weights


def _device(gpu_ids: list[str]) -> Any:
    import torch

    return torch.device("cuda" if gpu_ids and torch.cuda.is_available() else "cpu")


def create_slot(*, num_cpus: float, num_gpus: float, scheduling_strategy: Any = None) -> Any:
    """Start a slot actor with the trial's resources, where `scheduling_strategy` says (any
    fitting node by default)."""
    actor_class = ray.remote(TrialSlot)
    return actor_class.options(
        num_cpus=num_cpus, num_gpus=num_gpus, scheduling_strategy=scheduling_strategy
    ).remote(num_threads=max(1, int(num_cpus)))
