"""Start-up after a crash: close what a stopped service left running, in both stores.

The driver tells Optuna before it writes the service's row, and a trial is
created in Optuna before the service's row too, so after a crash a trial can be:
running in both (interrupted: failed as `worker_lost` in both, then retried with
the same params), finished in Optuna but running in the service's table (the
outcome is copied over), or running in Optuna with no row of ours yet (failed
in Optuna, a failed row is written, then retried). Nothing is counted twice: a
retry takes over its lost trial's place in the budget.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from service.jobs import TrialJob
from service.spec import StudySpec
from storage.errors import TrialNotFound
from storage.records import StudyRecord
from storage.repository import Store

INTERRUPTED = "the service stopped while the trial ran"
_STATES = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}


def reconcile(
    store: Store, storage: optuna.storages.RDBStorage, record: StudyRecord
) -> list[TrialJob]:
    """Make Optuna and the store agree; the retries the interrupted trials are owed."""
    spec = StudySpec.model_validate(record.spec)
    study = optuna.load_study(study_name=record.optuna_study_name, storage=storage)
    ours = {t.number: t for t in store.running_trials(record.id)}
    retries = []
    for trial in study.get_trials(deepcopy=False):
        if trial.state == TrialState.RUNNING:
            study.tell(trial.number, state=TrialState.FAIL)
            _fail_row(store, record.id, trial, known=trial.number in ours)
            retries += _retry(store, spec, record.id, trial.number, trial.params)
        elif trial.number in ours:
            _copy_outcome(store, spec, record.id, trial)
    return retries


def _fail_row(store: Store, study_id: int, trial: FrozenTrial, *, known: bool) -> None:
    if not known:
        try:
            store.get_trial(study_id, trial.number)
            return
        except TrialNotFound:
            store.create_trial(study_id, trial.number, dict(trial.params))
    store.finish_trial(
        study_id, trial.number, state="failed", value=None, best_epoch=None,
        stop_reason="worker_lost", error=INTERRUPTED,
    )  # fmt: skip


def _copy_outcome(store: Store, spec: StudySpec, study_id: int, trial: FrozenTrial) -> None:
    index = spec.objectives.index(spec.primary)
    values = list(trial.values) if trial.values else None
    state = _STATES[trial.state]
    store.finish_trial(
        study_id, trial.number, state=state, value=values[index] if values else None,
        values=values, best_epoch=None, stop_reason="completed" if state == "complete" else state,
    )  # fmt: skip


def _retry(
    store: Store, spec: StudySpec, study_id: int, number: int, params: dict
) -> list[TrialJob]:  # type: ignore[type-arg]
    attempt = 0
    current = store.get_trial(study_id, number)
    while current.retry_of is not None:
        attempt += 1
        current = store.get_trial(study_id, current.retry_of)
    if attempt >= spec.budget.max_retries:
        return []
    return [
        TrialJob(params=dict(params), retry_of=number, attempt=attempt + 1, consumes_claim=False)
    ]
