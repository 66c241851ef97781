"""The plain values the service hands out. `storage` makes them; `api` reads them from
here, so that it reaches the rest of the system through `service` alone.

A study's spec is stored as the JSON its typed `StudySpec` dumped to; `Study` holds the
record with that spec parsed, and `load_study` is the one place a stored spec is parsed,
so every reader of a study works on the typed copy, never on the stored dict.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.spec import StudySpec
from storage.records import DatasetRecord, EventRecord, Page, StudyRecord, TrialRecord

__all__ = [
    "DatasetRecord",
    "EventRecord",
    "Page",
    "Study",
    "StudyRecord",
    "TrialRecord",
    "load_study",
    "stored_priority",
]


@dataclass(frozen=True)
class Study:
    """A stored study and its typed spec (`record.spec` is the same spec as stored JSON)."""

    record: StudyRecord
    spec: StudySpec

    @property
    def id(self) -> int:
        return self.record.id


def load_study(record: StudyRecord, *, spec: StudySpec | None = None) -> Study:
    """The study with its spec parsed from the record, or `spec` where the caller holds the
    very spec it just stored (a submission or a resume: parsed once, at the edge).

    Raises pydantic's ValidationError for a stored spec that today's rules refuse.
    """
    return Study(record, spec if spec is not None else StudySpec.model_validate(record.spec))


def stored_priority(record: StudyRecord) -> int:
    """A study's priority from its stored spec without parsing the whole spec: a page of
    studies shows one for each, and the stored JSON was dumped from a valid `StudySpec`."""
    return int(record.spec.get("priority", 0))
