"""A trial's runs and checkpoints: attempts, resumes, pauses, PBT copies.

A trial that a lost worker, a restart, a pause or a preemption interrupted keeps its
number and resumes from its checkpoint: its curve is cut back to the checkpoint's
epoch (so each epoch is recorded once) and a new attempt is listed on it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, insert, select

from storage import events
from storage.checks import check_state
from storage.convert import trial_record
from storage.lookups import require_study, trial_row
from storage.models import EpochRow, TrialRow
from storage.records import TrialRecord
from storage.transactions import StorePart

EpochValues = tuple[float, dict[str, float | None]]
"""One epoch as recorded: its seconds and its metrics (non-finite values as None)."""

RESUMABLE_STATES = ("waiting", "running")


def first_attempt(
    node: str | None, started_at: datetime, device: str | None = None
) -> list[dict[str, Any]]:
    return [{"node": node, "device": device, "started_at": started_at.isoformat(), "from_epoch": 0}]


def close_attempt(row: TrialRow, end: str, now: datetime) -> None:
    """End the trial's open attempt (if any) as `end`, counting the epochs it trained."""
    attempts = [dict(a) for a in row.attempts or ()]
    if not attempts or attempts[-1].get("end") is not None:
        return
    last = attempts[-1]
    last.update(
        end=end,
        finished_at=now.isoformat(),
        epochs_trained=max(0, row.epochs_run - int(last["from_epoch"])),
    )
    row.attempts = attempts


class TrialProgress(StorePart):
    """Store methods for resumable trials (part of `Store`)."""

    def resume_trial(
        self,
        study_id: int,
        number: int,
        *,
        node: str | None,
        history: Sequence[EpochValues],
        started_at: datetime | None = None,
        device: str | None = None,
    ) -> TrialRecord:
        """Start a new attempt of trial `number` from the checkpoint that holds `history`
        (epochs 1..k): later epochs are deleted, missing ones recorded, the trial runs."""
        from_epoch = len(history)
        now = started_at or datetime.now(UTC)
        with self._session() as session:
            row = trial_row(session, study_id, number)
            close_attempt(row, "interrupted", now)
            key = (EpochRow.study_id == study_id, EpochRow.number == number)
            session.execute(delete(EpochRow).where(*key, EpochRow.epoch > from_epoch))
            have = set(session.scalars(select(EpochRow.epoch).where(*key)))
            missing = [
                {
                    "study_id": study_id,
                    "number": number,
                    "epoch": epoch,
                    "seconds": seconds,
                    "metrics": metrics,
                }
                for epoch, (seconds, metrics) in enumerate(history, start=1)
                if epoch not in have
            ]
            if missing:
                session.execute(insert(EpochRow), missing)
            if row.lineage:  # a copy made after the checkpoint is made again
                row.lineage = [e for e in row.lineage if e["epoch"] <= from_epoch]
            row.state, row.node, row.device, row.epochs_run = "running", node, device, from_epoch
            attempt = {
                "node": node,
                "device": device,
                "started_at": now.isoformat(),
                "from_epoch": from_epoch,
            }
            row.attempts = [*(row.attempts or ()), attempt]
            session.flush()
            data = {"number": number, "node": node, "from_epoch": from_epoch}
            events.append(session, study_id, "trial_resumed", data)
            return trial_record(row)

    def interrupt_trial(self, study_id: int, number: int, *, end: str, state: str) -> None:
        """Close the trial's attempt as `end` (paused, preempted, worker_lost); the trial
        stays unfinished in `state` (waiting for a slot, or running)."""
        check_state(state, RESUMABLE_STATES, "unfinished trial")
        with self._session() as session:
            row = trial_row(session, study_id, number)
            close_attempt(row, end, datetime.now(UTC))
            row.state = state
            session.flush()
            data = {"number": number, "end": end, "state": state}
            events.append(session, study_id, "trial_interrupted", data)

    def add_lineage(self, study_id: int, number: int, entry: dict[str, Any]) -> None:
        """PBT member `number` copied another member (see TrialRecord.lineage)."""
        with self._session() as session:
            row = trial_row(session, study_id, number)
            row.lineage = [*(row.lineage or ()), entry]
            session.flush()
            events.append(session, study_id, "trial_exploited", {"number": number, **entry})

    def note_checkpoint(self, study_id: int, number: int, *, epoch: int, size: int) -> None:
        """Trial `number` can resume from `epoch`; its checkpoint takes `size` bytes."""
        with self._session() as session:
            row = trial_row(session, study_id, number)
            row.checkpoint_epoch, row.checkpoint_bytes = epoch, size

    def unfinished_trials(
        self, study_id: int, *, states: Sequence[str] = RESUMABLE_STATES
    ) -> list[TrialRecord]:
        """Trials still waiting or running, by number: what a resumed study continues."""
        query = (
            select(TrialRow)
            .where(TrialRow.study_id == study_id, TrialRow.state.in_(sorted(states)))
            .order_by(TrialRow.number)
        )
        with self._session() as session:
            rows = list(session.scalars(query))
            if not rows:
                require_study(session, study_id)
            return [trial_record(row) for row in rows]
