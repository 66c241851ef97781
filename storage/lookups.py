"""Row lookups inside an open session that raise the not-found errors callers act on."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from storage.errors import StudyNotFound, TrialNotFound
from storage.models import StudyRow, TrialRow


def study_row(session: Session, study_id: int) -> StudyRow:
    row = session.get(StudyRow, study_id)
    if row is None:
        raise StudyNotFound(study_id)
    return row


def study_direction(session: Session, study_id: int) -> str:
    """The study's direction, read without loading its spec; doubles as an existence check."""
    direction = session.scalar(select(StudyRow.direction).where(StudyRow.id == study_id))
    if direction is None:
        raise StudyNotFound(study_id)
    return direction


def require_study(session: Session, study_id: int) -> None:
    study_direction(session, study_id)


def trial_row(session: Session, study_id: int, number: int) -> TrialRow:
    query = select(TrialRow).where(TrialRow.study_id == study_id, TrialRow.number == number)
    row = session.scalar(query)
    if row is None:
        raise TrialNotFound(study_id, number)
    return row
