"""The one way a trial ends and the one way a study changes state: recorded, then told.

Every end of a trial (complete, pruned, failed; cancelled by a stop or a study's end;
an outcome copied from Optuna after a crash) is `Ledger.end_trial`, and every change of
a study's state (queued again, running, paused, completed, stopped, failed, deleted) is
`Ledger.move_study`. Each writes the store as one call and tells the listeners after
that write commits (inside a writer's batch: after the batch's commit, see
`service.listeners.commits`), so a listener never sees a change that did not happen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.listeners.commits import after_commit
from service.listeners.contract import DELETED, StudyTransition, TrialEnded
from service.listeners.fanout import Listeners
from storage.records import StudyRecord, TrialRecord
from storage.repository import Store


@dataclass(frozen=True)
class Ledger:
    """The store, and whoever listens to what it records."""

    store: Store
    listeners: Listeners = field(default_factory=Listeners)

    def end_trial(
        self,
        study_id: int,
        number: int,
        *,
        state: str,
        value: float | None,
        best_epoch: int | None,
        stop_reason: str,
        error: str | None = None,
        values: Sequence[float] | None = None,
        test_metrics: dict[str, float] | None = None,
        finished_at: datetime | None = None,
    ) -> TrialRecord:
        """Close the trial with its outcome (`Store.finish_trial`), then tell listeners."""
        record = self.store.finish_trial(
            study_id,
            number,
            state=state,
            value=value,
            best_epoch=best_epoch,
            stop_reason=stop_reason,
            error=error,
            values=values,
            test_metrics=test_metrics,
            finished_at=finished_at,
        )
        event = TrialEnded(
            study_id,
            number,
            state,
            stop_reason,
            value,
            None if values is None else tuple(values),
            error,
        )
        after_commit(lambda: self.listeners.tell(event))
        return record

    def move_study(
        self,
        study_id: int,
        state: str,
        *,
        reason: str | None = None,
        error: str | None = None,
        expect: Sequence[str] | None = None,
        spec: dict[str, Any] | None = None,
    ) -> StudyRecord | None:
        """Move the study to `state`, then tell listeners; with `expect`, only from one of
        those states (a compare-and-set: StudyStateChanged for the loser).

        `state` DELETED deletes its rows (None is returned); `spec` queues it again with
        that (bigger) budget (`Store.reopen_study`, `state` must be `queued`)."""
        record: StudyRecord | None = None
        if state == DELETED:
            self.store.delete_study(study_id, expect=expect)
        elif spec is not None:
            if state != "queued" or expect is None:
                raise ValueError(f"a new spec queues a study again from `expect`, not {state}")
            record = self.store.reopen_study(study_id, spec=spec, expect=expect)
        else:
            record = self.store.set_study_state(
                study_id, state, reason=reason, error=error, expect=expect
            )
        event = StudyTransition(study_id, state, reason, error)
        after_commit(lambda: self.listeners.tell(event))
        return record
