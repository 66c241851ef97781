"""What a slot loop runs next: a new trial, an initial config, or an unfinished trial."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import optuna


@dataclass(frozen=True)
class TrialJob:
    """`params` fixes the searched params (initial configs, resumed trials); None lets
    the sampler draw.

    `number` names a trial that ran before (a lost worker, a pause, a preemption, a
    restart): it resumes from its checkpoint, under the same number. `trial` is its
    Optuna handle when this process already has one. `attempt` counts the trial's lost
    workers: one past the study's max_retries fails it instead.
    """

    params: dict[str, Any] | None = None
    number: int | None = None
    trial: optuna.Trial | None = field(default=None, compare=False)
    attempt: int = 0
    consumes_claim: bool = field(default=True, compare=False)

    def resumed(self, trial: optuna.Trial, params: dict[str, Any], *, lost: bool) -> TrialJob:
        """The same trial again, from its checkpoint; `lost` counts one more lost worker."""
        return replace(
            self,
            params=params,
            number=trial.number,
            trial=trial,
            attempt=self.attempt + int(lost),
            consumes_claim=False,
        )
