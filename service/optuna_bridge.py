"""Optuna in two places: an in-memory study that samples and prunes, mirrored to RDBStorage.

Sampling and pruning read every trial of a study; against RDBStorage that costs
tens of milliseconds per trial. The driver therefore decides on an in-memory
copy, loaded from the database when the driver starts, and each change is
replayed on RDBStorage (same database URL) so that optuna-dashboard, `optuna
best-trial` and a restarted service see every trial. Trial numbers agree in both
because trials are created in the same order in each.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.pruners import build_pruner
from search.samplers import build_sampler
from search.space import suggest
from service.spec import StudySpec

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
Write = Callable[[], None]


class OptunaBridge:
    """Decisions in memory; `*_write` methods return the RDBStorage writes to replay in order."""

    def __init__(self, storage: optuna.storages.RDBStorage, study_name: str, spec: StudySpec):
        self.spec = spec
        self._storage = storage
        self._study_id = storage.get_study_id_from_name(study_name)
        self.study = optuna.create_study(
            direction=spec.objective.direction,
            sampler=build_sampler(spec.sampler),
            pruner=build_pruner(spec.pruner),
        )
        self.study.add_trials(self._finished_trials())
        self._db_ids: dict[int, int] = {}

    def _finished_trials(self) -> list[FrozenTrial]:
        trials = self._storage.get_all_trials(self._study_id, deepcopy=False)
        unfinished = [t.number for t in trials if t.state not in FINISHED]
        if unfinished:
            raise RuntimeError(f"trials {unfinished} are unfinished in Optuna; close them first")
        return trials

    @property
    def n_trials(self) -> int:
        return len(self.study.trials)

    def ask(self) -> tuple[optuna.Trial, dict[str, Any], Write]:
        """Draw the next trial's params; the write creates it, running, in RDBStorage."""
        trial = self.study.ask()
        params = suggest(trial, self.spec.space, self.spec.params)
        frozen = optuna.trial.create_trial(
            state=TrialState.RUNNING, params=trial.params, distributions=trial.distributions
        )

        def write() -> None:
            db_id = self._storage.create_new_trial(self._study_id, template_trial=frozen)
            number = self._storage.get_trial_number_from_id(db_id)
            if number != trial.number:
                raise RuntimeError(f"Optuna trial numbers diverged: {number} != {trial.number}")
            self._db_ids[trial.number] = db_id

        return trial, params, write

    def report(self, trial: optuna.Trial, epoch: int, value: float) -> tuple[bool, Write]:
        """Report one epoch; True when the pruner says stop."""
        trial.report(value, epoch)
        prune = trial.should_prune()

        def write() -> None:
            self._storage.set_trial_intermediate_value(self._db_ids[trial.number], epoch, value)

        return prune, write

    def tell(self, trial: optuna.Trial, state: TrialState, value: float | None) -> Write:
        """Finish a trial; a pruned trial's value is its last report, as Optuna does it."""
        if state == TrialState.COMPLETE:
            frozen = self.study.tell(trial, value)
        else:
            frozen = self.study.tell(trial, state=state)

        def write() -> None:
            self._storage.set_trial_state_values(
                self._db_ids.pop(trial.number), frozen.state, frozen.values
            )

        return write
