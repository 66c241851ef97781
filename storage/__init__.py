"""Persistence for studies, trials and learning curves (SQLAlchemy; SQLite or PostgreSQL)."""

from __future__ import annotations

from storage.engine import create_engine_for
from storage.errors import (
    ConflictError,
    InvalidCursorError,
    NotFoundError,
    StorageError,
    StorageUnavailable,
    StudyNotFound,
    TrialNotFound,
)
from storage.migrate import upgrade_schema
from storage.records import (
    FINISHED_TRIAL_STATES,
    STUDY_STATES,
    TRIAL_STATES,
    EpochRecord,
    Page,
    StudyRecord,
    TrialRecord,
)
from storage.repository import Store

__all__ = [
    "FINISHED_TRIAL_STATES",
    "STUDY_STATES",
    "TRIAL_STATES",
    "ConflictError",
    "EpochRecord",
    "InvalidCursorError",
    "NotFoundError",
    "Page",
    "StorageError",
    "StorageUnavailable",
    "Store",
    "StudyNotFound",
    "StudyRecord",
    "TrialNotFound",
    "TrialRecord",
    "create_engine_for",
    "upgrade_schema",
]
