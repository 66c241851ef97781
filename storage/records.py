"""Plain values the store hands out: ORM rows never leave `storage`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STUDY_STATES = ("queued", "running", "paused", "completed", "stopped", "failed")
TRIAL_STATES = ("waiting", "running", "complete", "pruned", "failed")
FINISHED_TRIAL_STATES = ("complete", "pruned", "failed")


@dataclass(frozen=True)
class StudyRecord:
    id: int
    name: str
    state: str
    state_reason: str | None
    spec: dict[str, Any]
    optuna_study_name: str
    direction: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    warnings: list[str] = field(default_factory=list)
    tenant: str = "default"


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    seconds: float
    metrics: dict[str, float | None]


@dataclass(frozen=True)
class TrialRecord:
    study_id: int
    number: int
    state: str
    params: dict[str, Any]
    value: float | None
    values: list[float] | None
    best_epoch: int | None
    epochs_run: int
    stop_reason: str | None
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    node: str | None
    retry_of: int | None
    error: str | None
    test_metrics: dict[str, float] | None = None
    epochs: list[EpochRecord] = field(default_factory=list)
    checkpoint_epoch: int | None = None
    checkpoint_bytes: int | None = None
    attempts: list[AttemptRecord] = field(default_factory=list)
    device: str | None = None
    """What the trial (its latest run) trained on: a GPU's name, or `cpu`."""
    lineage: list[dict[str, Any]] = field(default_factory=list)
    """A PBT member's copies of other members, in epoch order: `epoch` (the copy trains
    from epoch + 1), `copied` (the donor's number), `copied_epoch`, `copied_value`,
    `loaded_value` (the copy's value before it trained) and `params` (the searched
    params it trains with from then on)."""

    @property
    def current_params(self) -> dict[str, Any]:
        """The searched params the trial trains with now: its last copy's, else its own."""
        return dict(self.lineage[-1]["params"]) if self.lineage else dict(self.params)


@dataclass(frozen=True)
class AttemptRecord:
    """One run of a trial on one slot: a trial that was resumed has several."""

    node: str | None
    started_at: datetime
    from_epoch: int
    finished_at: datetime | None = None
    epochs_trained: int | None = None
    end: str | None = None
    device: str | None = None


@dataclass(frozen=True)
class Page:
    """One page of a keyset-paginated list; `next_cursor` is opaque to callers."""

    items: list[Any]
    next_cursor: str | None


@dataclass(frozen=True)
class EventRecord:
    """One entry of a study's change log. One writer records a study's changes in order, so
    within a study ids grow in commit order and a reader resuming after an id misses nothing."""

    id: int
    kind: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class DatasetRecord:
    id: str
    tenant: str
    filename: str
    format: str
    target: str
    task: str
    size_bytes: int
    n_rows: int
    n_features: int
    created_at: datetime
