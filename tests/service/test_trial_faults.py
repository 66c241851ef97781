"""Faults inside one trial stay in that trial; faults of the service end the study cleanly.

The runner is a scripted fake (the store, Optuna's RDBStorage and the database are
real); its slots raise what the real `RaySlot` can let through: an error type nobody
mapped, a metric missing from an epoch, a slot whose set-up fails.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import optuna
import pytest
from sqlalchemy.exc import OperationalError

from service.run.runner import LastEpoch, Slot, TrialEnd, TrialStart
from service.spec import StudySpec
from service.studies.study_service import StudyService
from storage.repository import Store
from workers.slot import EpochResult, Resumed

Epoch = Callable[[int, int], dict[str, float] | BaseException]
"""(trial seed, epoch) -> the epoch's metrics, or an exception to raise."""


class OddSlot:
    def __init__(self, runner: OddRunner):
        self.runner = runner
        self.node = f"fake-{len(runner.slots)}"
        self.device = "cpu"
        self.seed = 0
        self.epoch = 0
        self.closed = False

    async def start_trial(self, start: TrialStart) -> None:
        self.seed, self.epoch = start.seed, 0

    async def resume_trial(self, start: TrialStart) -> Resumed:
        await self.start_trial(start)
        return Resumed([])

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        self.epoch += 1
        await asyncio.sleep(self.runner.epoch_s)
        metrics = self.runner.epoch(self.seed, self.epoch)
        if isinstance(metrics, BaseException):
            raise metrics
        return EpochResult(metrics)

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        return None, None

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        return TrialEnd()

    async def close(self) -> None:
        self.closed = True


class OddRunner:
    def __init__(
        self,
        epoch: Epoch,
        *,
        epoch_s: float = 0.005,
        failed_opens: int = 0,
        open_error: Callable[[], BaseException] | None = None,
    ):
        self.epoch = epoch
        self.epoch_s = epoch_s
        self.slots: list[OddSlot] = []
        self.failed_opens = failed_opens
        self.open_error = open_error or (lambda: RuntimeError("placement failed"))
        self.opens = 0
        self.unhealthy = 0

    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
        self.opens += 1
        if on_grant is not None:
            on_grant()
        if self.opens <= self.failed_opens:
            raise self.open_error()
        slot = OddSlot(self)
        self.slots.append(slot)
        return slot

    async def release_slot(self, slot: Slot, *, healthy: bool) -> None:
        assert isinstance(slot, OddSlot)
        if not healthy:
            self.unhealthy += 1
            await slot.close()

    def should_yield(self, slot: Slot) -> bool:
        return False

    async def close(self) -> None:
        pass


def good(value: float) -> dict[str, float]:
    return {
        "train_loss": 1 - value,
        "val_loss": 1 - value,
        "val_accuracy": value,
        "lr": 0.1,
        "seconds": 0.0,
    }


def run(store: Store, storage: Any, spec: dict[str, Any], runner: OddRunner) -> StudyService:
    async def runners(study_id: int, _: StudySpec) -> OddRunner:
        return runner

    async def main() -> StudyService:
        service = StudyService(store, storage, runners)
        view = await service.submit(StudySpec.model_validate(spec))
        await asyncio.wait_for(service.wait(view.record.id), timeout=60)
        return service

    return asyncio.run(main())


def only_study(service: StudyService) -> Any:
    page = service.list_studies(state=None, limit=10, cursor=None)
    assert len(page.items) == 1
    return page.items[0]


def trials_of(service: StudyService, study_id: int) -> list[Any]:
    page = service.list_trials(study_id, state=None, order="number", limit=100, cursor=None)
    return [service.trial(study_id, t.number) for t in page.items]


def optuna_states(storage: Any, name: str) -> list[optuna.trial.TrialState]:
    return [t.state for t in optuna.load_study(study_name=name, storage=storage).trials]


ODD_ERRORS = [  # (what the epoch gives, the error kept, whether the slot is ended)
    pytest.param(
        lambda: ConnectionResetError("the object store went away"),
        "ConnectionResetError",
        1,
        id="unmapped",
    ),
    pytest.param(
        lambda: {"train_loss": 0.5, "lr": 0.1, "seconds": 0.0},
        "reported no 'val_accuracy'",
        0,
        id="metric-missing",
    ),
]


@pytest.mark.parametrize(("odd", "kept", "ended"), ODD_ERRORS)
def test_an_odd_error_in_one_trial_fails_that_trial_and_its_siblings_go_on(
    store, optuna_storage, make_spec, odd, kept, ended
) -> None:
    """One trial of five raises what nobody mapped (or returns no objective metric) at its
    second epoch; the four others, two of them in flight beside it, train to the end."""
    spec = make_spec(
        budget={"max_trials": 5, "max_epochs": 4, "parallelism": 3},
        early_stopping={"patience": 10},
        pruner={"type": "none"},
    )
    bad_seed = spec.get("split", {}).get("seed", 0) + 1  # trial 1

    def epoch(seed: int, n: int) -> dict[str, float] | BaseException:
        if seed == bad_seed and n == 2:
            return odd()  # type: ignore[no-any-return]
        return good(0.1 * n)

    runner = OddRunner(epoch)
    service = run(store, optuna_storage, spec, runner)
    study = only_study(service).record
    assert (study.state, study.state_reason, study.error) == ("completed", "max_trials", None)
    done = trials_of(service, study.id)
    assert [t.state for t in done] == ["complete", "failed", "complete", "complete", "complete"]
    assert [t.stop_reason for t in done] == ["completed", "failed", *["completed"] * 3]
    assert done[1].error and kept in done[1].error and done[1].epochs_run == 1
    assert all(t.epochs_run == 4 for i, t in enumerate(done) if i != 1)
    states = optuna_states(optuna_storage, study.optuna_study_name)
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    assert states.count(optuna.trial.TrialState.FAIL) == 1
    # A slot that raised what nobody mapped is ended, not handed to the next trial.
    assert runner.unhealthy == ended


def test_a_slot_whose_set_up_fails_costs_no_study(store, optuna_storage, make_spec) -> None:
    """Slot starts that fail (the runner's third attempt, or an error nobody mapped) are
    the cluster's fault: the study is warned and goes on with the next slot."""
    spec = make_spec(budget={"max_trials": 3, "max_epochs": 2, "parallelism": 1})
    runner = OddRunner(lambda seed, n: good(0.5), failed_opens=2)
    service = run(store, optuna_storage, spec, runner)
    view = only_study(service)
    assert (view.record.state, view.record.error) == ("completed", None)
    assert view.counts["complete"] == 3
    assert any("placement failed" in w for w in view.record.warnings)


def test_slots_that_never_start_fail_the_study_through_max_failed_trials(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(
        budget={"max_trials": 3, "max_epochs": 2, "parallelism": 2, "max_failed_trials": 2}
    )
    runner = OddRunner(lambda seed, n: good(0.5), failed_opens=10**6)
    service = run(store, optuna_storage, spec, runner)
    view = only_study(service)
    assert (view.record.state, view.record.state_reason) == ("failed", "max_failed_trials")
    assert view.counts["running"] == view.counts["waiting"] == 0


class FailingWrites(Store):
    """A store whose database starts refusing epoch rows (a full disk, a lost server)."""

    def __init__(self, engine: Any, *, after: int) -> None:
        super().__init__(engine)
        self.after = after

    def add_epoch(self, *args: Any, **kwargs: Any) -> Any:
        self.after -= 1
        if self.after < 0:
            raise OperationalError("INSERT INTO epochs ...", {}, Exception("disk I/O error"))
        return super().add_epoch(*args, **kwargs)


def test_a_writer_that_cannot_write_fails_the_study_visibly_and_leaves_nothing_running(
    store, optuna_storage, make_spec, caplog
) -> None:
    spec = make_spec(
        budget={"max_trials": 6, "max_epochs": 6, "parallelism": 3},
        early_stopping={"patience": 10},
        pruner={"type": "none"},
    )
    failing = FailingWrites(store._engine, after=4)
    runner = OddRunner(lambda seed, n: good(0.1 * n), epoch_s=0.01)
    with caplog.at_level(logging.ERROR):
        service = run(failing, optuna_storage, spec, runner)
    view = only_study(service)
    assert (view.record.state, view.record.state_reason) == ("failed", "error")
    assert view.record.error and "could not record" in view.record.error
    assert "INSERT" not in view.record.error and "(id " in view.record.error  # no SQL
    assert view.counts["running"] == view.counts["waiting"] == 0
    assert optuna.trial.TrialState.RUNNING not in optuna_states(
        optuna_storage, view.record.optuna_study_name
    )
    assert any("could not record" in r.getMessage() for r in caplog.records)


def test_max_failed_trials_leaves_no_trial_running_in_either_store(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(
        budget={"max_trials": 8, "max_epochs": 20, "parallelism": 3, "max_failed_trials": 1},
        early_stopping={"patience": 100},
        pruner={"type": "none"},
    )
    bad_seed = spec.get("split", {}).get("seed", 0) + 2

    def epoch(seed: int, n: int) -> dict[str, float] | BaseException:
        return KeyError("boom") if seed == bad_seed and n == 3 else good(0.01 * n)

    service = run(store, optuna_storage, spec, OddRunner(epoch))
    view = only_study(service)
    assert (view.record.state, view.record.state_reason) == ("failed", "max_failed_trials")
    assert view.counts["running"] == view.counts["waiting"] == 0
    assert optuna.trial.TrialState.RUNNING not in optuna_states(
        optuna_storage, view.record.optuna_study_name
    )


def test_start_up_ends_trials_an_older_version_left_running_in_a_failed_study(
    store, optuna_storage, make_spec
) -> None:
    """An older version failed studies and left their trials running in both stores."""
    spec = StudySpec.model_validate(make_spec(budget={"max_trials": 4}))
    record = store.create_study(
        name="old",
        spec=spec.model_dump(mode="json"),
        direction="maximize",
        warnings=[],
        tenant="default",
    )
    study = optuna.create_study(
        storage=optuna_storage, study_name=record.optuna_study_name, direction="maximize"
    )
    for number in range(2):
        trial = study.ask()
        store.create_trial(record.id, number, {"lr": 0.1})
        trial.report(0.5, 1)
    store.set_study_state(record.id, "failed", reason="error", error="TaskGroup: boom")

    async def runners(study_id: int, _: StudySpec) -> OddRunner:
        raise AssertionError("a failed study is not driven")

    async def main() -> StudyService:
        service = StudyService(store, optuna_storage, runners)
        await service.start()
        return service

    service = asyncio.run(main())
    view = service.get(record.id)
    assert view.record.state == "failed"
    assert view.counts["running"] == view.counts["waiting"] == 0
    assert view.counts["failed"] == 2
    assert (
        optuna_states(optuna_storage, record.optuna_study_name)
        == [optuna.trial.TrialState.FAIL] * 2
    )


def test_a_queued_study_starts_no_writer_until_its_first_slot(
    store, optuna_storage, make_spec
) -> None:
    granted = asyncio.Event()

    class Queued(OddRunner):
        async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
            await granted.wait()  # the cluster's scheduler keeps the study waiting
            return await super().open_slot(on_grant=on_grant)

    def writers() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("study-")]

    training: list[list[str]] = []  # the writers seen by each epoch as it trains

    def epoch(seed: int, n: int) -> dict[str, float]:
        training.append(writers())
        return good(0.5)

    runner = Queued(epoch)

    async def runners(study_id: int, _: StudySpec) -> OddRunner:
        return runner

    async def main() -> tuple[int, list[str], str]:
        service = StudyService(store, optuna_storage, runners)
        spec = make_spec(budget={"max_trials": 2, "max_epochs": 2, "parallelism": 2})
        study_id = (await service.submit(StudySpec.model_validate(spec))).record.id
        for _ in range(50):  # the driver is built and waits for its slots
            await asyncio.sleep(0.01)
        queued = writers()
        granted.set()
        await asyncio.wait_for(service.wait(study_id), timeout=60)
        return study_id, queued, service.get(study_id).record.state

    study_id, queued, state = asyncio.run(main())
    assert queued == [] and state == "completed"
    assert len(training) == 4 and all(seen == [f"study-{study_id}"] for seen in training)


def test_a_study_whose_stored_spec_is_refused_now_fails_at_start_up_and_the_others_run(
    store, optuna_storage, make_spec
) -> None:
    """A spec stored by an older version that today's rules refuse (batch size 1 with batch
    norm) fails its study at start-up, with the reason; the other queued study runs."""
    valid = StudySpec.model_validate(make_spec(budget={"max_trials": 1, "max_epochs": 1}))
    stale = valid.model_dump(mode="json")
    stale["params"] = {**stale["params"], "batch_norm": True}
    stale["space"] = {**stale["space"], "batch_size": {"type": "categorical", "choices": [1]}}
    ids = []
    for spec in (stale, valid.model_dump(mode="json")):
        record = store.create_study(
            name="s", spec=spec, direction="maximize", warnings=[], tenant="default"
        )
        optuna.create_study(
            storage=optuna_storage, study_name=record.optuna_study_name, direction="maximize"
        )
        ids.append(record.id)
    runner = OddRunner(lambda seed, n: good(0.5))

    async def runners(study_id: int, _: StudySpec) -> OddRunner:
        return runner

    async def main() -> StudyService:
        service = StudyService(store, optuna_storage, runners)
        await service.start()
        await asyncio.wait_for(asyncio.gather(*(service.wait(i) for i in ids)), timeout=60)
        return service

    service = asyncio.run(main())
    refused, ran = (service.get(i).record for i in ids)
    assert (refused.state, refused.state_reason) == ("failed", "error")
    assert refused.error and "batch_norm" in refused.error
    assert ran.state == "completed"
