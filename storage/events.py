"""The study change log: appended inside the same transaction as the change it reports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.models import EventRow
from storage.records import EventRecord


def append(session: Session, study_id: int, kind: str, data: dict[str, Any]) -> None:
    session.add(EventRow(study_id=study_id, kind=kind, data=data, created_at=datetime.now(UTC)))


def after(session: Session, study_id: int, after_id: int, limit: int) -> list[EventRecord]:
    query = (
        select(EventRow)
        .where(EventRow.study_id == study_id, EventRow.id > after_id)
        .order_by(EventRow.id)
        .limit(limit)
    )
    return [
        EventRecord(id=row.id, kind=row.kind, data=row.data, created_at=row.created_at)
        for row in session.scalars(query)
    ]
