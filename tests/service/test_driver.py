"""The study driver's rules, run through the StudyService with a scripted fake runner.

The runner is the one part replaced: the store, Optuna's RDBStorage and the
database are real, so what is checked is what the API would show.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import optuna
import pytest

from service.errors import Conflict
from service.run.runner import (
    LastEpoch,
    Slot,
    SlotCannotTrain,
    TrialEnd,
    TrialError,
    TrialOutOfMemory,
    TrialStart,
    WorkerLost,
)
from service.spec import StudySpec
from service.studies.study_service import StudyService
from storage.repository import Store
from workers.slot import EpochResult, Resumed

Script = Callable[[dict[str, Any], int], float | BaseException]


class ScriptedSlot:
    """A slot whose epoch values come from `script(params, epoch)`; exceptions are raised."""

    def __init__(self, runner: ScriptedRunner):
        self.runner = runner
        self.node = f"fake-{len(runner.slots)}"
        self.device = "cpu"
        self.params: dict[str, Any] = {}
        self.epoch = 0
        self.closed = False

    async def start_trial(self, start: TrialStart) -> None:
        self.params, self.epoch = start.params, 0

    async def resume_trial(self, start: TrialStart) -> Resumed:
        """No checkpoints here: a resumed trial starts over (under its own number)."""
        await self.start_trial(start)
        return Resumed([])

    async def run_epoch(self, *, last: LastEpoch | None = None) -> EpochResult:
        self.epoch += 1
        await asyncio.sleep(self.runner.epoch_s)
        value = self.runner.script(self.params, self.epoch)
        if isinstance(value, BaseException):
            raise value
        loss = 1.0 - value if math.isfinite(value) else value
        return EpochResult(
            {"train_loss": loss, "val_loss": loss, "val_accuracy": value, "lr": 0.1, "seconds": 0.0}
        )

    async def save_checkpoint(self) -> tuple[int | None, str | None]:
        return None, None

    async def end_trial(self, *, keep_weights: bool) -> TrialEnd:
        return TrialEnd()

    async def close(self) -> None:
        self.closed = True


class ScriptedRunner:
    def __init__(self, script: Script, epoch_s: float = 0.0, grant_s: float = 0.0):
        self.script = script
        self.epoch_s = epoch_s
        self.grant_s = grant_s
        self.slots: list[ScriptedSlot] = []
        self.free: list[ScriptedSlot] = []
        self.opened = 0
        self.closed = False

    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
        self.opened += 1
        await asyncio.sleep(self.grant_s)
        if on_grant is not None:
            on_grant()
        if self.free:
            return self.free.pop()
        slot = ScriptedSlot(self)
        self.slots.append(slot)
        return slot

    async def release_slot(self, slot: Slot, *, healthy: bool) -> None:
        assert isinstance(slot, ScriptedSlot)
        if healthy:
            self.free.append(slot)
        else:
            await slot.close()

    def should_yield(self, slot: Slot) -> bool:
        return False

    async def close(self) -> None:
        self.closed = True


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    """The driver's rules do not depend on the database: the shared `store` on SQLite."""
    return sqlite_url


@pytest.fixture
def optuna_storage(sqlite_url: str) -> Iterator[optuna.storages.RDBStorage]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(sqlite_url)
    yield storage
    storage.engine.dispose()


def run_study(
    store: Store,
    optuna_storage: Any,
    spec: dict[str, Any],
    script: Script,
    *,
    resume_to: int | None = None,
    **runner_kwargs: Any,
) -> tuple[StudyService, int, ScriptedRunner]:
    """Run a study to its end (then, with `resume_to`, resume it to that many trials)."""
    runner = ScriptedRunner(script, **runner_kwargs)

    async def runners(study_id: int, _: StudySpec) -> ScriptedRunner:
        return runner

    async def main() -> tuple[StudyService, int]:
        service = StudyService(store, optuna_storage, runners)
        view = await service.submit(StudySpec.model_validate(spec))
        await service.wait(view.record.id)
        if resume_to is not None:
            await service.resume(view.record.id, budget={"max_trials": resume_to})
            await service.wait(view.record.id)
        return service, view.record.id

    service, study_id = asyncio.run(main())
    return service, study_id, runner


def curve(*values: float) -> Script:
    return lambda params, epoch: values[min(epoch, len(values)) - 1]


def trials(service: StudyService, study_id: int) -> list[Any]:
    page = service.list_trials(study_id, state=None, order="number", limit=1000, cursor=None)
    return [service.trial(study_id, t.number) for t in page.items]


def test_every_trial_runs_to_max_epochs_without_early_stop_or_pruning(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(budget={"max_trials": 5, "max_epochs": 4}, early_stopping={"patience": 10})
    service, study_id, runner = run_study(store, optuna_storage, spec, curve(0.1, 0.2, 0.3, 0.4))
    study = service.get(study_id)
    assert (study.record.state, study.record.state_reason) == ("completed", "max_trials")
    assert study.counts["complete"] == 5
    assert all(
        t.epochs_run == 4 and t.stop_reason == "completed" for t in trials(service, study_id)
    )
    assert runner.closed and len(runner.slots) == 2
    assert (
        len(
            optuna.load_study(
                study_name=study.record.optuna_study_name, storage=optuna_storage
            ).trials
        )
        == 5
    )


def test_a_study_asks_for_no_slot_it_has_no_trial_for(store, optuna_storage, make_spec) -> None:
    # Both loops finish their trials together with one trial left: only one may wait for a
    # slot. A slot granted and handed straight back can start an actor, or preempt another
    # tenant's trial, for nothing.
    spec = make_spec(budget={"max_trials": 3, "max_epochs": 2, "parallelism": 2})
    service, study_id, runner = run_study(
        store, optuna_storage, spec, curve(0.1, 0.2), epoch_s=0.05, grant_s=0.5
    )
    assert service.get(study_id).counts["complete"] == 3
    assert runner.opened == 3


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_value(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(budget={"max_trials": 2, "max_epochs": 10}, early_stopping={"patience": 2})
    service, study_id, _ = run_study(store, optuna_storage, spec, curve(0.5, 0.8, 0.7, 0.75, 0.9))
    for trial in trials(service, study_id):
        assert (trial.stop_reason, trial.epochs_run, trial.value, trial.best_epoch) == (
            "early_stopped",
            4,
            0.8,
            2,
        )
        assert [e.metrics["val_accuracy"] for e in trial.epochs] == [0.5, 0.8, 0.7, 0.75]


def test_pruner_stops_worse_trials(store, optuna_storage, make_spec) -> None:
    def script(params: dict[str, Any], epoch: int) -> float:
        return epoch * (0.1 if params["batch_size"] == 64 else 0.01)

    spec = make_spec(
        space={"batch_size": {"type": "categorical", "choices": [32, 64]}},
        sampler={"type": "random", "seed": 1},
        pruner={"type": "median", "n_startup_trials": 1},
        budget={"max_trials": 10, "max_epochs": 5, "parallelism": 1},
    )
    service, study_id, _ = run_study(store, optuna_storage, spec, script)
    done = trials(service, study_id)
    pruned = [t for t in done if t.state == "pruned"]
    assert pruned and all(t.params["batch_size"] == 32 for t in pruned)
    assert all(t.stop_reason == "pruned" and t.epochs_run < 5 for t in pruned)


def test_target_ends_the_study_early(store, optuna_storage, make_spec) -> None:
    spec = make_spec(budget={"max_trials": 50, "max_epochs": 5, "target": 0.3, "parallelism": 1})
    service, study_id, _ = run_study(store, optuna_storage, spec, curve(0.1, 0.2, 0.3, 0.4))
    study = service.get(study_id)
    assert (study.record.state, study.record.state_reason) == ("completed", "target_reached")
    assert study.counts["complete"] == 1 and study.best is not None and study.best.value == 0.3


def test_failing_trials_end_the_study_at_max_failed_trials(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(budget={"max_trials": 20, "max_failed_trials": 3, "parallelism": 1})
    service, study_id, _ = run_study(
        store, optuna_storage, spec, lambda p, e: TrialError("ValueError: bad params")
    )
    study = service.get(study_id)
    assert (study.record.state, study.record.state_reason) == ("failed", "max_failed_trials")
    assert study.counts["failed"] == 3
    assert all(
        t.error == "ValueError: bad params" and t.stop_reason == "failed"
        for t in trials(service, study_id)
    )


def test_out_of_memory_fails_the_trial_tells_optuna_pruned_and_the_slot_goes_on(
    store, optuna_storage, make_spec
) -> None:
    def script(params: dict[str, Any], epoch: int) -> float | BaseException:
        if params["batch_size"] == 64 and epoch == 2:
            return TrialOutOfMemory("out of memory on NVIDIA H200: CUDA out of memory.")
        return 0.1 * epoch

    spec = make_spec(budget={"max_trials": 6, "max_epochs": 3, "parallelism": 1})
    service, study_id, runner = run_study(store, optuna_storage, spec, script)
    study = service.get(study_id)
    assert (study.record.state, study.record.state_reason) == ("completed", "max_trials")
    done = trials(service, study_id)
    oom = [t for t in done if t.params["batch_size"] == 64]
    assert oom and len(oom) < len(done)
    for trial in oom:
        assert (trial.state, trial.stop_reason, trial.epochs_run) == ("failed", "out_of_memory", 1)
        assert trial.error is not None and "out of memory" in trial.error
    assert all(t.state == "complete" for t in done if t.params["batch_size"] != 64)
    assert len(runner.slots) == 1 and not runner.slots[0].closed  # one slot took every trial
    frozen = optuna.load_study(study_name=study.record.optuna_study_name, storage=optuna_storage)
    states = {t.number: t.state for t in frozen.trials}
    assert {states[t.number] for t in oom} == {optuna.trial.TrialState.PRUNED}
    assert study.record.warnings == []


def test_a_slot_that_cannot_use_its_gpus_fails_trials_and_warns_the_study(
    store, optuna_storage, make_spec
) -> None:
    message = "node abc assigned GPU ids ['0'] to this slot, but torch.cuda.is_available() is False"
    spec = make_spec(budget={"max_trials": 5, "max_failed_trials": 2, "parallelism": 1})
    service, study_id, _ = run_study(
        store, optuna_storage, spec, lambda p, e: SlotCannotTrain(message)
    )
    study = service.get(study_id)
    assert (study.record.state, study.record.state_reason) == ("failed", "max_failed_trials")
    assert all(
        (t.stop_reason, t.error, t.epochs_run) == ("failed", message, 0)
        for t in trials(service, study_id)
    )
    assert study.record.warnings == [f"trials fail on a slot that cannot use its GPUs: {message}"]


def test_a_lost_worker_resumes_its_trial_under_its_number_and_the_study_goes_on(
    store, optuna_storage, make_spec
) -> None:
    lost: list[int] = []

    def script(params: dict[str, Any], epoch: int) -> float | BaseException:
        if not lost and epoch == 2:
            lost.append(epoch)
            return WorkerLost("the actor died")
        return 0.1 * epoch

    spec = make_spec(budget={"max_trials": 4, "max_epochs": 3, "parallelism": 1})
    service, study_id, runner = run_study(store, optuna_storage, spec, script)
    done = trials(service, study_id)
    assert [t.number for t in done] == [0, 1, 2, 3]
    assert {t.stop_reason for t in done} == {"completed"}
    first = service.trial(study_id, 0)
    assert [(a.from_epoch, a.epochs_trained, a.end) for a in first.attempts] == [
        (0, 1, "worker_lost"),
        (0, 3, "completed"),
    ]  # no checkpoints here, so the second run starts over; the curve holds each epoch once
    assert [e.epoch for e in first.epochs] == [1, 2, 3] and first.epochs_run == 3
    assert service.get(study_id).record.state == "completed"
    assert len(runner.slots) == 2 and runner.slots[0].closed


def test_a_trial_that_loses_more_workers_than_max_retries_fails(
    store, optuna_storage, make_spec
) -> None:
    def script(params: dict[str, Any], epoch: int) -> float | BaseException:
        return WorkerLost("the node died") if params["lr"] == first_lr[0] else 0.5

    first_lr: list[float] = []

    def remember(params: dict[str, Any], epoch: int) -> float | BaseException:
        if not first_lr:
            first_lr.append(params["lr"])
        return script(params, epoch)

    spec = make_spec(budget={"max_trials": 2, "max_epochs": 2, "parallelism": 1, "max_retries": 2})
    service, study_id, _ = run_study(store, optuna_storage, spec, remember)
    lost = service.trial(study_id, 0)
    assert (lost.state, lost.stop_reason) == ("failed", "worker_lost")
    assert [a.end for a in lost.attempts] == ["worker_lost"] * 3
    assert service.trial(study_id, 1).state == "complete"


def test_diverged_trials_end_at_once_as_pruned(store, optuna_storage, make_spec) -> None:
    spec = make_spec(budget={"max_trials": 1, "max_epochs": 10})
    service, study_id, _ = run_study(store, optuna_storage, spec, curve(0.5, math.nan))
    (trial,) = trials(service, study_id)
    assert (trial.state, trial.stop_reason, trial.epochs_run, trial.value) == (
        "pruned",
        "diverged",
        2,
        0.5,
    )


def test_stop_cancels_running_trials(store, optuna_storage, make_spec) -> None:
    spec = make_spec(
        budget={"max_trials": 10, "max_epochs": 1000}, early_stopping={"patience": 1000}
    )
    runner = ScriptedRunner(lambda p, e: 0.001 * e, epoch_s=0.01)

    async def runners(study_id: int, _: StudySpec) -> ScriptedRunner:
        return runner

    async def main() -> StudyService:
        service = StudyService(store, optuna_storage, runners)
        view = await service.submit(StudySpec.model_validate(spec))
        while not any(
            t.epochs_run for t in store.unfinished_trials(view.record.id, states=["running"])
        ):
            await asyncio.sleep(0.01)  # until a trial is running and has trained an epoch
        await service.stop(view.record.id)
        await asyncio.wait_for(service.wait(view.record.id), timeout=10)
        return service

    service = asyncio.run(main())
    (study,) = service.list_studies(state=None, limit=10, cursor=None).items
    assert (study.record.state, study.record.state_reason) == ("stopped", "user")
    assert study.counts["running"] == 0
    assert {t.stop_reason for t in trials(service, study.record.id)} == {"cancelled"}


def test_optuna_storage_holds_the_same_trials_as_the_store(
    store, optuna_storage, make_spec
) -> None:
    def script(params: dict[str, Any], epoch: int) -> float | BaseException:
        if params["batch_size"] == 32 and epoch == 2:
            return TrialError("boom")
        return 0.1 * epoch * params["lr"] * 10

    spec = make_spec(
        budget={"max_trials": 12, "max_epochs": 4, "parallelism": 3},
        pruner={"type": "median", "n_startup_trials": 2},
        sampler={"type": "tpe", "seed": 0, "n_startup_trials": 4},
    )
    service, study_id, _ = run_study(store, optuna_storage, spec, script)
    ours = {t.number: t for t in trials(service, study_id)}
    name = service.get(study_id).record.optuna_study_name
    theirs = {
        t.number: t for t in optuna.load_study(study_name=name, storage=optuna_storage).trials
    }
    assert sorted(ours) == sorted(theirs) == list(range(12))
    states = {"complete": "COMPLETE", "pruned": "PRUNED", "failed": "FAIL"}
    for number, trial in ours.items():
        assert theirs[number].params == trial.params
        assert theirs[number].state.name == states[trial.state]
        curve = {e.epoch: e.metrics["val_accuracy"] for e in trial.epochs}
        assert theirs[number].intermediate_values == curve
        if trial.state == "complete":
            assert theirs[number].value == trial.value


def test_a_resumed_bridge_continues_the_numbering(store, optuna_storage, make_spec) -> None:
    from service.run.optuna_bridge import OptunaBridge

    spec = make_spec(budget={"max_trials": 3, "max_epochs": 2})
    service, study_id, _ = run_study(store, optuna_storage, spec, curve(0.1, 0.2))
    name = service.get(study_id).record.optuna_study_name
    bridge = OptunaBridge(optuna_storage, name, StudySpec.model_validate(spec), store)
    assert bridge.n_trials == 3
    trial, params, write = bridge.ask()
    write()
    assert trial.number == 3
    mirrored = optuna.load_study(study_name=name, storage=optuna_storage).trials[-1]
    assert (mirrored.number, mirrored.state.name) == (3, "RUNNING")
    assert mirrored.params == {k: v for k, v in params.items() if k in mirrored.params}


@pytest.mark.parametrize("sampler", ["random", "tpe", "cmaes", "qmc", "nsga2", "gp"])
def test_a_resumed_study_draws_none_of_the_params_it_drew_before(
    store, optuna_storage, make_spec, sampler: str
) -> None:
    spec = make_spec(
        space={
            "lr": {"type": "float", "low": 1e-3, "high": 0.1, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.5},
        },
        sampler={"type": sampler, "seed": 0},
        pruner={"type": "none"},
        budget={"max_trials": 3, "max_epochs": 1, "parallelism": 1},
    )
    service, study_id, _ = run_study(store, optuna_storage, spec, curve(0.5), resume_to=6)
    drawn = [tuple(sorted(t.params.items())) for t in trials(service, study_id)]
    assert len(drawn) == 6
    assert not set(drawn[3:]) & set(drawn[:3]), f"{sampler} repeated a draw after the resume"


def paused_study(
    store: Store, optuna_storage: Any, spec: dict[str, Any], then: str
) -> tuple[StudyService, int, dict[str, Any]]:
    """Run a study until two trials trained an epoch, pause it, then `then` it."""
    runner = ScriptedRunner(lambda p, e: 0.01 * e, epoch_s=0.01)

    async def runners(study_id: int, _: StudySpec) -> ScriptedRunner:
        return runner

    async def main() -> tuple[StudyService, int, dict[str, Any]]:
        service = StudyService(store, optuna_storage, runners)
        study_id = (await service.submit(StudySpec.model_validate(spec))).record.id
        while (
            sum(t.epochs_run > 0 for t in store.unfinished_trials(study_id, states=["running"])) < 2
        ):
            await asyncio.sleep(0.01)
        await service.pause(study_id)
        await asyncio.wait_for(service.wait(study_id), timeout=10)
        at_pause = {
            "study": service.get(study_id),
            "trials": {t.number: t for t in trials(service, study_id)},
            "optuna": optuna.load_study(
                study_name=service.get(study_id).record.optuna_study_name, storage=optuna_storage
            ).trials,
        }
        with pytest.raises(Conflict):
            await service.pause(study_id)
        if then == "resume":
            await service.resume(study_id)
        else:
            await service.stop(study_id)
        await asyncio.wait_for(service.wait(study_id), timeout=30)
        return service, study_id, at_pause

    return asyncio.run(main())


def test_a_paused_study_keeps_its_trials_waiting_and_resume_finishes_them(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(
        budget={"max_trials": 4, "max_epochs": 30, "parallelism": 2},
        early_stopping={"patience": 100},
        pruner={"type": "none"},
    )
    service, study_id, at_pause = paused_study(store, optuna_storage, spec, "resume")
    paused = at_pause["study"]
    assert (paused.record.state, paused.record.state_reason) == ("paused", "user")
    assert paused.counts["waiting"] == 2 and paused.counts["running"] == 0
    waiting = [n for n, t in at_pause["trials"].items() if t.state == "waiting"]
    assert all(at_pause["trials"][n].attempts[-1].end == "paused" for n in waiting)
    assert {t.state for t in at_pause["optuna"]} == {optuna.trial.TrialState.RUNNING}
    study = service.get(study_id)
    assert study.record.state == "completed" and study.counts["complete"] == 4
    done = trials(service, study_id)
    assert [t.number for t in done] == [0, 1, 2, 3]  # the paused trials kept their numbers
    for number in waiting:
        assert [a.end for a in service.trial(study_id, number).attempts] == ["paused", "completed"]


def test_stopping_a_paused_study_cancels_its_waiting_trials_in_both_stores(
    store, optuna_storage, make_spec
) -> None:
    spec = make_spec(
        budget={"max_trials": 4, "max_epochs": 30, "parallelism": 2},
        early_stopping={"patience": 100},
        pruner={"type": "none"},
    )
    service, study_id, _ = paused_study(store, optuna_storage, spec, "stop")
    study = service.get(study_id)
    assert (study.record.state, study.record.state_reason) == ("stopped", "user")
    assert study.counts["waiting"] == study.counts["running"] == 0
    assert {t.stop_reason for t in trials(service, study_id)} == {"cancelled"}
    stored = optuna.load_study(study_name=study.record.optuna_study_name, storage=optuna_storage)
    assert {t.state for t in stored.trials} == {optuna.trial.TrialState.PRUNED}


def test_slow_draws_leave_the_event_loop_free(
    store, optuna_storage, make_spec, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Gaussian process's draws take tens of milliseconds to seconds each. They run in a
    worker thread, so the loop that every study and the HTTP API share keeps turning.
    Here each draw waits, inside the sampler, until a coroutine on that loop lets it go
    on: a draw made on the loop would wait for a loop it holds still, and give up."""
    began, answered = threading.Semaphore(0), threading.Semaphore(0)
    stuck: list[int] = []
    draw = optuna.samplers.GPSampler.sample_relative

    def draw_once_the_loop_answers(
        self: optuna.samplers.GPSampler, study: optuna.Study, trial: Any, space: Any
    ) -> dict[str, Any]:
        began.release()
        # The timeout only ends a wait that would otherwise never end; it measures nothing.
        if stuck or not answered.acquire(timeout=20):
            stuck.append(trial.number)
        return draw(self, study, trial, space)

    monkeypatch.setattr(optuna.samplers.GPSampler, "sample_relative", draw_once_the_loop_answers)
    space = {name: {"type": "float", "low": 0.0, "high": 0.5} for name in ("dropout", "l1")}
    spec = make_spec(
        space=space,
        sampler={"type": "gp", "seed": 0, "n_startup_trials": 2},
        pruner={"type": "none"},
        budget={"max_trials": 5, "max_epochs": 1, "parallelism": 1},
    )
    runner = ScriptedRunner(lambda params, epoch: 1.0 - sum(params[name] ** 2 for name in space))
    n_answered = 0

    async def answer(done: asyncio.Event) -> None:
        nonlocal n_answered
        while not done.is_set():
            if began.acquire(blocking=False):
                n_answered += 1
                answered.release()
            await asyncio.sleep(0.001)

    async def main() -> None:
        async def runners(study_id: int, _: StudySpec) -> ScriptedRunner:
            return runner

        service = StudyService(store, optuna_storage, runners)
        done = asyncio.Event()
        answering = asyncio.create_task(answer(done))
        view = await service.submit(StudySpec.model_validate(spec))
        await service.wait(view.record.id)
        done.set()
        await answering
        assert service.get(view.record.id).counts["complete"] == 5

    asyncio.run(main())
    assert stuck == [], f"trials {stuck} were drawn on the event loop"
    assert n_answered == 5  # every draw, the model-based ones included, waited for the loop


def test_reconcile_resumes_what_optuna_runs_and_copies_what_it_finished(
    store, optuna_storage, make_spec
) -> None:
    """The three states a crash can leave, between Optuna's write and the store's: running
    in both (resumes), running in Optuna with no row of ours (resumes, its row created
    waiting), finished in Optuna while ours still runs (the outcome is copied over). The
    finished trials that agree are left alone."""
    from optuna.trial import TrialState

    from service.records import load_study
    from service.run.ledger import Ledger
    from service.run.recovery import reconcile

    spec = make_spec(budget={"max_trials": 3, "max_epochs": 1})
    service, study_id, _ = run_study(store, optuna_storage, spec, curve(0.5))
    record = store.get_study(study_id)
    study = optuna.load_study(study_name=record.optuna_study_name, storage=optuna_storage)

    def ask(lr: float) -> optuna.Trial:
        study.enqueue_trial({"lr": lr})
        trial = study.ask()
        trial.suggest_float("lr", 1e-5, 1.0, log=True)
        return trial

    both, optuna_only, finished = ask(0.01), ask(0.02), ask(0.03)
    store.create_trial(study_id, both.number, {"lr": 0.01})
    store.create_trial(study_id, finished.number, {"lr": 0.03})
    study.tell(finished, 0.75)
    before = {t.number: t.state for t in trials(service, study_id)}

    jobs = reconcile(Ledger(store), optuna_storage, load_study(record))

    assert [j.number for j in jobs] == [both.number, optuna_only.number]
    assert [j.params for j in jobs] == [{"lr": 0.01}, {"lr": 0.02}]
    after = {t.number: t for t in trials(service, study_id)}
    assert after[optuna_only.number].state == "waiting"
    copied = after[finished.number]
    assert (copied.state, copied.value, copied.stop_reason) == ("complete", 0.75, "completed")
    assert all(after[n].state == before[n] for n in range(3))  # the agreeing ones
    assert study.trials[finished.number].state == TrialState.COMPLETE
