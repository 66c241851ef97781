"""Studies in the store: created, listed, moved between states (compare-and-set), deleted."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from storage import events
from storage.checks import check_direction, check_positive, check_state
from storage.convert import study_record
from storage.cursor import decode_cursor, encode_cursor, paginate
from storage.errors import StudyStateChanged
from storage.lookups import require_study, study_row
from storage.models import StudyRow, TrialRow
from storage.records import STUDY_STATES, EventRecord, Page, StudyRecord
from storage.transactions import StorePart
from storage.trial_progress import RESUMABLE_STATES

_TERMINAL_STUDY_STATES = ("completed", "stopped", "failed")


class StudyRows(StorePart):
    """Store methods for studies and their change log (part of `Store`)."""

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
                created_at=datetime.now(UTC),
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
        self,
        study_id: int,
        state: str,
        *,
        reason: str | None = None,
        error: str | None = None,
        expect: Sequence[str] | None = None,
    ) -> StudyRecord:
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
            now = datetime.now(UTC)
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

    def delete_study(self, study_id: int, *, expect: Sequence[str] | None = None) -> None:
        """Delete a study; the database cascades to its trials and epochs. With `expect`,
        only a study in one of those states (else StudyStateChanged)."""
        statement = delete(StudyRow).where(StudyRow.id == study_id)
        if expect is not None:
            statement = statement.where(StudyRow.state.in_(list(expect)))
        with self._session() as session:
            if session.scalar(statement.returning(StudyRow.id)) is None:
                raise StudyStateChanged(study_id, study_row(session, study_id).state)

    def add_warning(self, study_id: int, warning: str) -> None:
        """Show `warning` on the study once, however often it is added."""
        with self._session() as session:
            row = study_row(session, study_id)
            if warning not in (row.warnings or []):
                row.warnings = [*(row.warnings or []), warning]

    def events_after(
        self, study_id: int, after_id: int = 0, *, limit: int = 500
    ) -> list[EventRecord]:
        """The study's change log after `after_id`, oldest first (what SSE replays)."""
        with self._session() as session:
            require_study(session, study_id)
            return events.after(session, study_id, after_id, limit)


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
