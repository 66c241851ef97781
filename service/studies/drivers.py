"""The driver pool: one driver per running study, started, ended and resumed here.

A study is driven by one task at a time in this process: `launch` refuses a second,
and a command that resumes or deletes a study first waits for an ending driver to be
gone (`settled`). At start-up the pool resumes what a previous process left running.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import optuna

from service.cluster.fair_share import Shape
from service.cluster.scheduler import SlotScheduler
from service.cluster.slot_contract import StudyDemand
from service.errors import Conflict, InvalidRequest
from service.metrics import ServiceMetrics
from service.records import Study, load_study
from service.run.checkpoints import CheckpointStore
from service.run.driver import SHUTDOWN, StudyDriver
from service.run.jobs import TrialJob
from service.run.ledger import Ledger
from service.run.optuna_bridge import OptunaBridge
from service.run.recovery import end_unfinished, reconcile
from service.run.runner import TrialRunner
from service.spec import StudySpec
from service.studies.reads import ACTIVE_STATES
from service.studies.store_errors import storage_errors
from storage.records import StudyRecord, TrialRecord
from storage.repository import Store
from storage.session import describe_error
from workers.data_error import DataError
from workers.trial_checkpoints import TrialCheckpoints

log = logging.getLogger(__name__)

RunnerFactory = Callable[[int, StudySpec], Awaitable[TrialRunner]]


class DriverPool:
    """The drivers of this process's studies, by study id."""

    def __init__(
        self,
        ledger: Ledger,
        optuna_storage: optuna.storages.RDBStorage,
        runners: RunnerFactory,
        *,
        scheduler: SlotScheduler | None = None,
        checkpoints: CheckpointStore | None = None,
        metrics: ServiceMetrics | None = None,
        trial_checkpoints: TrialCheckpoints | None = None,
    ):
        self.ledger = ledger
        self.store = ledger.store
        self.optuna_storage = optuna_storage
        self.scheduler = scheduler
        self._runners = runners
        self._checkpoints = checkpoints
        self._metrics = metrics
        self._trial_checkpoints = trial_checkpoints
        self._drivers: dict[int, StudyDriver] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def start(self) -> None:
        """Start queued studies; resume those a previous process left running (see recovery).

        Neither kind is granted a slot before all of them have asked for one, so the
        queue's order (share, priority, age) holds across a restart.
        """
        await asyncio.to_thread(self._end_leftovers)
        records = await asyncio.to_thread(self.store.studies_in_states, ACTIVE_STATES)
        launched = []
        for record in records:
            try:
                study = load_study(record)
                retries: list[TrialJob] = []
                if record.state == "running":
                    retries = await asyncio.to_thread(
                        reconcile, self.ledger, self.optuna_storage, study
                    )
                self.launch(study, retries)
            except Exception as exc:  # noqa: BLE001 - one study's fault stops no other
                await asyncio.to_thread(self._fail_at_start, record, exc)
            else:
                launched.append(record.id)
        if self.scheduler is not None:
            self.scheduler.gate(launched)

    def _fail_at_start(self, record: StudyRecord, exc: Exception) -> None:
        """A study that cannot be resumed (a spec that today's rules refuse, rows that do
        not agree) fails with the reason, and the service starts the others."""
        log.error("study %s cannot resume: it fails", record.id, exc_info=exc)
        error = f"could not resume after a restart: {describe_error(exc)}"[:2000]
        self.ledger.move_study(record.id, "failed", reason="error", error=error)
        with contextlib.suppress(Exception):
            end_unfinished(
                self.ledger,
                self.optuna_storage,
                load_study(record),
                stop_reason="failed",
                error=error,
            )

    def _end_leftovers(self) -> None:
        """Trials that an ended study left waiting or running (an older version, or a crash
        while the study ended) end now, in both stores."""
        for record in self.store.ended_with_unfinished_trials():
            failed = record.state == "failed"
            try:
                n = end_unfinished(
                    self.ledger,
                    self.optuna_storage,
                    load_study(record),
                    stop_reason="failed" if failed else "cancelled",
                    error=f"the study {record.state} before this trial ended" if failed else None,
                )
            except Exception:  # noqa: BLE001 - the next start tries again; others go on
                log.exception("study %s: could not end its unfinished trials", record.id)
                continue
            log.warning(
                "study %s was %s with %d trials unfinished: ended them", record.id, record.state, n
            )

    async def close(self) -> None:
        """End every study's work within an epoch, leaving each queued or running in the
        store, so that the next start resumes it; studies still getting ready are
        cancelled."""
        for study_id, task in self._tasks.items():
            driver = self._drivers.get(study_id)
            if driver is not None:
                driver.request_stop(SHUTDOWN)
            else:
                task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    def check_fits(self, spec: StudySpec, tenant: str) -> None:
        """InvalidRequest for a trial shape the cluster could never place."""
        if self.scheduler is None:
            return
        problem = self.scheduler.check_fits(tenant, _shape(spec))
        if problem is not None:
            field, message = problem
            raise InvalidRequest(message, field=field)

    def launch(self, study: Study, retries: list[TrialJob] | None = None) -> None:
        """Start the study's driver: one per study (callers wait for an ending one first)."""
        record, spec = study.record, study.spec
        if record.id in self._tasks:
            raise Conflict(f"study {record.id} is being driven already")
        if self.scheduler is not None:
            self.scheduler.register(
                StudyDemand(
                    study_id=record.id,
                    name=record.name,
                    tenant=record.tenant,
                    priority=spec.priority,
                    created_at=record.created_at,
                    shape=_shape(spec),
                    parallelism=spec.budget.parallelism,
                ),
                waiting_since=record.created_at if record.started_at is None else None,
            )
        task = asyncio.create_task(self._drive(study, retries or []), name=f"study-{record.id}")
        self._tasks[record.id] = task
        task.add_done_callback(lambda done: self._forget(record.id, done))

    def _forget(self, study_id: int, task: asyncio.Task[None]) -> None:
        if self._tasks.get(study_id) is not task:
            return  # a later driver of the study (resumed) runs now
        self._tasks.pop(study_id, None)
        self._drivers.pop(study_id, None)
        if self.scheduler is not None:
            self.scheduler.unregister(study_id)
        if not task.cancelled() and task.exception() is not None:
            log.error("study %s's driver raised", study_id, exc_info=task.exception())

    async def settled(self, study_id: int) -> None:
        """Wait for an ending driver of the study (its final state is written, its task
        is finishing) to be gone, so that a resumed study never has two."""
        task = self._tasks.get(study_id)
        if task is not None:
            await asyncio.wait({task})

    async def wait(self, study_id: int) -> None:
        """Wait until the study's driver, if any, has finished."""
        task = self._tasks.get(study_id)
        if task is not None:
            await asyncio.shield(task)

    async def end(self, study_id: int, reason: str, state: str) -> None:
        """Ask the study's driver to end (`reason`); a study whose driver is not built yet
        is cancelled and moved to `state` here, if it is still active. Conflict when the
        driver is ending already for another reason."""
        driver = self._drivers.get(study_id)
        if driver is not None:
            taken = driver.request_stop(reason)
            if taken != reason:
                raise Conflict(f"study {study_id} is ending already ({taken})")
            return
        task = self._tasks.get(study_id)
        if task is not None:
            task.cancel()
            await asyncio.wait({task})
        with storage_errors():
            await asyncio.to_thread(
                self.ledger.move_study, study_id, state, reason="user", expect=ACTIVE_STATES
            )

    async def _drive(self, study: Study, retries: list[TrialJob]) -> None:
        try:
            bridge = await asyncio.to_thread(
                OptunaBridge,
                self.optuna_storage,
                study.record.optuna_study_name,
                study.spec,
                self.store,
            )
            runner = await self._runners(study.id, study.spec)
        except Exception as exc:  # noqa: BLE001 - a study that cannot start fails, visibly
            error = describe_error(exc)
            if isinstance(exc, DataError | InvalidRequest):  # the user's data: no traceback
                log.warning("study %s could not start: %s", study.id, error)
            else:
                log.exception("study %s could not start", study.id)
            await asyncio.to_thread(
                self.ledger.move_study, study.id, "failed", reason="error", error=error
            )
            return
        counts, n_retries, best, members = await asyncio.to_thread(self._so_far, study)
        driver = StudyDriver(
            study,
            bridge,
            ledger=self.ledger,
            runner=runner,
            n_done=sum(counts.values()) - n_retries,
            n_failed=counts["failed"],
            retries=retries,
            checkpoints=self._checkpoints,
            best_value=best[0].value if best else None,
            metrics=self._metrics,
            trial_checkpoints=self._trial_checkpoints,
            members=members,
        )
        self._drivers[study.id] = driver
        await driver.run()

    def _so_far(
        self, study: Study
    ) -> tuple[dict[str, int], int, list[TrialRecord], list[TrialRecord]]:
        """What the study had done (a resumed one): trial counts, retries, its best trial
        and its PBT members, in one session."""
        with self.store.reading():
            return (
                self.store.count_trials(study.id),
                self.store.count_retries(study.id),
                self.store.best_trials(study.id, k=1),
                population_members(self.store, study.id, study.spec),
            )


def _shape(spec: StudySpec) -> Shape:
    return Shape.of(spec.resources.cpus_per_trial, spec.resources.gpus_per_trial)


def population_members(store: Store, study_id: int, spec: StudySpec) -> list[TrialRecord]:
    """A PBT study's members so far, with their curves: what its population is rebuilt
    from when the study resumes (none for other studies, or before the first trial)."""
    if spec.population is None:
        return []
    page = store.list_trials(study_id, limit=spec.population.size)
    return [store.get_trial(study_id, t.number) for t in page.items]
