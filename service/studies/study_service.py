"""The study service: submits, reads and stops studies; owns one driver per running study.

It works the same in-process (tests, `hpo demo`) and behind the HTTP API.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from pydantic import ValidationError

from service.cluster.cluster_view import QueueInfo, ScopedCluster, scope
from service.cluster.fair_share import Shape
from service.cluster.scheduler import SlotScheduler
from service.cluster.slot_contract import StudyDemand
from service.data.datasets import DataRoots, check_data_source
from service.errors import Conflict, InvalidRequest, NotFound, Unavailable
from service.limits import SpecLimits, SubmissionRate
from service.metrics import ServiceMetrics
from service.run.checkpoints import CheckpointStore
from service.run.driver import PAUSE, SHUTDOWN, StudyDriver
from service.run.jobs import TrialJob
from service.run.optuna_bridge import OptunaBridge
from service.run.recovery import cancel_unfinished, end_unfinished, reconcile
from service.run.runner import TrialRunner
from service.spec import StudySpec
from service.studies.pareto import pareto_front
from service.studies.pbt_replay import replay_spec
from storage.errors import ConflictError, InvalidCursorError, NotFoundError, StorageError
from storage.records import (
    FINISHED_TRIAL_STATES,
    EventRecord,
    Page,
    StudyRecord,
    TrialRecord,
)
from storage.repository import Store
from storage.session import describe_error
from workers.data_error import DataError
from workers.trial_checkpoints import TrialCheckpoints

log = logging.getLogger(__name__)

RunnerFactory = Callable[[int, StudySpec], Awaitable[TrialRunner]]
ACTIVE_STATES = ("queued", "running")
RESUMABLE_STUDY_STATES = ("paused", "completed", "stopped", "failed")
DEFAULT_TENANT = "default"


@dataclass(frozen=True)
class StudyView:
    """A study as the API shows it: its record with trial counts and best trial."""

    record: StudyRecord
    counts: dict[str, int]
    best: TrialRecord | None
    queue: QueueInfo | None = None
    checkpoint_bytes: int = 0


class StudyService:
    def __init__(
        self,
        store: Store,
        optuna_storage: optuna.storages.RDBStorage,
        runners: RunnerFactory,
        *,
        data_roots: DataRoots | None = None,
        checkpoints: CheckpointStore | None = None,
        metrics: ServiceMetrics | None = None,
        limits: SpecLimits | None = None,
        rate: SubmissionRate | None = None,
        scheduler: SlotScheduler | None = None,
        trial_checkpoints: TrialCheckpoints | None = None,
    ):
        self.store = store
        self.trial_checkpoints = trial_checkpoints
        self.scheduler = scheduler
        self.metrics = metrics
        self.limits = limits or SpecLimits()
        self.rate = rate
        self.data_roots = data_roots
        self.checkpoints = checkpoints
        self.optuna_storage = optuna_storage
        self._runners = runners
        self._drivers: dict[int, StudyDriver] = {}
        self._tasks: dict[int, asyncio.Task[None]] = {}
        # One command at a time per study in this process; the state changes themselves
        # are compare-and-sets in SQL (`expect=`), so two processes cannot both win either.
        self._commands: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

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
                retries: list[TrialJob] = []
                if record.state == "running":
                    retries = await asyncio.to_thread(
                        reconcile, self.store, self.optuna_storage, record
                    )
                self._launch(record, retries)
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
        error = f"could not resume after a restart: {describe_error(exc)}"
        self.store.set_study_state(record.id, "failed", reason="error", error=error[:2000])
        with contextlib.suppress(Exception):
            end_unfinished(
                self.store,
                self.optuna_storage,
                record.id,
                record.optuna_study_name,
                stop_reason="failed",
                error=error[:2000],
            )

    def _end_leftovers(self) -> None:
        """Trials that an ended study left waiting or running (an older version, or a crash
        while the study ended) end now, in both stores."""
        for record in self.store.ended_with_unfinished_trials():
            failed = record.state == "failed"
            try:
                n = end_unfinished(
                    self.store, self.optuna_storage, record.id, record.optuna_study_name,
                    stop_reason="failed" if failed else "cancelled",
                    error=f"the study {record.state} before this trial ended" if failed else None,
                )  # fmt: skip
            except Exception:  # noqa: BLE001 - the next start tries again; others go on
                log.exception("study %s: could not end its unfinished trials", record.id)
                continue
            log.warning("study %s was %s with %d trials unfinished: ended them", record.id,
                        record.state, n)  # fmt: skip

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

    async def submit(self, spec: StudySpec, *, tenant: str = DEFAULT_TENANT) -> StudyView:
        """Store and start a study; InvalidRequest (limits, data source, a trial that
        could never be placed), RateLimited."""
        self.limits.check(spec)
        self._check_fits(spec, tenant)
        if self.data_roots is not None:  # reads a data file's header: off the loop
            await asyncio.to_thread(check_data_source, spec, self.data_roots, tenant=tenant)
        if self.rate is not None:
            self.rate.admit(tenant)
        record = await asyncio.to_thread(self._create, spec, tenant)
        self._launch(record)
        return await asyncio.to_thread(self.get, record.id)

    def _create(self, spec: StudySpec, tenant: str) -> StudyRecord:
        with storage_errors():
            record = self.store.create_study(
                name=spec.name, spec=spec.model_dump(mode="json"),
                direction=spec.primary.direction, warnings=spec.warnings(), tenant=tenant,
            )  # fmt: skip
            try:
                optuna.create_study(
                    storage=self.optuna_storage, study_name=record.optuna_study_name,
                    directions=spec.directions,
                )  # fmt: skip
            except Exception:
                self.store.delete_study(record.id)
                raise
            return record

    def _check_fits(self, spec: StudySpec, tenant: str) -> None:
        if self.scheduler is None:
            return
        problem = self.scheduler.check_fits(tenant, _shape(spec))
        if problem is not None:
            field, message = problem
            raise InvalidRequest(message, field=field)

    def _launch(self, record: StudyRecord, retries: list[TrialJob] | None = None) -> None:
        """Start the study's driver: one per study (callers wait for an ending one first)."""
        if record.id in self._tasks:
            raise Conflict(f"study {record.id} is being driven already")
        if self.scheduler is not None:
            spec = record.spec
            self.scheduler.register(
                StudyDemand(
                    study_id=record.id, name=record.name, tenant=record.tenant,
                    priority=int(spec.get("priority", 0)), created_at=record.created_at,
                    shape=_shape(StudySpec.model_validate(spec)),
                    parallelism=int(spec["budget"]["parallelism"]),
                ),
                waiting_since=record.created_at if record.started_at is None else None,
            )  # fmt: skip
        task = asyncio.create_task(self._drive(record, retries or []), name=f"study-{record.id}")
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

    async def _settled(self, study_id: int) -> None:
        """Wait for an ending driver of the study (its final state is written, its task
        is finishing) to be gone, so that a resumed study never has two."""
        task = self._tasks.get(study_id)
        if task is not None:
            await asyncio.wait({task})

    async def _drive(self, record: StudyRecord, retries: list[TrialJob]) -> None:
        try:
            spec = StudySpec.model_validate(record.spec)
            bridge = await asyncio.to_thread(
                OptunaBridge, self.optuna_storage, record.optuna_study_name, spec, self.store
            )
            runner = await self._runners(record.id, spec)
        except Exception as exc:  # noqa: BLE001 - a study that cannot start fails, visibly
            error = describe_error(exc)
            if isinstance(exc, DataError | InvalidRequest):  # the user's data: no traceback
                log.warning("study %s could not start: %s", record.id, error)
            else:
                log.exception("study %s could not start", record.id)
            await asyncio.to_thread(
                self.store.set_study_state, record.id, "failed", reason="error", error=error
            )
            return
        counts = await asyncio.to_thread(self.store.count_trials, record.id)
        n_retries = await asyncio.to_thread(self.store.count_retries, record.id)
        best = await asyncio.to_thread(self.store.best_trials, record.id, k=1)
        members = await asyncio.to_thread(population_members, self.store, record.id, spec)
        driver = StudyDriver(
            record.id, spec, bridge, store=self.store, runner=runner,
            n_done=sum(counts.values()) - n_retries, n_failed=counts["failed"], retries=retries,
            checkpoints=self.checkpoints, best_value=best[0].value if best else None,
            metrics=self.metrics, trial_checkpoints=self.trial_checkpoints, members=members,
        )  # fmt: skip
        self._drivers[record.id] = driver
        await driver.run()

    async def stop(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        """Stop a queued, running or paused study; its unfinished trials end as cancelled."""
        async with self._commands[study_id]:
            view = await asyncio.to_thread(self.get, study_id, tenant=tenant)
            state = view.record.state
            if state == "paused":
                await asyncio.to_thread(self._stop_paused, view.record)
            elif state in ACTIVE_STATES:
                await self._end_active(study_id, "user", "stopped")
            else:
                raise Conflict(f"study {study_id} is {state}; only queued, running or paused stop")
            return await asyncio.to_thread(self.get, study_id)

    async def _end_active(self, study_id: int, reason: str, state: str) -> None:
        """Ask the study's driver to end (`reason`); a study whose driver is not built yet
        is cancelled and moved to `state` here, if it is still active."""
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
                self.store.set_study_state, study_id, state, reason="user", expect=ACTIVE_STATES
            )

    def _stop_paused(self, record: StudyRecord) -> None:
        with storage_errors():
            self.store.set_study_state(record.id, "stopped", reason="user", expect=("paused",))
            cancel_unfinished(self.store, self.optuna_storage, record)
        if self.trial_checkpoints is not None:
            self.trial_checkpoints.delete_study(record.id)

    async def pause(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        """Stop a queued or running study's trials at their next epoch boundary, each with
        a checkpoint, and free their slots; `resume` continues them where they stopped.
        Raises Conflict unless the study is queued or running."""
        async with self._commands[study_id]:
            view = await asyncio.to_thread(self.get, study_id, tenant=tenant)
            if view.record.state not in ACTIVE_STATES:
                raise Conflict(
                    f"study {study_id} is {view.record.state}; only queued or running pause"
                )
            await self._end_active(study_id, PAUSE, "paused")
            return await asyncio.to_thread(self.get, study_id)

    async def resume(
        self, study_id: int, *, budget: dict[str, Any] | None = None, tenant: str | None = None,
        admit: Callable[[str], None] | None = None,
    ) -> StudyView:  # fmt: skip
        """Run a paused or finished study further, keeping its trials and its sampler's
        history; a paused study's trials continue from their checkpoints.

        `budget` replaces fields of the study's budget (e.g. a larger max_trials); the
        new spec is validated like a new one. Raises Conflict while the study is active,
        and to the loser of two commands at once. `admit(tenant)` may refuse a finished
        study (a tenant's cap of active studies; a paused one counts as active already).
        """
        async with self._commands[study_id]:
            view = await asyncio.to_thread(self.get, study_id, tenant=tenant)
            was = view.record.state
            if was in ACTIVE_STATES:
                raise Conflict(f"study {study_id} is {was}; only a finished study resumes")
            spec = self._resumed_spec(view.record, budget)
            if admit is not None and was != "paused":
                await asyncio.to_thread(admit, view.record.tenant)
            with storage_errors():
                n_retries = await asyncio.to_thread(self.store.count_retries, study_id)
            n_claimed = sum(view.counts[s] for s in FINISHED_TRIAL_STATES) - n_retries
            if spec.budget.max_trials <= n_claimed and view.record.state_reason == "max_trials":
                raise InvalidRequest(
                    f"budget.max_trials must exceed the {n_claimed} trials already run",
                    field="budget.max_trials",
                )
            await self._settled(study_id)
            record, unfinished = await asyncio.to_thread(self._reopen, study_id, spec, was)
            self._launch(record, unfinished)
            return await asyncio.to_thread(self.get, study_id)

    def _resumed_spec(self, record: StudyRecord, budget: dict[str, Any] | None) -> StudySpec:
        raw = {**record.spec, "budget": {**record.spec["budget"], **(budget or {})}}
        try:
            spec = StudySpec.model_validate(raw)
        except ValidationError as exc:
            raise InvalidRequest(f"the resumed spec is invalid: {exc.errors()[0]['msg']}") from exc
        self.limits.check(spec)
        return spec

    def _reopen(
        self, study_id: int, spec: StudySpec, was: str
    ) -> tuple[StudyRecord, list[TrialJob]]:
        """Queue the study again if it is still `was` (compare-and-set), and make both
        stores agree on its unfinished trials; put back as `was` if that fails."""
        with storage_errors():
            record = self.store.reopen_study(
                study_id, spec=spec.model_dump(mode="json"), expect=(was,)
            )
            try:
                return record, reconcile(self.store, self.optuna_storage, record)
            except Exception:
                self.store.set_study_state(study_id, was, reason="user", expect=("queued",))
                raise

    async def delete(self, study_id: int, *, tenant: str | None = None) -> None:
        """Delete a finished study: its rows, curves and events, and its Optuna study.

        Raises Conflict while it is queued or running (stop it first), NotFound if absent.
        """
        async with self._commands[study_id]:
            view = await asyncio.to_thread(self.get, study_id, tenant=tenant)
            if view.record.state in ACTIVE_STATES:
                raise Conflict(
                    f"study {study_id} is {view.record.state}; stop it before deleting it"
                )
            await self._settled(study_id)
            await asyncio.to_thread(self._delete, view.record)
        self._commands.pop(study_id, None)

    def _delete(self, record: StudyRecord) -> None:
        with storage_errors():
            # Our row first, and only while the study is not active: a resume that won
            # the race keeps the study whole; Optuna's rows follow.
            self.store.delete_study(record.id, expect=RESUMABLE_STUDY_STATES)
            with contextlib.suppress(KeyError):  # already gone from Optuna's
                optuna.delete_study(
                    study_name=record.optuna_study_name, storage=self.optuna_storage
                )
        if self.checkpoints is not None:
            self.checkpoints.delete_study(record.id)
        if self.trial_checkpoints is not None:
            self.trial_checkpoints.delete_study(record.id)

    def events(
        self, study_id: int, *, after: int, limit: int = 500, tenant: str | None = None
    ) -> tuple[list[EventRecord], bool]:
        """Events after `after`, and whether the study has ended (no more will come)."""
        with storage_errors():
            record = self.owned(study_id, tenant)
            found = self.store.events_after(study_id, after, limit=limit)
            return found, record.state not in ACTIVE_STATES

    def best_checkpoint(self, study_id: int, *, tenant: str | None = None) -> tuple[int, Path]:
        """The best complete trial's number and weights file; NotFound when there is none."""
        with storage_errors():
            self.owned(study_id, tenant)
            best = self.store.best_trials(study_id, k=1)
        path = (
            self.checkpoints.path(study_id, best[0].number) if best and self.checkpoints else None
        )
        if path is None or not path.is_file():
            raise NotFound(f"study {study_id} has no checkpoint of a best trial yet")
        return best[0].number, path

    def cluster(self, *, tenant: str | None = None) -> ScopedCluster:
        """Nodes, slots, usage and the queue, as `tenant` may see them (None: everything).

        Raises Unavailable when this service schedules no cluster (in-process runners)."""
        if self.scheduler is None:
            raise Unavailable("this service runs no cluster scheduler")
        return scope(self.scheduler.snapshot(), tenant)

    def studies_using_dataset(self, dataset_id: str) -> list[int]:
        """Queued or running studies whose spec names uploaded data set `dataset_id`."""
        active = self.store.studies_in_states(ACTIVE_STATES)
        return [r.id for r in active if r.spec.get("dataset", {}).get("id") == dataset_id]

    async def wait(self, study_id: int) -> None:
        """Wait until the study's driver, if any, has finished."""
        task = self._tasks.get(study_id)
        if task is not None:
            await asyncio.shield(task)

    def get(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        with storage_errors(), self.store.reading():
            return self._view(self.owned(study_id, tenant))

    def owned(self, study_id: int, tenant: str | None) -> StudyRecord:
        """The study, if it exists and belongs to `tenant` (any tenant when None).

        Another tenant's study is reported exactly like a missing one.
        """
        record = self.store.get_study(study_id)
        if tenant is not None and record.tenant != tenant:
            raise NotFound(f"study {study_id} does not exist")
        return record

    def _view(self, record: StudyRecord) -> StudyView:
        return self._views([record])[0]

    def _views(self, records: Sequence[StudyRecord]) -> list[StudyView]:
        """Views of a page of studies: trial counts with checkpoint bytes, and best trials,
        in one query each for the whole page."""
        ids = [r.id for r in records]
        counts, held = self.store.trial_totals_of(ids)
        best = self.store.best_of_studies({r.id: r.direction for r in records})
        views = []
        for record in records:
            queue = self.scheduler.queue_info(record.id) if self.scheduler is not None else None
            views.append(StudyView(record, counts[record.id], best.get(record.id), queue,
                                   held[record.id]))  # fmt: skip
        return views

    def list_studies(
        self, *, state: str | None, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Page:
        with storage_errors(), self.store.reading():
            page = self.store.list_studies(state=state, limit=limit, cursor=cursor, tenant=tenant)
            return Page(self._views(page.items), page.next_cursor)

    def list_trials(
        self, study_id: int, *, state: str | None, order: str, limit: int, cursor: str | None,
        tenant: str | None = None,
    ) -> Page:  # fmt: skip
        with storage_errors(), self.store.reading():
            record = self.owned(study_id, tenant)
            return self.store.list_trials(
                study_id, state=state, order=order, limit=limit, cursor=cursor,
                direction=record.direction,
            )  # fmt: skip

    def trial(self, study_id: int, number: int, *, tenant: str | None = None) -> TrialRecord:
        with storage_errors(), self.store.reading():
            self.owned(study_id, tenant)
            return self.store.get_trial(study_id, number)

    def best(self, study_id: int, *, k: int, tenant: str | None = None) -> list[TrialRecord]:
        """The k best complete trials; for several objectives, the Pareto front (up to k)."""
        with storage_errors(), self.store.reading():
            record = self.owned(study_id, tenant)
            spec = record.spec
            objectives = (
                spec["objective"] if isinstance(spec["objective"], list) else [spec["objective"]]
            )
            if len(objectives) == 1:
                return self.store.best_trials(study_id, k=k)
            directions = [o["direction"] for o in objectives]
            front = pareto_front(self.store.complete_values(study_id), directions)
            return self.store.trials_by_number(study_id, front[:k])

    def replay_spec(self, study_id: int, *, tenant: str | None = None) -> dict[str, Any]:
        """A spec that trains the best PBT member's schedule again (`pbt_replay`)."""
        with storage_errors(), self.store.reading():
            record = self.owned(study_id, tenant)
            spec = StudySpec.model_validate(record.spec)
            if spec.population is None:
                raise Conflict(f"study {study_id} is not a PBT study: it has no schedule")
            best = self.store.best_trials(study_id, k=1)
            if not best:
                raise Conflict(f"study {study_id} has no complete member yet")
            members = self.store.trials_by_number(study_id, range(spec.population.size))
        return replay_spec(spec, {m.number: m for m in members}, best[0].number)


def _shape(spec: StudySpec) -> Shape:
    return Shape.of(spec.resources.cpus_per_trial, spec.resources.gpus_per_trial)


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the store's errors into the service's, named for the caller's next move."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFound(str(exc)) from exc
    except InvalidCursorError as exc:
        raise InvalidRequest(str(exc)) from exc
    except ConflictError as exc:
        raise Conflict(str(exc)) from exc
    except StorageError as exc:
        raise Unavailable(str(exc)) from exc


def population_members(store: Store, study_id: int, spec: StudySpec) -> list[TrialRecord]:
    """A PBT study's members so far, with their curves: what its population is rebuilt
    from when the study resumes (none for other studies, or before the first trial)."""
    if spec.population is None:
        return []
    page = store.list_trials(study_id, limit=spec.population.size)
    return [store.get_trial(study_id, t.number) for t in page.items]
