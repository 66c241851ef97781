"""The study change log: appended inside the same transaction as the change it reports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, and_, or_, select
from sqlalchemy.orm import Session

from storage.models import EventRow, StudyRow
from storage.records import EventRecord
from storage.session import session_scope

# Studies per query of a poll: SQLite parses `a OR b OR ...` as a tree as deep as its terms
# and refuses one deeper than 1000.
STUDIES_PER_QUERY = 200


def append(session: Session, study_id: int, kind: str, data: dict[str, Any]) -> None:
    session.add(EventRow(study_id=study_id, kind=kind, data=data, created_at=datetime.now(UTC)))


def after(session: Session, study_id: int, after_id: int, limit: int) -> list[EventRecord]:
    query = (
        select(EventRow)
        .where(EventRow.study_id == study_id, EventRow.id > after_id)
        .order_by(EventRow.id)
        .limit(limit)
    )
    return [_record(row) for row in session.scalars(query)]


def _record(row: EventRow) -> EventRecord:
    return EventRecord(id=row.id, kind=row.kind, data=row.data, created_at=row.created_at)


@dataclass(frozen=True)
class WatchedStudy:
    state: str
    tenant: str


@dataclass(frozen=True)
class FeedBatch:
    """One poll: the watched studies that still exist, then their events after the cursors."""

    studies: dict[int, WatchedStudy]
    events: list[tuple[int, EventRecord]]  # (study id, event), in id order per study
    complete: bool  # False when a limit cut the read short: more events are waiting


class EventFeed:
    """Every watched study's new events in one read, for the one poller of a process.

    Cursors are per study: within a study ids grow in commit order, across studies (on
    PostgreSQL) they need not, so one global "after id" could skip a late commit. The
    studies' states are read before their events: an event committed with a state change
    is in the same read as that state.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def poll(self, cursors: Mapping[int, int], *, limit: int) -> FeedBatch:
        with session_scope(self._engine) as session:
            query = select(StudyRow.id, StudyRow.state, StudyRow.tenant).where(
                StudyRow.id.in_(list(cursors))
            )
            studies = {
                id_: WatchedStudy(state, tenant) for id_, state, tenant in session.execute(query)
            }
            found: list[tuple[int, EventRecord]] = []
            complete = True
            watched = list(cursors.items())
            for start in range(0, len(watched), STUDIES_PER_QUERY):
                chunk = dict(watched[start : start + STUDIES_PER_QUERY])
                rows = list(session.scalars(_newer(chunk, limit)))
                complete = complete and len(rows) < limit
                found.extend((row.study_id, _record(row)) for row in rows)
            return FeedBatch(studies, found, complete)


def _newer(cursors: Mapping[int, int], limit: int) -> Select[EventRow]:
    after = [
        and_(EventRow.study_id == study, EventRow.id > last) for study, last in cursors.items()
    ]
    return select(EventRow).where(or_(*after)).order_by(EventRow.id).limit(limit)
