"""A trial as the API returns it: in pages, as a study's best, and alone with its runs and
per-epoch curve."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.records import TrialRecord
from service.run.outcome import STOP_REASONS

TrialState = Literal["waiting", "running", "complete", "pruned", "failed"]


class LineageOut(BaseModel):
    """A PBT member's copy of another member at a boundary."""

    epoch: int = Field(description="The boundary: the copy trains from the next epoch on.")
    copied: int = Field(description="The number of the member copied (weights and params).")
    copied_epoch: int | None = Field(description="The copied member's epoch in its checkpoint.")
    copied_value: float | None = Field(description="Its objective value at that epoch.")
    loaded_value: float | None = Field(
        description="The copy's objective value before it trained: equal to copied_value."
    )
    changed: dict[str, Any] = Field(description="The params the mutation changed, new values.")
    params: dict[str, Any] = Field(description="The searched params it trains with from here.")


class SchedulePiece(BaseModel):
    from_epoch: int
    params: dict[str, Any]


class TrialOut(BaseModel):
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    values: list[float] | None
    best_epoch: int | None
    epochs_run: int
    stop_reason: str | None = Field(
        description=f"Why a finished trial ended: one of {', '.join(STOP_REASONS)}. "
        "`out_of_memory`: the device ran out of memory (the trial is failed here, and told to "
        "Optuna as pruned so that the sampler draws less of its region)."
    )
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    node: str | None
    device: str | None = Field(
        description="What the trial trained on: the GPU's name (e.g. NVIDIA H200), or cpu."
    )
    retry_of: int | None
    error: str | None
    test_metrics: dict[str, float] | None = Field(
        description="Test metrics of the trial's best weights; selection uses validation only."
    )
    checkpoint_epoch: int | None = Field(
        description="The epoch an unfinished trial resumes after (its latest checkpoint)."
    )
    lineage: list[LineageOut] = Field(
        default_factory=list, description="A PBT member's copies of other members, in order."
    )
    schedule: list[SchedulePiece] = Field(
        default_factory=list,
        description="A PBT member's searched params over its epochs: each piece holds from "
        "`from_epoch` until the next piece. The schedule to replay (empty outside PBT).",
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialOut:
        fields = {
            name: getattr(trial, name)
            for name in cls.model_fields
            if name not in ("lineage", "schedule")
        }
        lineage = [LineageOut(**entry) for entry in trial.lineage]
        schedule = [SchedulePiece(from_epoch=1, params=trial.params)] if lineage else []
        schedule += [SchedulePiece(from_epoch=e.epoch + 1, params=e.params) for e in lineage]
        return cls(**fields, lineage=lineage, schedule=schedule)


class AttemptOut(BaseModel):
    """One run of a trial on one slot; a resumed trial has one per run."""

    node: str | None
    device: str | None = None
    started_at: datetime
    finished_at: datetime | None
    from_epoch: int = Field(description="Epochs the run started with, from a checkpoint.")
    epochs_trained: int | None = Field(description="Epochs this run trained, once it ended.")
    end: str | None = Field(
        description="Why the run ended: a stop reason, or paused, preempted, worker_lost, "
        "rotated (a PBT member gave its slot to one behind it), shutdown, interrupted (the "
        "service died); null while it runs."
    )


# Counts, not measurements: workers report every metric as a float, the API says these whole.
INTEGER_METRICS = frozenset({"n_params"})
EpochValue = int | float | None


class TrialDetailOut(TrialOut):
    attempts: list[AttemptOut] = Field(description="The trial's runs, oldest first.")
    epochs: list[dict[str, EpochValue]] = Field(
        description="Per epoch: epoch, train_loss, val_loss, val metrics, lr, seconds (of that "
        "epoch), train_seconds (so far) and n_params, and on a GPU peak_gpu_memory_mb; epoch "
        "and n_params are integers. A NaN or infinite value (a diverged trial) is null."
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialDetailOut:
        base = TrialOut.of(trial).model_dump()
        epochs: list[dict[str, EpochValue]] = [
            {"epoch": e.epoch, **_with_counts(e.metrics), "seconds": e.seconds}
            for e in trial.epochs
        ]
        attempts = [AttemptOut(**vars(a)) for a in trial.attempts]
        return cls(**base, attempts=attempts, epochs=epochs)


def _with_counts(metrics: dict[str, float | None]) -> dict[str, EpochValue]:
    return {k: as_count(v) if k in INTEGER_METRICS else v for k, v in metrics.items()}


def as_count(value: float | None) -> int | None:
    """A count the worker sent as a float (1234.0), as the integer it is."""
    return None if value is None else int(value)


class TrialPage(BaseModel):
    items: list[TrialOut]
    next_cursor: str | None


class BestOut(BaseModel):
    items: list[TrialOut]
