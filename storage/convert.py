"""ORM rows to frozen records, so rows never outlive their session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from storage.models import EpochRow, StudyRow, TrialRow
from storage.records import AttemptRecord, EpochRecord, StudyRecord, TrialRecord


def study_record(row: StudyRow) -> StudyRecord:
    return StudyRecord(
        id=row.id,
        name=row.name,
        state=row.state,
        state_reason=row.state_reason,
        spec=row.spec,
        optuna_study_name=row.optuna_study_name,
        direction=row.direction,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        warnings=list(row.warnings or []),
        tenant=row.tenant,
    )


def trial_record(row: TrialRow, epochs: Sequence[EpochRow] = ()) -> TrialRecord:
    return TrialRecord(
        study_id=row.study_id,
        number=row.number,
        state=row.state,
        params=row.params,
        value=row.value,
        values=row.values,
        best_epoch=row.best_epoch,
        epochs_run=row.epochs_run,
        stop_reason=row.stop_reason,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=row.duration_s,
        node=row.node,
        retry_of=row.retry_of,
        error=row.error,
        test_metrics=row.test_metrics,
        epochs=[epoch_record(epoch) for epoch in epochs],
        checkpoint_epoch=row.checkpoint_epoch,
        checkpoint_bytes=row.checkpoint_bytes,
        attempts=[attempt_record(a) for a in row.attempts or ()],
        device=row.device,
        lineage=list(row.lineage or ()),
    )


def attempt_record(data: dict[str, Any]) -> AttemptRecord:
    def when(key: str) -> datetime | None:
        return None if data.get(key) is None else datetime.fromisoformat(data[key])

    started = when("started_at")
    assert started is not None
    return AttemptRecord(
        node=data.get("node"),
        started_at=started,
        from_epoch=int(data["from_epoch"]),
        finished_at=when("finished_at"),
        epochs_trained=data.get("epochs_trained"),
        end=data.get("end"),
        device=data.get("device"),
    )


def epoch_record(row: EpochRow) -> EpochRecord:
    return EpochRecord(epoch=row.epoch, seconds=row.seconds, metrics=row.metrics)
