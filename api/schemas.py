"""Response schemas: what the API promises to return, per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from service.studies import StudyView
from storage.records import TrialRecord

StudyState = Literal["queued", "running", "completed", "stopped", "failed"]
TrialState = Literal["waiting", "running", "complete", "pruned", "failed"]


class TrialOut(BaseModel):
    number: int
    state: TrialState
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
    test_metrics: dict[str, float] | None = Field(
        description="Test metrics of the trial's best weights; selection uses validation only."
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialOut:
        fields = {name: getattr(trial, name) for name in cls.model_fields}
        return cls(**fields)


class TrialDetailOut(TrialOut):
    epochs: list[dict[str, float | None]] = Field(
        description="Per epoch: epoch, train_loss, val_loss, val metrics, lr, seconds; "
        "a NaN or infinite value (a diverged trial) is null."
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialDetailOut:
        base = TrialOut.of(trial).model_dump()
        epochs: list[dict[str, float | None]] = [
            {"epoch": e.epoch, **e.metrics, "seconds": e.seconds} for e in trial.epochs
        ]
        return cls(**base, epochs=epochs)


class BudgetPatch(BaseModel):
    """Budget fields to change when resuming; omitted ones keep their values."""

    model_config = ConfigDict(extra="forbid")

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

    @classmethod
    def of(cls, view: StudyView) -> StudyOut:
        r = view.record
        return cls(
            id=r.id, name=r.name, state=cast(StudyState, r.state),
            state_reason=r.state_reason, spec=r.spec,
            counts=view.counts, best=TrialOut.of(view.best) if view.best else None,
            optuna_study_name=r.optuna_study_name, created_at=r.created_at,
            started_at=r.started_at, finished_at=r.finished_at, error=r.error,
            warnings=r.warnings,
        )  # fmt: skip


class StudyPage(BaseModel):
    items: list[StudyOut]
    next_cursor: str | None


class TrialPage(BaseModel):
    items: list[TrialOut]
    next_cursor: str | None


class BestOut(BaseModel):
    items: list[TrialOut]


class HistoryPoint(BaseModel):
    number: int = Field(description="First trial number in the bucket.")
    last: int = Field(description="Last trial number in the bucket.")
    lo: float
    hi: float
    best: float = Field(description="Best value of every trial up to `last`.")
    count: int


class HistoryOut(BaseModel):
    """Complete trials' primary value by number, bucketed to at most `points` buckets."""

    direction: Literal["minimize", "maximize"]
    n_complete: int
    bucket_size: int
    items: list[HistoryPoint]


class ImportanceItem(BaseModel):
    param: str
    importance: float


class ImportanceOut(BaseModel):
    evaluator: str = Field(description="Optuna's importance evaluator used.")
    n_trials: int = Field(description="Complete trials the importances were computed from.")
    items: list[ImportanceItem]


class CurveOut(BaseModel):
    number: int
    state: TrialState
    value: float | None
    epochs: list[int]
    values: list[float | None] = Field(description="The metric per epoch; null if not finite.")


class CurvesOut(BaseModel):
    metric: str
    items: list[CurveOut]


class ErrorDetail(BaseModel):
    loc: str
    msg: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorOut(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "missing or wrong bearer token (when HPO_API_TOKENS is set)"),
        (404, "no such study, trial or data set (or another tenant's)"),
        (409, "the study's state does not allow this"),
        (413, "request body too large"),
        (422, "invalid request; details name each field"),
        (429, "too many submissions; see Retry-After"),
        (503, "database or Ray unreachable"),
    )
}
