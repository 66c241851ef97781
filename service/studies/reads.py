"""What the API reads of studies: views, pages of studies and trials, the best trials.

Every read is tenant-checked (`owned`: another tenant's study reads as missing) and
runs in one session of the store (`Store.reading`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service.cluster.cluster_view import QueueInfo, ScopedCluster, scope
from service.cluster.scheduler import SlotScheduler
from service.errors import Conflict, NotFound, Unavailable
from service.records import Study, load_study, stored_priority
from service.run.checkpoints import CheckpointStore
from service.studies.pareto import pareto_front
from service.studies.pbt_replay import replay_spec
from service.studies.store_errors import storage_errors
from storage.records import EventRecord, Page, StudyRecord, TrialRecord
from storage.repository import Store
from workers.spec import UploadedDataset

ACTIVE_STATES = ("queued", "running")


@dataclass(frozen=True)
class StudyView:
    """A study as the API shows it: its record with trial counts and best trial."""

    record: StudyRecord
    counts: dict[str, int]
    best: TrialRecord | None
    queue: QueueInfo | None = None
    checkpoint_bytes: int = 0
    priority: int = 0


class StudyReads:
    """Reads of the store, each in one session, in the service's errors."""

    def __init__(
        self,
        store: Store,
        *,
        scheduler: SlotScheduler | None = None,
        checkpoints: CheckpointStore | None = None,
    ):
        self.store = store
        self.scheduler = scheduler
        self.checkpoints = checkpoints

    def get(self, study_id: int, *, tenant: str | None = None) -> StudyView:
        with storage_errors(), self.store.reading():
            return self._views([self.owned(study_id, tenant)])[0]

    def owned(self, study_id: int, tenant: str | None) -> StudyRecord:
        """The study, if it exists and belongs to `tenant` (any tenant when None).

        Another tenant's study is reported exactly like a missing one.
        """
        record = self.store.get_study(study_id)
        if tenant is not None and record.tenant != tenant:
            raise NotFound(f"study {study_id} does not exist")
        return record

    def study(self, study_id: int, tenant: str | None) -> Study:
        """The owned study with its typed spec (see `readable`)."""
        return readable(self.owned(study_id, tenant))

    def _views(self, records: Sequence[StudyRecord]) -> list[StudyView]:
        """Views of a page of studies: trial counts with checkpoint bytes, and best trials,
        in one query each for the whole page."""
        ids = [r.id for r in records]
        counts, held = self.store.trial_totals_of(ids)
        best = self.store.best_of_studies({r.id: r.direction for r in records})
        views = []
        for record in records:
            queue = self.scheduler.queue_info(record.id) if self.scheduler is not None else None
            views.append(
                StudyView(
                    record,
                    counts[record.id],
                    best.get(record.id),
                    queue,
                    held[record.id],
                    stored_priority(record),
                )
            )
        return views

    def list_studies(
        self, *, state: str | None, limit: int, cursor: str | None, tenant: str | None = None
    ) -> Page:
        with storage_errors(), self.store.reading():
            page = self.store.list_studies(state=state, limit=limit, cursor=cursor, tenant=tenant)
            return Page(self._views(page.items), page.next_cursor)

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
        with storage_errors(), self.store.reading():
            record = self.owned(study_id, tenant)
            return self.store.list_trials(
                study_id,
                state=state,
                order=order,
                limit=limit,
                cursor=cursor,
                direction=record.direction,
            )

    def trial(self, study_id: int, number: int, *, tenant: str | None = None) -> TrialRecord:
        with storage_errors(), self.store.reading():
            self.owned(study_id, tenant)
            return self.store.get_trial(study_id, number)

    def best(self, study_id: int, *, k: int, tenant: str | None = None) -> list[TrialRecord]:
        """The k best complete trials; for several objectives, the Pareto front (up to k)."""
        with storage_errors(), self.store.reading():
            directions = self.study(study_id, tenant).spec.directions
            if len(directions) == 1:
                return self.store.best_trials(study_id, k=k)
            front = pareto_front(self.store.complete_values(study_id), list(directions))
            return self.store.trials_by_number(study_id, front[:k])

    def replay_spec(self, study_id: int, *, tenant: str | None = None) -> dict[str, Any]:
        """A spec that trains the best PBT member's schedule again (`pbt_replay`)."""
        with storage_errors(), self.store.reading():
            spec = self.study(study_id, tenant).spec
            if spec.population is None:
                raise Conflict(f"study {study_id} is not a PBT study: it has no schedule")
            best = self.store.best_trials(study_id, k=1)
            if not best:
                raise Conflict(f"study {study_id} has no complete member yet")
            members = self.store.trials_by_number(study_id, range(spec.population.size))
        return replay_spec(spec, {m.number: m for m in members}, best[0].number)

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
        active = [readable(r) for r in self.store.studies_in_states(ACTIVE_STATES)]
        return [s.id for s in active if _uses_upload(s, dataset_id)]


def readable(record: StudyRecord) -> Study:
    """The study with its typed spec, for a read; Conflict for a spec that today's rules
    refuse (such a study failed when the service started, but its rows are kept)."""
    try:
        return load_study(record)
    except ValidationError as exc:
        raise Conflict(
            f"study {record.id}'s stored spec is refused by this version: {exc.errors()[0]['msg']}"
        ) from exc


def _uses_upload(study: Study, dataset_id: str) -> bool:
    dataset = study.spec.dataset
    return isinstance(dataset, UploadedDataset) and dataset.id == dataset_id
