"""Two commands on one study at once leave exactly one outcome, and one driver.

The commands race on the real store (SQLite and PostgreSQL) through the service, as
two HTTP requests would; the state changes are compare-and-sets in SQL, which the
last test drives from many threads at once, as two service processes would.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import optuna
import pytest

from service.errors import Conflict, NotFound
from service.run.runner import LastEpoch, Slot, TrialEnd, TrialStart
from service.spec import StudySpec
from service.studies.study_service import StudyService
from storage.errors import StudyStateChanged
from storage.repository import Store
from workers.slot import EpochResult, Resumed


class Slow:
    """Slots whose epochs take a moment, so that commands land while trials run."""

    node = "fake"
    device = "cpu"

    async def start_trial(self, start: TrialStart) -> None:
        pass

    async def resume_trial(self, start: TrialStart) -> Resumed:
        return Resumed([])

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        await asyncio.sleep(0.005)
        return EpochResult(
            {"train_loss": 0.5, "val_loss": 0.5, "val_accuracy": 0.5, "lr": 0.1, "seconds": 0.0}
        )

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        return None, None

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        return TrialEnd()

    async def close(self) -> None:
        pass


class Runners:
    """The runner factory: counts drivers built, and how many ran at once at most."""

    def __init__(self) -> None:
        self.built = 0
        self.open = 0
        self.most_open = 0

    async def __call__(self, study_id: int, spec: StudySpec) -> Any:
        self.built += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        return _Runner(self)


class _Runner:
    def __init__(self, runners: Runners) -> None:
        self.runners = runners

    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
        if on_grant is not None:
            on_grant()
        await asyncio.sleep(0)
        return Slow()

    async def release_slot(self, slot: Slot, *, healthy: bool) -> None:
        pass

    def should_yield(self, slot: Slot) -> bool:
        return False

    async def close(self) -> None:
        self.runners.open -= 1


SPEC = {
    "budget": {"max_trials": 2, "max_epochs": 20, "parallelism": 2},
    "early_stopping": {"patience": 1000},
}


async def ended_study(service: StudyService, make_spec: Any, then: str) -> int:
    study_id = (await service.submit(StudySpec.model_validate(make_spec(**SPEC)))).record.id
    if then == "pause":  # once trials train: they wait, paused, with their epochs
        while not service.store.unfinished_trials(study_id, states=["running"]):
            await asyncio.sleep(0.005)
        await service.pause(study_id)
    await asyncio.wait_for(service.wait(study_id), timeout=30)
    return study_id


def race(
    store: Store, storage: Any, make_spec: Any, first: str, second: str, *, ended_by: str
) -> tuple[list[Any], StudyService, int, Runners]:
    runners = Runners()

    async def main() -> tuple[list[Any], StudyService, int]:
        service = StudyService(store, storage, runners)
        study_id = await ended_study(service, make_spec, ended_by)
        budget = {"max_trials": 4}

        def command(name: str) -> Any:
            if name == "resume":
                return service.resume(study_id, budget=budget)
            return getattr(service, name)(study_id)

        results = await asyncio.gather(command(first), command(second), return_exceptions=True)
        await asyncio.wait_for(service.wait(study_id), timeout=30)
        return list(results), service, study_id

    results, service, study_id = asyncio.run(main())
    return results, service, study_id, runners


def unfinished(service: StudyService, study_id: int) -> int:
    counts = service.get(study_id).counts
    return counts["running"] + counts["waiting"]


@pytest.mark.parametrize("ended_by", ["pause", "end"])
def test_two_resumes_at_once_start_one_driver(store, optuna_storage, make_spec, ended_by) -> None:
    results, service, study_id, runners = race(
        store, optuna_storage, make_spec, "resume", "resume", ended_by=ended_by
    )
    assert sum(isinstance(r, Conflict) for r in results) == 1, results
    assert sum(not isinstance(r, BaseException) for r in results) == 1, results
    assert runners.built == 2 and runners.most_open == 1  # the first run, one resumed run
    view = service.get(study_id)
    assert (view.record.state, view.record.error) == ("completed", None)
    assert view.counts["complete"] == 4 and unfinished(service, study_id) == 0


def test_resume_and_stop_of_a_paused_study_leave_one_outcome(
    store, optuna_storage, make_spec
) -> None:
    results, service, study_id, runners = race(
        store, optuna_storage, make_spec, "stop", "resume", ended_by="pause"
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert runners.most_open == 1
    # Stop came first: the study stopped, then the resume ran it on to its new budget.
    view = service.get(study_id)
    assert view.record.state == "completed" and unfinished(service, study_id) == 0
    assert view.counts["pruned"] >= 1  # the paused trials, cancelled by the stop
    stored = optuna.load_study(study_name=view.record.optuna_study_name, storage=optuna_storage)
    assert optuna.trial.TrialState.RUNNING not in {t.state for t in stored.trials}


def test_delete_and_resume_at_once_never_leave_half_a_study(
    store, optuna_storage, make_spec
) -> None:
    results, service, study_id, runners = race(
        store, optuna_storage, make_spec, "delete", "resume", ended_by="end"
    )
    assert results[0] is None  # delete came first
    assert isinstance(results[1], NotFound), results  # not a 500 of a half-deleted row
    assert runners.built == 1
    with pytest.raises(NotFound):
        service.get(study_id)


def test_resume_then_delete_at_once_keeps_the_resumed_study(
    store, optuna_storage, make_spec
) -> None:
    results, service, study_id, runners = race(
        store, optuna_storage, make_spec, "resume", "delete", ended_by="end"
    )
    assert not isinstance(results[0], BaseException) and isinstance(results[1], Conflict)
    view = service.get(study_id)
    assert view.record.state == "completed" and view.counts["complete"] == 4


def test_pause_and_stop_at_once_leave_the_first(store, optuna_storage, make_spec) -> None:
    runners = Runners()

    async def main() -> tuple[list[Any], StudyService, int]:
        service = StudyService(store, optuna_storage, runners)
        spec = make_spec(
            budget={"max_trials": 4, "max_epochs": 200, "parallelism": 2},
            early_stopping={"patience": 1000},
        )
        study_id = (await service.submit(StudySpec.model_validate(spec))).record.id
        while not store.unfinished_trials(study_id, states=["running"]):
            await asyncio.sleep(0.01)
        results = await asyncio.gather(
            service.pause(study_id), service.stop(study_id), return_exceptions=True
        )
        await asyncio.wait_for(service.wait(study_id), timeout=30)
        return list(results), service, study_id

    results, service, study_id = asyncio.run(main())
    assert not isinstance(results[0], BaseException) and isinstance(results[1], Conflict)
    assert service.get(study_id).record.state == "paused"


def test_a_state_change_is_a_compare_and_set_in_sql(store, make_spec) -> None:
    """Eight threads (as eight service processes would) reopen one stopped study: one wins."""
    spec = StudySpec.model_validate(make_spec()).model_dump(mode="json")
    record = store.create_study(
        name="s", spec=spec, direction="maximize", warnings=[], tenant="default"
    )
    store.set_study_state(record.id, "stopped", reason="user")
    barrier = threading.Barrier(8)
    outcomes: list[str] = []

    def reopen() -> None:
        barrier.wait()
        try:
            store.reopen_study(record.id, spec=spec, expect=("stopped",))
            outcomes.append("won")
        except StudyStateChanged as exc:
            outcomes.append(exc.state)

    threads = [threading.Thread(target=reopen) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["queued"] * 7 + ["won"]
    assert store.get_study(record.id).state == "queued"
    with pytest.raises(StudyStateChanged):
        store.delete_study(record.id, expect=("stopped", "completed", "failed", "paused"))
    assert store.get_study(record.id).state == "queued"
