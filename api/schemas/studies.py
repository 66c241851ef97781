"""A study as the API returns it, alone and in pages, and the body that resumes one."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.trials import TrialOut
from service.studies.study_service import StudyView

StudyState = Literal["queued", "running", "paused", "completed", "stopped", "failed"]


class BudgetPatch(BaseModel):
    """Budget fields to change when resuming; omitted ones keep their values."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_trials: int | None = Field(default=None, ge=1, le=100_000)
    max_epochs: int | None = Field(default=None, ge=1, le=10_000)
    parallelism: int | None = Field(default=None, ge=1, le=1_024)
    timeout_s: float | None = Field(default=None, gt=0)
    target: float | None = None
    max_failed_trials: int | None = Field(default=None, ge=1)


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget: BudgetPatch | None = None


class StudyOut(BaseModel):
    id: int
    name: str
    state: StudyState
    state_reason: str | None
    spec: dict[str, Any]
    counts: dict[str, int]
    best: TrialOut | None
    optuna_study_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    warnings: list[str] = Field(description="What the service changed or degraded, and why.")
    priority: int = Field(description="Among its tenant's studies, higher gets slots first.")
    queue_position: int | None = Field(
        description="Its place among the studies waiting for a slot (1 is next); null when it "
        "waits for none."
    )
    waiting_since: datetime | None = Field(description="When its current wait for a slot began.")
    slots_held: int = Field(description="Slots training its trials now (up to parallelism).")
    checkpoint_bytes: int = Field(
        description="What its unfinished trials' checkpoints take in the checkpoint store."
    )

    @classmethod
    def of(cls, view: StudyView) -> StudyOut:
        r, q = view.record, view.queue
        return cls(
            id=r.id,
            name=r.name,
            state=cast(StudyState, r.state),
            state_reason=r.state_reason,
            spec=r.spec,
            counts=view.counts,
            best=TrialOut.of(view.best) if view.best else None,
            optuna_study_name=r.optuna_study_name,
            created_at=r.created_at,
            started_at=r.started_at,
            finished_at=r.finished_at,
            error=r.error,
            warnings=r.warnings,
            priority=view.priority,
            queue_position=q.position if q else None,
            waiting_since=q.waiting_since if q else None,
            slots_held=q.slots_held if q else 0,
            checkpoint_bytes=view.checkpoint_bytes,
        )


class StudyPage(BaseModel):
    items: list[StudyOut]
    next_cursor: str | None
