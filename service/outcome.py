"""How a trial ended, and how that maps onto Optuna's trial states."""

from __future__ import annotations

from dataclasses import dataclass

import optuna

STOP_REASONS = (
    "completed", "early_stopped", "pruned", "diverged", "worker_lost", "failed", "cancelled",
)  # fmt: skip

_STATE_OF_REASON = {
    "completed": "complete",
    "early_stopped": "complete",
    "pruned": "pruned",
    "diverged": "pruned",
    "cancelled": "pruned",
    "worker_lost": "failed",
    "failed": "failed",
}

_OPTUNA_STATE = {
    "complete": optuna.trial.TrialState.COMPLETE,
    "pruned": optuna.trial.TrialState.PRUNED,
    "failed": optuna.trial.TrialState.FAIL,
}


@dataclass(frozen=True)
class TrialOutcome:
    """A finished trial: its value is the best validation value of its curve."""

    stop_reason: str
    value: float | None = None
    best_epoch: int | None = None
    error: str | None = None
    test_metrics: dict[str, float] | None = None

    @property
    def state(self) -> str:
        return _STATE_OF_REASON[self.stop_reason]

    @property
    def optuna_state(self) -> optuna.trial.TrialState:
        return _OPTUNA_STATE[self.state]
