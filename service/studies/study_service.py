"""The study service: the one handle the API and the runtime hold on studies.

It composes the three parts that do the work: `commands` (submit, stop, pause, resume,
delete: compare-and-set state changes), `drivers` (one driver per running study, and
the start-up resume) and `reads` (views, pages, best trials), over one `Ledger`, the
store with whoever listens to it (`service.listeners`). It works the same in-process
(tests, `hpo demo`) and behind the HTTP API.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import optuna

from service.cluster.cluster_view import ScopedCluster
from service.cluster.scheduler import SlotScheduler
from service.data.datasets import DataRoots
from service.limits import SpecLimits, SubmissionRate
from service.listeners.contract import StudyListener
from service.listeners.fanout import Listeners
from service.metrics import ServiceMetrics
from service.run.checkpoints import CheckpointStore
from service.run.ledger import Ledger
from service.spec import StudySpec
from service.studies.commands import DEFAULT_TENANT, RESUMABLE_STUDY_STATES, StudyCommands
from service.studies.drivers import DriverPool, RunnerFactory, population_members
from service.studies.reads import ACTIVE_STATES, StudyReads, StudyView
from service.studies.store_errors import storage_errors
from storage.records import FINISHED_TRIAL_STATES, EventRecord, Page, StudyRecord, TrialRecord
from storage.repository import Store
from workers.trial_checkpoints import TrialCheckpoints

__all__ = [
    "ACTIVE_STATES",
    "FINISHED_TRIAL_STATES",
    "DEFAULT_TENANT",
    "RESUMABLE_STUDY_STATES",
    "RunnerFactory",
    "StudyService",
    "StudyView",
    "population_members",
    "storage_errors",
]


class StudyService:
    """Submits, reads and stops studies; owns one driver per running study.

    `listeners` are told of every trial's end and every study's state change, after
    the commit (see `service.listeners.contract.StudyListener`).
    """

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
        listeners: Iterable[StudyListener] = (),
    ):
        self.store = store
        self.optuna_storage = optuna_storage
        self.metrics = metrics
        self.scheduler = scheduler
        self.listeners = Listeners(listeners)
        self.ledger = Ledger(store, self.listeners)
        self.reads = StudyReads(store, scheduler=scheduler, checkpoints=checkpoints)
        self.drivers = DriverPool(
            self.ledger,
            optuna_storage,
            runners,
            scheduler=scheduler,
            checkpoints=checkpoints,
            metrics=metrics,
            trial_checkpoints=trial_checkpoints,
        )
        self.commands = StudyCommands(
            self.drivers,
            self.reads,
            limits=limits,
            rate=rate,
            data_roots=data_roots,
            checkpoints=checkpoints,
            trial_checkpoints=trial_checkpoints,
        )

    # The drivers: what the runtime starts and closes.

    async def start(self) -> None:
        """Start queued studies; resume those a previous process left running."""
        self.listeners.bind()
        await self.drivers.start()

    async def close(self) -> None:
        """End every study's work within an epoch, for the next start to resume; then let
        the listeners take what they were told."""
        await self.drivers.close()
        await self.listeners.close()

    async def wait(self, study_id: int) -> None:
        """Wait until the study's driver, if any, has finished."""
        await self.drivers.wait(study_id)

    # Commands.

    async def submit(self, spec: StudySpec, *, tenant: str = DEFAULT_TENANT) -> StudyView:
        """Store and start a study (see `StudyCommands.submit`)."""
        self.listeners.bind()
        return await self.commands.submit(spec, tenant=tenant)

    async def stop(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        """Stop a queued, running or paused study; its unfinished trials end as cancelled."""
        self.listeners.bind()
        return await self.commands.stop(study_id, tenant=tenant)

    async def pause(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        """Stop a study's trials at their next epoch boundary, each with a checkpoint."""
        self.listeners.bind()
        return await self.commands.pause(study_id, tenant=tenant)

    async def resume(
        self,
        study_id: int,
        *,
        budget: dict[str, Any] | None = None,
        tenant: str | None = None,
        admit: Callable[[str], None] | None = None,
    ) -> StudyView:
        """Run a paused or finished study further (see `StudyCommands.resume`)."""
        self.listeners.bind()
        return await self.commands.resume(study_id, budget=budget, tenant=tenant, admit=admit)

    async def delete(self, study_id: int, *, tenant: str | None = None) -> None:
        """Delete a finished study: its rows, curves and events, and its Optuna study."""
        self.listeners.bind()
        await self.commands.delete(study_id, tenant=tenant)

    # Reads.

    def get(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        return self.reads.get(study_id, tenant=tenant)

    def owned(self, study_id: int, tenant: str | None) -> StudyRecord:
        """The study, if it exists and belongs to `tenant`; NotFound otherwise."""
        return self.reads.owned(study_id, tenant)

    def list_studies(
        self, *, state: str | None, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Page:
        return self.reads.list_studies(state=state, limit=limit, cursor=cursor, tenant=tenant)

    def list_trials(
        self,
        study_id: int,
        *,
        state: str | None,
        order: str,
        limit: int,
        cursor: str | None,
        tenant: str | None = None,
    ) -> Page:
        return self.reads.list_trials(
            study_id, state=state, order=order, limit=limit, cursor=cursor, tenant=tenant
        )

    def trial(self, study_id: int, number: int, *, tenant: str | None = None) -> TrialRecord:
        return self.reads.trial(study_id, number, tenant=tenant)

    def best(self, study_id: int, *, k: int, tenant: str | None = None) -> list[TrialRecord]:
        """The k best complete trials; for several objectives, the Pareto front (up to k)."""
        return self.reads.best(study_id, k=k, tenant=tenant)

    def replay_spec(self, study_id: int, *, tenant: str | None = None) -> dict[str, Any]:
        """A spec that trains the best PBT member's schedule again (`pbt_replay`)."""
        return self.reads.replay_spec(study_id, tenant=tenant)

    def events(
        self, study_id: int, *, after: int, limit: int = 500, tenant: str | None = None
    ) -> tuple[list[EventRecord], bool]:
        """Events after `after`, and whether the study has ended (no more will come)."""
        return self.reads.events(study_id, after=after, limit=limit, tenant=tenant)

    def best_checkpoint(self, study_id: int, *, tenant: str | None = None) -> tuple[int, Path]:
        """The best complete trial's number and weights file; NotFound when there is none."""
        return self.reads.best_checkpoint(study_id, tenant=tenant)

    def cluster(self, *, tenant: str | None = None) -> ScopedCluster:
        """Nodes, slots, usage and the queue, as `tenant` may see them (None: everything)."""
        return self.reads.cluster(tenant=tenant)

    def studies_using_dataset(self, dataset_id: str) -> list[int]:
        """Queued or running studies whose spec names uploaded data set `dataset_id`."""
        return self.reads.studies_using_dataset(dataset_id)
