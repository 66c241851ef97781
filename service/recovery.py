"""Start-up after a crash or a pause: make both stores agree, list what resumes.

The driver tells Optuna before it writes the service's row, and a trial is
created in Optuna before the service's row too, so after a crash a trial can be:
running in Optuna (interrupted: it resumes under its number from its checkpoint,
its row created first if the crash came before it), or finished in Optuna but
running in the service's table (the outcome is copied over). Nothing is counted
twice, and a service's restart does not count against a trial's `max_retries`.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from service.jobs import TrialJob
from service.spec import StudySpec
from storage.records import StudyRecord, TrialRecord
from storage.repository import Store

_STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
_LOST = ("worker_lost",)


def reconcile(
    store: Store, storage: optuna.storages.RDBStorage, record: StudyRecord
) -> list[TrialJob]:
    """Make Optuna and the store agree; the unfinished trials, to resume in number order."""
    spec = StudySpec.model_validate(record.spec)
    study = optuna.load_study(study_name=record.optuna_study_name, storage=storage)
    ours = {t.number: t for t in store.unfinished_trials(record.id)}
    resumes = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            resumes.append(_resume(store, record.id, trial, ours.get(trial.number)))
        elif trial.number in ours:
            _copy_outcome(store, spec, record.id, trial)
    return resumes


def _resume(store: Store, study_id: int, trial: FrozenTrial, ours: TrialRecord | None) -> TrialJob:
    params: dict[str, Any] = dict(trial.params)
    if ours is None:
        store.create_trial(study_id, trial.number, params, state="waiting")
    else:
        params = ours.current_params  # a PBT member trains on with its latest copy's params
    lost = 0 if ours is None else sum(a.end in _LOST for a in ours.attempts)
    return TrialJob(params=params, number=trial.number, attempt=lost, consumes_claim=False)


def _copy_outcome(store: Store, spec: StudySpec, study_id: int, trial: FrozenTrial) -> None:
    index = spec.objectives.index(spec.primary)
    values = list(trial.values) if trial.values else None
    state = _STATES[trial.state]
    store.finish_trial(
        study_id, trial.number, state=state, value=values[index] if values else None,
        values=values, best_epoch=None, stop_reason="completed" if state == "complete" else state,
    )  # fmt: skip


def cancel_unfinished(
    store: Store, storage: optuna.storages.RDBStorage, record: StudyRecord
) -> None:
    """End a paused study's waiting trials as cancelled, in both stores (a user stops it)."""
    study = optuna.load_study(study_name=record.optuna_study_name, storage=storage)
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(frozen.number, state=TrialState.PRUNED)
    for ours in store.unfinished_trials(record.id):
        store.finish_trial(
            record.id, ours.number, state="pruned", value=None, best_epoch=None,
            stop_reason="cancelled",
        )  # fmt: skip
