"""Trials in the store: started, given epochs, finished, read one by one or a page at a time."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from storage import events, queries, value_blocks
from storage.checks import check_order, check_positive, check_state
from storage.convert import trial_record
from storage.cursor import paginate
from storage.errors import TrialNotFound
from storage.lookups import require_study, study_direction, trial_row
from storage.models import EpochRow, TrialRow
from storage.records import FINISHED_TRIAL_STATES, TRIAL_STATES, Page, TrialRecord
from storage.transactions import StorePart
from storage.trial_progress import close_attempt, first_attempt


class TrialRows(StorePart):
    """Store methods for one study's trials and their learning curves (part of `Store`)."""

    def create_trial(
        self,
        study_id: int,
        number: int,
        params: dict[str, Any],
        *,
        state: str = "running",
        node: str | None = None,
        retry_of: int | None = None,
        started_at: datetime | None = None,
        device: str | None = None,
    ) -> TrialRecord:
        """Store a trial started at `started_at` (default now). Raises ConflictError if the
        study has `number` already."""
        check_state(state, TRIAL_STATES, "trial")
        with self._session() as session:
            require_study(session, study_id)
            row = TrialRow(
                study_id=study_id,
                number=number,
                state=state,
                params=params,
                epochs_run=0,
                started_at=started_at or datetime.now(UTC),
                node=node,
                device=device,
                retry_of=retry_of,
                attempts=first_attempt(node, started_at or datetime.now(UTC), device),
            )
            session.add(row)
            session.flush()
            data = {"number": number, "params": params, "node": node, "retry_of": retry_of}
            events.append(session, study_id, "trial_started", data)
            return trial_record(row)

    def add_epoch(
        self,
        study_id: int,
        number: int,
        *,
        epoch: int,
        seconds: float,
        metrics: dict[str, float | None],
    ) -> None:
        """Record one epoch's metrics and count it on the trial, atomically.

        Raises TrialNotFound, or ConflictError if the epoch was recorded already.
        """
        bump = (
            update(TrialRow)
            .where(TrialRow.study_id == study_id, TrialRow.number == number)
            .values(epochs_run=TrialRow.epochs_run + 1)
            .returning(TrialRow.id)
        )
        row = {"study_id": study_id, "number": number, "epoch": epoch}
        with self._session() as session:
            if session.scalar(bump) is None:
                raise TrialNotFound(study_id, number)
            session.execute(insert(EpochRow).values(**row, seconds=seconds, metrics=metrics))
            data = {"number": number, "epoch": epoch, "seconds": seconds, **metrics}
            events.append(session, study_id, "epoch", data)

    def finish_trial(
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
        """Close a trial with its outcome at `finished_at` (default now); duration_s counts
        from its start."""
        check_state(state, FINISHED_TRIAL_STATES, "finished trial")
        with self._session() as session:
            row = trial_row(session, study_id, number)
            if state == "complete" and value is not None and row.state != "complete":
                value_blocks.add_value(session, study_id, number, value)
            now = finished_at or datetime.now(UTC)
            row.state, row.value, row.best_epoch = state, value, best_epoch
            row.values = None if values is None else list(values)
            row.stop_reason, row.error, row.finished_at = stop_reason, error, now
            row.test_metrics = test_metrics
            row.duration_s = _seconds_between(row.started_at, now)
            row.checkpoint_bytes = None  # a finished trial's checkpoint is deleted
            close_attempt(row, stop_reason, now)
            session.flush()
            data = {
                "number": number,
                "state": state,
                "value": value,
                "values": row.values,
                "stop_reason": stop_reason,
                "error": error,
            }
            events.append(session, study_id, "trial_finished", data)
            return trial_record(row)

    def get_trial(self, study_id: int, number: int) -> TrialRecord:
        """One trial with its learning curve, epochs in order."""
        epochs = (
            select(EpochRow)
            .where(EpochRow.study_id == study_id, EpochRow.number == number)
            .order_by(EpochRow.epoch)
        )
        with self._session() as session:
            row = trial_row(session, study_id, number)
            return trial_record(row, list(session.scalars(epochs)))

    def list_trials(
        self,
        study_id: int,
        *,
        state: str | None = None,
        order: str = "number",
        limit: int = 50,
        cursor: str | None = None,
        direction: str | None = None,
    ) -> Page:
        """Trials by number, or `best` first (in the study's direction, unscored last).
        The direction is read from the study unless the caller has it (and so knows the
        study exists)."""
        check_positive("limit", limit)
        check_order(order)
        with self._session() as session:
            direction = direction or study_direction(session, study_id)
            query = select(TrialRow).where(TrialRow.study_id == study_id)
            if state is not None:
                check_state(state, TRIAL_STATES, "trial")
                query = query.where(TrialRow.state == state)
            if order == "best":
                rows: list[TrialRow] = []
                for read in queries.best_page_queries(query, direction, cursor):
                    if len(rows) <= limit:
                        rows += session.scalars(read.limit(limit + 1 - len(rows)))
            else:
                query = query.order_by(TrialRow.number.asc()).limit(limit + 1)
                if cursor is not None:
                    query = query.where(queries.trials_after(order, direction, cursor))
                rows = list(session.scalars(query))
            return paginate(rows, limit, trial_record, lambda row: queries.trial_cursor(order, row))

    def best_trials(
        self, study_id: int, *, k: int = 1, direction: str | None = None
    ) -> list[TrialRecord]:
        """The k best complete trials with a value, best first in the study's direction
        (read from the study unless the caller has it)."""
        check_positive("k", k)
        with self._session() as session:
            direction = direction or study_direction(session, study_id)
            rows = session.scalars(queries.best_trials_query(study_id, direction, k))
            return [trial_record(row) for row in rows]

    def trials_by_number(self, study_id: int, numbers: Sequence[int]) -> list[TrialRecord]:
        """The named trials (without their curves), in the order of `numbers`."""
        query = select(TrialRow).where(
            TrialRow.study_id == study_id, TrialRow.number.in_(list(numbers))
        )
        with self._session() as session:
            rows = {row.number: trial_record(row) for row in session.scalars(query)}
            return [rows[n] for n in numbers if n in rows]

    def complete_values(self, study_id: int) -> list[tuple[int, list[float]]]:
        """(number, values) of every complete trial: what a Pareto front is computed from."""
        query = (
            select(TrialRow.number, TrialRow.values)
            .where(TrialRow.study_id == study_id, TrialRow.state == "complete")
            .where(TrialRow.values.is_not(None))
            .order_by(TrialRow.number)
        )
        with self._session() as session:
            require_study(session, study_id)
            return [(number, list(values or [])) for number, values in session.execute(query)]

    def count_retries(self, study_id: int) -> int:
        """Trials that re-ran a lost trial's params: each took over its predecessor's place."""
        query = select(func.count()).where(
            TrialRow.study_id == study_id, TrialRow.retry_of.is_not(None)
        )
        with self._session() as session:
            return int(session.scalar(query) or 0)


def _seconds_between(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else (end - start).total_seconds()
