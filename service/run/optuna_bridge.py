"""Optuna in two places: an in-memory study that samples and prunes, mirrored to RDBStorage.

Sampling and pruning read every trial of a study; against RDBStorage that costs
tens of milliseconds per trial. The driver therefore decides on an in-memory
copy, loaded in bulk from the database when the driver starts (`optuna_load`; a
resumed study's sampler sees every earlier trial), and each change is replayed on
Optuna's tables (`optuna_mirror`, in the writer's transaction beside the service's
own rows) so that optuna-dashboard, `optuna best-trial` and a restarted service see
every trial. Trial numbers are the in-memory study's in both.

Multi-objective studies: Optuna refuses `report`/`should_prune` there, so the
bridge keeps a single-objective shadow study on the `prune_on` objective with
the same trials and asks the configured pruner on it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.pruners import build_pruner
from search.samplers import build_sampler
from search.space import suggest
from service.run.optuna_load import add_all, read_trials
from service.run.optuna_mirror import OptunaMirror
from service.spec import StudySpec
from storage.repository import Store

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
Write = Callable[[], None]


class OptunaBridge:
    """Decisions in memory; methods also return the writes of Optuna's rows, to run in order."""

    def __init__(
        self, storage: optuna.storages.RDBStorage, study_name: str, spec: StudySpec, store: Store
    ):
        self.spec = spec
        self.storage = storage
        self.study_name = study_name
        self._storage = storage
        self._store = store
        self._study_id = storage.get_study_id_from_name(study_name)
        self._mirror = OptunaMirror(self._study_id)
        pruner = build_pruner(spec.pruner, max_epochs=spec.budget.max_epochs)
        self.multi_objective = len(spec.objectives) > 1
        # Unfinished (running) trials come along: they resume under their numbers.
        trials = read_trials(store.run, self._study_id)
        finished = [t for t in trials if t.state in FINISHED]
        # The same name as in RDBStorage: Hyperband assigns brackets by hashing it.
        self.study = optuna.create_study(
            study_name=study_name,
            directions=spec.directions,
            sampler=build_sampler(spec.sampler, spec.space, n_existing=len(finished)),
            pruner=optuna.pruners.NopPruner() if self.multi_objective else pruner,
        )
        add_all(self.study, trials)
        self._pruning = self.study
        if self.multi_objective:
            self._pruning = optuna.create_study(
                study_name=study_name, direction=spec.primary.direction, pruner=pruner
            )
            self._pruning.add_trials([self._shadow_of(t) for t in trials])
        self._shadows: dict[int, optuna.Trial] = {}
        for trial in trials:
            if trial.state not in FINISHED and self.multi_objective:
                self._shadows[trial.number] = _handle(self._pruning, trial.number)

    def _shadow_of(self, trial: FrozenTrial) -> FrozenTrial:
        index = self.spec.objectives.index(self.spec.primary)
        value = trial.values[index] if trial.values else None
        return optuna.trial.create_trial(
            state=trial.state,
            value=value if trial.state == TrialState.COMPLETE else None,
            intermediate_values=trial.intermediate_values,
        )

    @property
    def n_trials(self) -> int:
        return len(self.study.trials)

    def ask(
        self, fixed: dict[str, Any] | None = None
    ) -> tuple[optuna.Trial, dict[str, Any], Write]:
        """Draw the next trial's params (`fixed` ones as given: initial configs, retries);
        the write creates the trial, running, in Optuna's tables."""
        if fixed is not None:
            self.study.enqueue_trial(fixed, skip_if_exists=False)
        trial = self.study.ask()
        params = suggest(trial, self.spec.space, self.spec.params)
        if self.multi_objective:
            self._shadows[trial.number] = self._pruning.ask()
        create = partial(
            self._mirror.create,
            number=trial.number,
            params=dict(trial.params),
            distributions=dict(trial.distributions),
            system_attrs=self.study._storage.get_trial_system_attrs(trial._trial_id),
        )
        return trial, params, partial(self._store.run, create)

    def adopt(self, number: int) -> optuna.Trial:
        """The handle of an unfinished trial that an earlier process started."""
        trial = _handle(self.study, number)
        if trial.study._storage.get_trial(trial._trial_id).state in FINISHED:
            raise ValueError(f"trial {number} is finished; only an unfinished trial resumes")
        return trial

    def report(self, trial: optuna.Trial, epoch: int, value: float) -> tuple[bool, Write]:
        """Report the `prune_on` value of one epoch; True when the pruner says stop.

        An epoch reported before (trained again after a resume) keeps its first report."""
        reporter = self._shadows[trial.number] if self.multi_objective else trial
        write = self.replay(trial, epoch, value)
        return reporter.should_prune(), write or _nothing

    def replay(self, trial: optuna.Trial, epoch: int, value: float) -> Write | None:
        """Report an epoch unless it was reported already; the write, if one is owed."""
        reporter = self._shadows[trial.number] if self.multi_objective else trial
        if epoch in reporter.study._storage.get_trial(reporter._trial_id).intermediate_values:
            return None
        reporter.report(value, epoch)
        write = partial(self._mirror.report, number=trial.number, step=epoch, value=value)
        return partial(self._store.run, write)

    def tell(self, trial: optuna.Trial, state: TrialState, values: Sequence[float] | None) -> Write:
        """Finish a trial; a pruned single-objective trial's value is its last report."""
        told = list(values) if state == TrialState.COMPLETE and values is not None else None
        frozen = self.study.tell(trial, told, state=None if told else state)
        if self.multi_objective:
            shadow = self._shadows.pop(trial.number)
            index = self.spec.objectives.index(self.spec.primary)
            self._pruning.tell(shadow, told[index] if told else None, state=None if told else state)
        write = partial(
            self._mirror.finish, number=trial.number, state=frozen.state, values=frozen.values
        )
        return partial(self._store.run, write)


def _handle(study: optuna.Study, number: int) -> optuna.Trial:
    storage = study._storage
    return optuna.Trial(
        study, storage.get_trial_id_from_study_id_trial_number(study._study_id, number)
    )


def _nothing() -> None:
    return None
