"""Listeners hear of every trial's end and every study state change once, after its
commit, and none of them can hold up or fail a study.

Real small studies (digits, trained in-process by the worker's own trainer) on the
real store, SQLite and PostgreSQL; each listener checks inside its callback that the
store already shows what it was told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
import pytest

from service.data.datasets import DataRoots
from service.listeners.commits import after_commit, transaction
from service.listeners.contract import DELETED, StudyListener, StudyTransition, TrialEnded
from service.run.local_runner import InProcessRunner
from service.spec import StudySpec
from service.studies.study_service import StudyService
from storage.repository import Store


class Recording:
    """Keeps what it is told, and what the store showed when it was told."""

    def __init__(self, store: Store):
        self.store = store
        self.trials: list[TrialEnded] = []
        self.states: list[StudyTransition] = []
        self.seen_trial_states: list[str] = []
        self.seen_study_states: list[str] = []

    async def on_trial_ended(self, event: TrialEnded) -> None:
        self.trials.append(event)
        trial = await asyncio.to_thread(self.store.get_trial, event.study_id, event.number)
        self.seen_trial_states.append(trial.state)

    async def on_study_state(self, event: StudyTransition) -> None:
        self.states.append(event)
        try:
            study = await asyncio.to_thread(self.store.get_study, event.study_id)
        except Exception:  # noqa: BLE001 - the study's rows are gone
            self.seen_study_states.append(DELETED)
        else:
            self.seen_study_states.append(study.state)


class Raising:
    async def on_trial_ended(self, event: TrialEnded) -> None:
        raise RuntimeError("this listener fails on every trial")

    async def on_study_state(self, event: StudyTransition) -> None:
        raise RuntimeError("this listener fails on every state")


class Slow:
    """Takes its first event and waits until `gate` opens before it takes the next."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.told: list[object] = []

    async def on_trial_ended(self, event: TrialEnded) -> None:
        self.told.append(event)
        await self.gate.wait()

    async def on_study_state(self, event: StudyTransition) -> None:
        self.told.append(event)
        await self.gate.wait()


@pytest.fixture
def service_parts(
    store: Store, database_url: str, tmp_path: Path
) -> Iterator[tuple[Store, optuna.storages.RDBStorage, Any]]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(database_url)
    roots = DataRoots((tmp_path,))

    async def runners(study_id: int, spec: StudySpec) -> InProcessRunner:
        return await InProcessRunner.for_study(study_id, spec, roots)

    yield store, storage, runners
    storage.engine.dispose()


def small_spec(make_spec: Any, **budget: Any) -> StudySpec:
    budget = {"max_trials": 3, "max_epochs": 2, "parallelism": 2, **budget}
    return StudySpec.model_validate(make_spec(budget=budget))


def test_the_recording_listener_meets_the_contract(store: Store) -> None:
    assert isinstance(Recording(store), StudyListener)


def test_a_listener_hears_each_end_and_state_once_and_after_its_commit(
    service_parts: Any, make_spec: Any
) -> None:
    store, storage, runners = service_parts
    heard = Recording(store)

    async def main() -> int:
        service = StudyService(store, storage, runners, listeners=[heard])
        study_id = (await service.submit(small_spec(make_spec))).record.id
        await asyncio.wait_for(service.wait(study_id), timeout=120)
        await service.resume(study_id, budget={"max_trials": 5})
        await asyncio.wait_for(service.wait(study_id), timeout=120)
        await service.delete(study_id)
        await service.close()
        return study_id

    study_id = asyncio.run(main())

    states = [e.state for e in heard.states]
    assert states == ["running", "completed", "queued", "running", "completed", DELETED]
    assert all(e.study_id == study_id for e in heard.states + heard.trials)
    # What the store showed inside the callback: this state, or one the study reached later.
    for i, seen in enumerate(heard.seen_study_states):
        assert seen in states[i:], (i, states, heard.seen_study_states)
    assert sorted(e.number for e in heard.trials) == list(range(5))  # each end once
    assert heard.seen_trial_states == [e.state for e in heard.trials]
    assert all(e.state == "complete" and e.value is not None for e in heard.trials)


def test_a_stop_is_heard_with_the_trials_it_cancelled(service_parts: Any, make_spec: Any) -> None:
    store, storage, runners = service_parts
    heard = Recording(store)

    async def main() -> tuple[int, dict[str, int]]:
        service = StudyService(store, storage, runners, listeners=[heard])
        spec = small_spec(make_spec, max_trials=40, max_epochs=30)
        study_id = (await service.submit(spec)).record.id
        while not heard.states:  # running
            await asyncio.sleep(0.01)
        await service.stop(study_id)
        await asyncio.wait_for(service.wait(study_id), timeout=120)
        await service.close()
        return study_id, service.get(study_id).counts

    study_id, counts = asyncio.run(main())
    assert [e.state for e in heard.states] == ["running", "stopped"]
    assert heard.seen_study_states[1] == "stopped"
    assert heard.seen_study_states[0] in ("running", "stopped")
    assert len(heard.trials) == sum(counts.values())  # every trial's end, once
    assert len({e.number for e in heard.trials}) == len(heard.trials)
    assert heard.seen_trial_states == [e.state for e in heard.trials]


def test_a_raising_and_a_slow_listener_hold_up_and_fail_no_study(
    service_parts: Any, make_spec: Any, caplog: pytest.LogCaptureFixture
) -> None:
    store, storage, runners = service_parts
    heard, slow = Recording(store), Slow()

    async def main() -> tuple[str, int, int]:
        service = StudyService(store, storage, runners, listeners=[Raising(), slow, heard])
        study_id = (await service.submit(small_spec(make_spec))).record.id
        await asyncio.wait_for(service.wait(study_id), timeout=120)
        state = service.get(study_id).record.state
        await asyncio.sleep(0.1)  # the study has ended; the slow listener still waits
        n_slow_before = len(slow.told)
        slow.gate.set()
        await service.close()
        return state, study_id, n_slow_before

    with caplog.at_level(logging.ERROR, logger="service.listeners.fanout"):
        state, study_id, n_slow_before = asyncio.run(main())

    assert state == "completed"
    assert n_slow_before == 1  # it held its own events only
    assert [e.state for e in heard.states] == ["running", "completed"]
    assert len(heard.trials) == 3
    assert slow.told == [heard.states[0], *heard.trials, heard.states[1]]  # in order, late
    raised = [r for r in caplog.records if "listener Raising raised" in r.getMessage()]
    assert len(raised) == 5  # two states and three trials, each logged with its name


def test_after_commit_waits_for_the_commit_and_is_dropped_on_rollback(
    store: Store, make_spec: Any
) -> None:
    record = store.create_study(name="s", spec=make_spec(), direction="maximize")
    seen: list[str] = []

    def hook() -> None:
        seen.append(store.get_study(record.id).state)  # a session of its own: committed rows

    with transaction(store):
        store.set_study_state(record.id, "running")
        after_commit(hook)
        assert seen == []
    assert seen == ["running"]

    with pytest.raises(RuntimeError), transaction(store):
        store.set_study_state(record.id, "completed")
        after_commit(hook)
        raise RuntimeError("rolled back")
    assert seen == ["running"] and store.get_study(record.id).state == "running"

    after_commit(hook)  # outside a transaction every store call has committed: at once
    assert seen == ["running", "running"]
