"""The service's store: short transactions in, frozen records out."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import uuid4

from sqlalchemy import Connection, Engine, delete, func, insert, select, update
from sqlalchemy.orm import Session

from storage import events, queries, value_blocks
from storage.checks import check_direction, check_order, check_positive, check_state
from storage.convert import study_record, trial_record
from storage.cursor import decode_cursor, encode_cursor, paginate
from storage.errors import StudyStateChanged, TrialNotFound
from storage.lookups import require_study, study_direction, study_row, trial_row
from storage.models import EpochRow, StudyRow, TrialRow
from storage.records import (
    FINISHED_TRIAL_STATES,
    STUDY_STATES,
    TRIAL_STATES,
    EventRecord,
    Page,
    StudyRecord,
    TrialRecord,
)
from storage.session import session_scope
from storage.trial_progress import RESUMABLE_STATES, TrialProgress, close_attempt, first_attempt

_TERMINAL_STUDY_STATES = ("completed", "stopped", "failed")
T = TypeVar("T")


class Store(TrialProgress):
    """Studies, trials and learning curves on one engine (SQLite or PostgreSQL).

    Every method is one short transaction. Methods taking a `study_id` raise StudyNotFound
    when it does not exist; database failures surface as StorageUnavailable (ConflictError for
    broken uniqueness rules), and arguments outside the documented values as ValueError.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._batch = threading.local()

    def _session(self) -> AbstractContextManager[Session]:
        session: Session | None = getattr(self._batch, "session", None)
        return nullcontext(session) if session is not None else session_scope(self._engine)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every call this thread makes inside it (a study's writer).

        Commits at the end; any error rolls all of it back and is raised as from one call.
        """
        if getattr(self._batch, "session", None) is not None:
            raise RuntimeError("Store.batch() does not nest")
        with session_scope(self._engine) as session:
            self._batch.session = session
            try:
                yield
            finally:
                self._batch.session = None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One session for every call this thread makes inside it: a read of several
        queries (a study's row, counts, best) checks a connection out once, not per query.
        Inside a batch it is that batch."""
        if getattr(self._batch, "session", None) is not None:
            yield
            return
        with self.batch():
            yield

    def run(self, write: Callable[[Connection], T]) -> T:
        """Run `write` on the connection of this thread's batch, or in a transaction of its own.

        For rows the store does not own but that must commit with its own (Optuna's mirror).
        """
        with self._session() as session:
            return write(session.connection())

    # Studies

    def create_study(
        self,
        *,
        name: str,
        spec: dict[str, Any],
        direction: str,
        warnings: Sequence[str] = (),
        tenant: str = "default",
    ) -> StudyRecord:
        """Store a new `queued` study; its Optuna study name derives from its id."""
        check_direction(direction)
        with self._session() as session:
            row = StudyRow(
                name=name,
                state="queued",
                spec=spec,
                direction=direction,
                created_at=_now(),
                optuna_study_name=f"pending-{uuid4().hex}",
                warnings=list(warnings),
                tenant=tenant,
            )
            session.add(row)
            session.flush()
            row.optuna_study_name = f"hpo-study-{row.id}"
            session.flush()
            return study_record(row)

    def get_study(self, study_id: int) -> StudyRecord:
        with self._session() as session:
            return study_record(study_row(session, study_id))

    def list_studies(
        self,
        *,
        state: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
        tenant: str | None = None,
    ) -> Page:
        """Newest first; the cursor is the last id seen, so new studies never shift pages."""
        check_positive("limit", limit)
        query = select(StudyRow).order_by(StudyRow.id.desc()).limit(limit + 1)
        if state is not None:
            check_state(state, STUDY_STATES, "study")
            query = query.where(StudyRow.state == state)
        if tenant is not None:
            query = query.where(StudyRow.tenant == tenant)
        if cursor is not None:
            (last_id,) = decode_cursor(cursor, "studies", (int,))
            query = query.where(StudyRow.id < last_id)
        with self._session() as session:
            rows = list(session.scalars(query))
            return paginate(rows, limit, study_record, lambda row: encode_cursor("studies", row.id))

    def count_studies(self) -> dict[str, int]:
        """Studies by state, every state present (one GROUP BY)."""
        query = select(StudyRow.state, func.count()).group_by(StudyRow.state)
        with self._session() as session:
            found = {state: int(n) for state, n in session.execute(query)}
        return {state: found.get(state, 0) for state in STUDY_STATES}

    def studies_in_states(self, states: Sequence[str]) -> list[StudyRecord]:
        """Studies in any of `states`, oldest first (e.g. to resume `running` ones on start-up)."""
        for state in states:
            check_state(state, STUDY_STATES, "study")
        query = select(StudyRow).where(StudyRow.state.in_(list(states))).order_by(StudyRow.id)
        with self._session() as session:
            return [study_record(row) for row in session.scalars(query)]

    def ended_with_unfinished_trials(self) -> list[StudyRecord]:
        """Ended studies (completed, stopped, failed) that still have a trial waiting or
        running: what an older version, or a crash while a study ended, left behind."""
        unfinished = select(TrialRow.study_id).where(TrialRow.state.in_(RESUMABLE_STATES))
        query = (
            select(StudyRow)
            .where(StudyRow.state.in_(_TERMINAL_STUDY_STATES), StudyRow.id.in_(unfinished))
            .order_by(StudyRow.id)
        )
        with self._session() as session:
            return [study_record(row) for row in session.scalars(query)]

    def set_study_state(
        self, study_id: int, state: str, *, reason: str | None = None, error: str | None = None,
        expect: Sequence[str] | None = None,
    ) -> StudyRecord:  # fmt: skip
        """Move a study to `state`; `reason` and `error` describe the new state and replace
        the old ones. started_at is set once; finished_at on a terminal state, cleared on resume.

        With `expect`, a compare-and-set: the study moves only from one of those states,
        else StudyStateChanged (two commands at once: one wins, in SQL).
        """
        check_state(state, STUDY_STATES, "study")
        with self._session() as session:
            if expect is not None:
                _claim(session, study_id, expect, state=state)
            row = study_row(session, study_id)
            now = _now()
            row.state, row.state_reason, row.error = state, reason, error
            if state == "running" and row.started_at is None:
                row.started_at = now
            row.finished_at = now if state in _TERMINAL_STUDY_STATES else None
            session.flush()
            data = {"state": state, "reason": reason, "error": error}
            events.append(session, study_id, "study", data)
            return study_record(row)

    def reopen_study(
        self, study_id: int, *, spec: dict[str, Any], expect: Sequence[str]
    ) -> StudyRecord:
        """Give a finished study a new spec (a bigger budget) and queue it again, if it is
        in one of the states `expect` (compare-and-set, else StudyStateChanged)."""
        with self._session() as session:
            _claim(session, study_id, expect, state="queued")
            row = study_row(session, study_id)
            row.spec, row.state, row.state_reason, row.error = spec, "queued", None, None
            row.finished_at = None
            session.flush()
            return study_record(row)

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

    def trials_by_number(self, study_id: int, numbers: Sequence[int]) -> list[TrialRecord]:
        """The named trials (without their curves), in the order of `numbers`."""
        query = select(TrialRow).where(
            TrialRow.study_id == study_id, TrialRow.number.in_(list(numbers))
        )
        with self._session() as session:
            rows = {row.number: trial_record(row) for row in session.scalars(query)}
            return [rows[n] for n in numbers if n in rows]

    def delete_study(self, study_id: int, *, expect: Sequence[str] | None = None) -> None:
        """Delete a study; the database cascades to its trials and epochs. With `expect`,
        only a study in one of those states (else StudyStateChanged)."""
        statement = delete(StudyRow).where(StudyRow.id == study_id)
        if expect is not None:
            statement = statement.where(StudyRow.state.in_(list(expect)))
        with self._session() as session:
            if session.scalar(statement.returning(StudyRow.id)) is None:
                raise StudyStateChanged(study_id, study_row(session, study_id).state)

    # Trials

    def count_trials_of(self, study_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """Trials per state of each study (a page of studies), in one GROUP BY; studies
        that do not exist count zero everywhere."""
        return self.trial_totals_of(study_ids)[0]

    def best_of_studies(self, directions: dict[int, str]) -> dict[int, TrialRecord]:
        """The best complete trial of each study in `directions` (id -> direction), for a
        page of studies in one query; a study without one is left out."""
        by_direction: dict[str, list[int]] = {}
        for study_id, direction in directions.items():
            by_direction.setdefault(direction, []).append(study_id)
        if not by_direction:
            return {}
        if len(directions) == 1:  # one study: the plain top-1 read is the cheaper statement
            ((study_id, direction),) = directions.items()
            best = self.best_trials(study_id, k=1, direction=direction)
            return {study_id: best[0]} if best else {}
        with self._session() as session:
            rows = session.scalars(queries.best_of_studies_query(by_direction))
            return {row.study_id: trial_record(row) for row in rows}

    def trial_totals_of(
        self, study_ids: Sequence[int]
    ) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
        """`count_trials_of` and `checkpoint_bytes` of a page of studies in one GROUP BY:
        a page's reads are mostly per-statement overhead (bench/README.md, "API under load")."""
        query = (
            select(TrialRow.study_id, TrialRow.state, func.count(),
                   func.sum(TrialRow.checkpoint_bytes))
            .where(TrialRow.study_id.in_(list(study_ids)))
            .group_by(TrialRow.study_id, TrialRow.state)
        )  # fmt: skip
        counts = {study_id: dict.fromkeys(TRIAL_STATES, 0) for study_id in study_ids}
        held = dict.fromkeys(study_ids, 0)
        with self._session() as session:
            for study_id, state, n, checkpoint_bytes in session.execute(query):
                counts[study_id][state] = n
                if state in RESUMABLE_STATES:
                    held[study_id] += int(checkpoint_bytes or 0)
        return counts, held

    def count_trials(self, study_id: int) -> dict[str, int]:
        """Trials per state, every state present (0 when none), in one GROUP BY."""
        counts = self.count_trials_of([study_id])[study_id]
        if not any(counts.values()):
            with self._session() as session:
                require_study(session, study_id)
        return counts

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
                started_at=started_at or _now(),
                node=node,
                device=device,
                retry_of=retry_of,
                attempts=first_attempt(node, started_at or _now(), device),
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
            now = finished_at or _now()
            row.state, row.value, row.best_epoch = state, value, best_epoch
            row.values = None if values is None else list(values)
            row.stop_reason, row.error, row.finished_at = stop_reason, error, now
            row.test_metrics = test_metrics
            row.duration_s = _seconds_between(row.started_at, now)
            row.checkpoint_bytes = None  # a finished trial's checkpoint is deleted
            close_attempt(row, stop_reason, now)
            session.flush()
            data = {"number": number, "state": state, "value": value, "values": row.values,
                    "stop_reason": stop_reason, "error": error}  # fmt: skip
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

    def events_after(
        self, study_id: int, after_id: int = 0, *, limit: int = 500
    ) -> list[EventRecord]:
        """The study's change log after `after_id`, oldest first (what SSE replays)."""
        with self._session() as session:
            require_study(session, study_id)
            return events.after(session, study_id, after_id, limit)

    def count_retries(self, study_id: int) -> int:
        """Trials that re-ran a lost trial's params: each took over its predecessor's place."""
        query = select(func.count()).where(
            TrialRow.study_id == study_id, TrialRow.retry_of.is_not(None)
        )
        with self._session() as session:
            return int(session.scalar(query) or 0)


def _claim(session: Session, study_id: int, expect: Sequence[str], *, state: str) -> None:
    """Compare-and-set a study's state in one UPDATE: PostgreSQL re-reads the row after a
    concurrent writer commits, SQLite serialises writers, so one of two racing commands
    moves the study and the other gets StudyStateChanged (StudyNotFound if it is gone)."""
    statement = (
        update(StudyRow)
        .where(StudyRow.id == study_id, StudyRow.state.in_(list(expect)))
        .values(state=state)
        .returning(StudyRow.id)
        .execution_options(synchronize_session=False)
    )
    if session.scalar(statement) is None:
        raise StudyStateChanged(study_id, study_row(session, study_id).state)


def _now() -> datetime:
    return datetime.now(UTC)


def _seconds_between(start: datetime | None, end: datetime) -> float | None:
    return None if start is None else (end - start).total_seconds()
