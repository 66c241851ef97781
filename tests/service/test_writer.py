"""The study writer: order, one transaction per batch, and nothing lost on a failure.

Real stores on every database: what is checked is what lands in the tables.
"""

from __future__ import annotations

import asyncio
import threading
from functools import partial

import optuna
import pytest
from optuna.trial import TrialState
from sqlalchemy import event

from service.run.optuna_mirror import OptunaMirror
from service.run.writer import OrderedWriter
from storage import ConflictError, Store

SPEC = {"name": "w", "space": {}}


def commits(store: Store) -> list[int]:
    """A list that grows by one on every commit of the store's engine."""
    seen: list[int] = []
    event.listen(store._engine, "commit", lambda _conn: seen.append(1))
    return seen


def held_writer(store: Store) -> tuple[OrderedWriter, threading.Event]:
    """A writer blocked on its first write until the event is set, so later ones queue."""
    writer = OrderedWriter("test", transaction=store.batch)
    release = threading.Event()
    writer.submit(release.wait)
    return writer, release


def test_queued_writes_land_in_order_in_one_transaction(store: Store) -> None:
    study = store.create_study(name="w", spec=SPEC, direction="maximize")
    writer, release = held_writer(store)
    committed = commits(store)
    for number in range(40):
        writer.submit(store.create_trial, study.id, number, {"lr": number})
    release.set()
    assert asyncio.run(writer.drain()) is None
    writer.close()

    trials = store.list_trials(study.id, limit=100).items
    assert [t.number for t in trials] == list(range(40))
    assert len(committed) <= 3  # the held write, the batch of 40, the drain marker
    kinds = [e.kind for e in store.events_after(study.id, 0, limit=100)]
    assert kinds.count("trial_started") == 40


def test_a_failing_write_keeps_the_earlier_ones_and_skips_the_later(store: Store) -> None:
    study = store.create_study(name="w", spec=SPEC, direction="maximize")
    writer, release = held_writer(store)
    writer.submit(store.create_trial, study.id, 0, {})
    writer.submit(store.create_trial, study.id, 1, {})
    writer.submit(store.create_trial, study.id, 0, {})  # a duplicate number: ConflictError
    writer.submit(store.create_trial, study.id, 2, {})
    release.set()

    error = asyncio.run(writer.drain())
    writer.close()

    assert error is not None and error.startswith("could not record: ConflictError")
    assert error.endswith("; 1 later writes skipped")
    assert [t.number for t in store.list_trials(study.id, limit=10).items] == [0, 1]
    with pytest.raises(RuntimeError, match="could not record: ConflictError"):
        writer.raise_if_failed()


def test_call_returns_its_result_and_raises_its_own_error(store: Store) -> None:
    study = store.create_study(name="w", spec=SPEC, direction="maximize")
    writer = OrderedWriter("test", transaction=store.batch)

    async def main() -> None:
        trial = await writer.call(store.create_trial, study.id, 0, {"lr": 0.1})
        assert trial.params == {"lr": 0.1}
        with pytest.raises(ConflictError):
            await writer.call(store.create_trial, study.id, 0, {})
        assert await writer.drain() is None  # a failed call does not fail the writer

    asyncio.run(main())
    writer.close()


def test_a_failed_batch_replays_a_trials_optuna_finish_and_keeps_the_first_error(
    store: Store, database_url: str
) -> None:
    storage = optuna.storages.RDBStorage(database_url)
    optuna_study = optuna.create_study(storage=storage, study_name="mirrored")
    mirror = OptunaMirror(optuna_study._study_id)
    study = store.create_study(name="w", spec=SPEC, direction="maximize")
    writer, release = held_writer(store)
    # The trial's creation commits in a batch of its own; its finish is in the batch that fails.
    writer.submit(
        store.run, partial(mirror.create, number=0, params={}, distributions={}, system_attrs={})
    )
    writer.submit(store.create_trial, study.id, 0, {})
    release.set()
    assert asyncio.run(writer.drain()) is None
    release.clear()
    writer.submit(release.wait)
    writer.submit(store.run, partial(mirror.report, number=0, step=1, value=0.5))
    writer.submit(
        store.run, partial(mirror.finish, number=0, state=TrialState.COMPLETE, values=[0.9])
    )
    writer.submit(store.create_trial, study.id, 0, {})  # a duplicate: the batch fails here
    release.set()

    error = asyncio.run(writer.drain())
    writer.close()

    assert error is not None and error.startswith("could not record: ConflictError"), error
    (trial,) = optuna.load_study(study_name="mirrored", storage=storage).trials
    assert (trial.state, trial.value, trial.intermediate_values) == (
        TrialState.COMPLETE,
        0.9,
        {1: 0.5},
    )
    storage.engine.dispose()
