"""How a trial ended, and how that maps onto Optuna's trial states."""

from __future__ import annotations

from dataclasses import dataclass

import optuna

from workers.direction import at_least, improves

STOP_REASONS = (
    "completed",
    "early_stopped",
    "pruned",
    "diverged",
    "worker_lost",
    "out_of_memory",
    "failed",
    "cancelled",
)

_STATE_OF_REASON = {
    "completed": "complete",
    "early_stopped": "complete",
    "pruned": "pruned",
    "diverged": "pruned",
    "cancelled": "pruned",
    "worker_lost": "failed",
    "out_of_memory": "failed",
    "failed": "failed",
}
# Optuna's TPE learns nothing from failed trials (it reads complete and pruned ones): a
# trial that ran out of memory is told as pruned, so the sampler draws less of its region.
_OPTUNA_STATE_OF_REASON = {"out_of_memory": optuna.trial.TrialState.PRUNED}

_OPTUNA_STATE = {
    "complete": optuna.trial.TrialState.COMPLETE,
    "pruned": optuna.trial.TrialState.PRUNED,
    "failed": optuna.trial.TrialState.FAIL,
}


@dataclass(frozen=True)
class TrialOutcome:
    """A finished trial: `value` is the best value of the `prune_on` objective along its
    curve; `values` are every objective's metric at that best epoch."""

    stop_reason: str
    value: float | None = None
    values: list[float] | None = None
    best_epoch: int | None = None
    error: str | None = None
    test_metrics: dict[str, float] | None = None
    timed_out: bool = False
    epochs_run: int = 0
    interrupted: str | None = None
    """Set when the trial stopped unfinished at an epoch boundary (paused, preempted,
    shutdown): it resumes later from its checkpoint and is not told to Optuna."""
    slot_suspect: bool = False
    """The slot raised what nobody mapped: it is ended, not handed to the next trial."""

    @property
    def state(self) -> str:
        return _STATE_OF_REASON[self.stop_reason]

    @property
    def optuna_state(self) -> optuna.trial.TrialState:
        return _OPTUNA_STATE_OF_REASON.get(self.stop_reason, _OPTUNA_STATE[self.state])


class CurveBest:
    """The best epoch of a curve so far by the `prune_on` metric, with every objective there."""

    def __init__(self, metric: str, direction: str, objectives: list[str]):
        self._metric = metric
        self._direction = direction
        self._objectives = objectives
        self.value: float | None = None
        self.epoch: int | None = None
        self.epochs_seen = 0
        self._values: list[float] | None = None

    def update(self, epoch: int, metrics: dict[str, float]) -> None:
        self.epochs_seen = epoch
        value = metrics[self._metric]
        if improves(value, self.value, self._direction):
            self.value, self.epoch = value, epoch
            self._values = [float(metrics[m]) for m in self._objectives]

    def reached(self, target: float | None) -> bool:
        return target is not None and at_least(self.value, target, self._direction)

    def outcome(self, stop_reason: str) -> TrialOutcome:
        return TrialOutcome(
            stop_reason,
            value=self.value,
            values=self._values,
            best_epoch=self.epoch,
            epochs_run=self.epochs_seen,
        )
