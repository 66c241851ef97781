"""The commands that change a study: submit, stop, pause, resume, delete.

One command at a time per study in this process (a lock per study); the state changes
themselves are compare-and-sets in SQL (`expect=`), so two processes cannot both win
either. Every state change goes through `Ledger.move_study`, which tells listeners.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import optuna
from pydantic import ValidationError

from service.data.datasets import DataRoots, check_data_source
from service.errors import Conflict, InvalidRequest
from service.limits import SpecLimits, SubmissionRate
from service.listeners.contract import DELETED
from service.records import Study, load_study
from service.run.checkpoints import CheckpointStore
from service.run.driver import PAUSE
from service.run.jobs import TrialJob
from service.run.recovery import end_unfinished, reconcile
from service.spec import StudySpec
from service.studies.drivers import DriverPool
from service.studies.reads import ACTIVE_STATES, StudyReads, StudyView
from service.studies.store_errors import storage_errors
from storage.records import FINISHED_TRIAL_STATES
from workers.trial_checkpoints import TrialCheckpoints

RESUMABLE_STUDY_STATES = ("paused", "completed", "stopped", "failed")
DEFAULT_TENANT = "default"


class StudyCommands:
    """Commands on studies; each answers with the study as it reads afterwards."""

    def __init__(
        self,
        drivers: DriverPool,
        reads: StudyReads,
        *,
        limits: SpecLimits | None = None,
        rate: SubmissionRate | None = None,
        data_roots: DataRoots | None = None,
        checkpoints: CheckpointStore | None = None,
        trial_checkpoints: TrialCheckpoints | None = None,
    ):
        self.drivers = drivers
        self.reads = reads
        self.ledger = drivers.ledger
        self.store = drivers.ledger.store
        self.optuna_storage = drivers.optuna_storage
        self.limits = limits or SpecLimits()
        self.rate = rate
        self.data_roots = data_roots
        self.checkpoints = checkpoints
        self.trial_checkpoints = trial_checkpoints
        self._locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def submit(self, spec: StudySpec, *, tenant: str = DEFAULT_TENANT) -> StudyView:
        """Store and start a study; InvalidRequest (limits, data source, a trial that
        could never be placed), RateLimited."""
        self.limits.check(spec)
        self.drivers.check_fits(spec, tenant)
        if self.data_roots is not None:  # reads a data file's header: off the loop
            await asyncio.to_thread(check_data_source, spec, self.data_roots, tenant=tenant)
        if self.rate is not None:
            self.rate.admit(tenant)
        study = await asyncio.to_thread(self._create, spec, tenant)
        self.drivers.launch(study)
        return await asyncio.to_thread(self.reads.get, study.id)

    def _create(self, spec: StudySpec, tenant: str) -> Study:
        with storage_errors():
            record = self.store.create_study(
                name=spec.name,
                spec=spec.model_dump(mode="json"),
                direction=spec.primary.direction,
                warnings=spec.warnings(),
                tenant=tenant,
            )
            try:
                optuna.create_study(
                    storage=self.optuna_storage,
                    study_name=record.optuna_study_name,
                    directions=spec.directions,
                )
            except Exception:
                self.store.delete_study(record.id)
                raise
            return load_study(record, spec=spec)

    async def stop(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        """Stop a queued, running or paused study; its unfinished trials end as cancelled."""
        async with self._locks[study_id]:
            view = await asyncio.to_thread(self.reads.get, study_id, tenant=tenant)
            state = view.record.state
            if state == "paused":
                await asyncio.to_thread(self._stop_paused, load_study(view.record))
            elif state in ACTIVE_STATES:
                await self.drivers.end(study_id, "user", "stopped")
            else:
                raise Conflict(f"study {study_id} is {state}; only queued, running or paused stop")
            return await asyncio.to_thread(self.reads.get, study_id)

    def _stop_paused(self, study: Study) -> None:
        """End a paused study's waiting trials as cancelled, in both stores."""
        with storage_errors():
            self.ledger.move_study(study.id, "stopped", reason="user", expect=("paused",))
            end_unfinished(self.ledger, self.optuna_storage, study)
        if self.trial_checkpoints is not None:
            self.trial_checkpoints.delete_study(study.id)

    async def pause(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        """Stop a queued or running study's trials at their next epoch boundary, each with
        a checkpoint, and free their slots; `resume` continues them where they stopped.
        Raises Conflict unless the study is queued or running."""
        async with self._locks[study_id]:
            view = await asyncio.to_thread(self.reads.get, study_id, tenant=tenant)
            if view.record.state not in ACTIVE_STATES:
                raise Conflict(
                    f"study {study_id} is {view.record.state}; only queued or running pause"
                )
            await self.drivers.end(study_id, PAUSE, "paused")
            return await asyncio.to_thread(self.reads.get, study_id)

    async def resume(
        self,
        study_id: int,
        *,
        budget: dict[str, Any] | None = None,
        tenant: str | None = None,
        admit: Callable[[str], None] | None = None,
    ) -> StudyView:
        """Run a paused or finished study further, keeping its trials and its sampler's
        history; a paused study's trials continue from their checkpoints.

        `budget` replaces fields of the study's budget (e.g. a larger max_trials); the
        new spec is validated like a new one. Raises Conflict while the study is active,
        and to the loser of two commands at once. `admit(tenant)` may refuse a finished
        study (a tenant's cap of active studies; a paused one counts as active already).
        """
        async with self._locks[study_id]:
            view = await asyncio.to_thread(self.reads.get, study_id, tenant=tenant)
            was = view.record.state
            if was in ACTIVE_STATES:
                raise Conflict(f"study {study_id} is {was}; only a finished study resumes")
            spec = self._resumed_spec(view, budget)
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
            await self.drivers.settled(study_id)
            study, unfinished = await asyncio.to_thread(self._reopen, study_id, spec, was)
            self.drivers.launch(study, unfinished)
            return await asyncio.to_thread(self.reads.get, study_id)

    def _resumed_spec(self, view: StudyView, budget: dict[str, Any] | None) -> StudySpec:
        """The stored spec with `budget`'s fields replaced, validated as a new spec is."""
        try:
            stored = load_study(view.record).spec
            merged = {**stored.budget.model_dump(mode="json"), **(budget or {})}
            spec = StudySpec.model_validate({**stored.model_dump(mode="json"), "budget": merged})
        except ValidationError as exc:
            raise InvalidRequest(f"the resumed spec is invalid: {exc.errors()[0]['msg']}") from exc
        self.limits.check(spec)
        return spec

    def _reopen(self, study_id: int, spec: StudySpec, was: str) -> tuple[Study, list[TrialJob]]:
        """Queue the study again if it is still `was` (compare-and-set), and make both
        stores agree on its unfinished trials; put back as `was` if that fails."""
        with storage_errors():
            record = self.ledger.move_study(
                study_id, "queued", spec=spec.model_dump(mode="json"), expect=(was,)
            )
            assert record is not None
            study = load_study(record, spec=spec)
            try:
                return study, reconcile(self.ledger, self.optuna_storage, study)
            except Exception:
                self.ledger.move_study(study_id, was, reason="user", expect=("queued",))
                raise

    async def delete(self, study_id: int, *, tenant: str | None = None) -> None:
        """Delete a finished study: its rows, curves and events, and its Optuna study.

        Raises Conflict while it is queued or running (stop it first), NotFound if absent.
        """
        async with self._locks[study_id]:
            view = await asyncio.to_thread(self.reads.get, study_id, tenant=tenant)
            if view.record.state in ACTIVE_STATES:
                raise Conflict(
                    f"study {study_id} is {view.record.state}; stop it before deleting it"
                )
            await self.drivers.settled(study_id)
            await asyncio.to_thread(self._delete, view)
        self._locks.pop(study_id, None)

    def _delete(self, view: StudyView) -> None:
        record = view.record
        with storage_errors():
            # Our row first, and only while the study is not active: a resume that won
            # the race keeps the study whole; Optuna's rows follow.
            self.ledger.move_study(record.id, DELETED, expect=RESUMABLE_STUDY_STATES)
            with contextlib.suppress(KeyError):  # already gone from Optuna's
                optuna.delete_study(
                    study_name=record.optuna_study_name, storage=self.optuna_storage
                )
        if self.checkpoints is not None:
            self.checkpoints.delete_study(record.id)
        if self.trial_checkpoints is not None:
            self.trial_checkpoints.delete_study(record.id)
