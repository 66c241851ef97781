"""The plain values the service hands out. `storage` makes them; `api` reads them from
here, so that it reaches the rest of the system through `service` alone."""

from __future__ import annotations

from storage.records import DatasetRecord, EventRecord, Page, StudyRecord, TrialRecord

__all__ = ["DatasetRecord", "EventRecord", "Page", "StudyRecord", "TrialRecord"]
