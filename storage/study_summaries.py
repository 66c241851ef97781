"""What a page of studies shows of its trials, each in one statement for the whole page:
trials per state, the checkpoint bytes they hold, the best trial of each study.

A page's reads are mostly per-statement overhead (bench/README.md, "API under load"), so
none of these reads a study at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from storage import queries
from storage.convert import trial_record
from storage.lookups import require_study
from storage.models import TrialRow
from storage.records import TRIAL_STATES, TrialRecord
from storage.transactions import StorePart
from storage.trial_progress import RESUMABLE_STATES


class StudySummaries(StorePart):
    """Store methods that sum up studies' trials (part of `Store`)."""

    def count_trials(self, study_id: int) -> dict[str, int]:
        """Trials per state, every state present (0 when none), in one GROUP BY."""
        counts = self.count_trials_of([study_id])[study_id]
        if not any(counts.values()):
            with self._session() as session:
                require_study(session, study_id)
        return counts

    def count_trials_of(self, study_ids: Sequence[int]) -> dict[int, dict[str, int]]:
        """Trials per state of each study (a page of studies), in one GROUP BY; studies
        that do not exist count zero everywhere."""
        return self.trial_totals_of(study_ids)[0]

    def trial_totals_of(
        self, study_ids: Sequence[int]
    ) -> tuple[dict[int, dict[str, int]], dict[int, int]]:
        """`count_trials_of` and `checkpoint_bytes` of a page of studies in one GROUP BY."""
        query = (
            select(
                TrialRow.study_id, TrialRow.state, func.count(), func.sum(TrialRow.checkpoint_bytes)
            )
            .where(TrialRow.study_id.in_(list(study_ids)))
            .group_by(TrialRow.study_id, TrialRow.state)
        )
        counts = {study_id: dict.fromkeys(TRIAL_STATES, 0) for study_id in study_ids}
        held = dict.fromkeys(study_ids, 0)
        with self._session() as session:
            for study_id, state, n, checkpoint_bytes in session.execute(query):
                counts[study_id][state] = n
                if state in RESUMABLE_STATES:
                    held[study_id] += int(checkpoint_bytes or 0)
        return counts, held

    def checkpoint_bytes(self, study_ids: Sequence[int]) -> dict[int, int]:
        """Bytes of the checkpoints that unfinished trials hold, per study (0 when none)."""
        query = (
            select(TrialRow.study_id, func.sum(TrialRow.checkpoint_bytes))
            .where(TrialRow.study_id.in_(list(study_ids)))
            .where(TrialRow.state.in_(RESUMABLE_STATES))
            .group_by(TrialRow.study_id)
        )
        with self._session() as session:
            found = {sid: int(total or 0) for sid, total in session.execute(query)}
        return {sid: found.get(sid, 0) for sid in study_ids}

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
            query = queries.best_trials_query(study_id, direction, 1)
        else:
            query = queries.best_of_studies_query(by_direction)
        with self._session() as session:
            return {row.study_id: trial_record(row) for row in session.scalars(query)}
