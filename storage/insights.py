"""Read-only aggregates for the dashboard: each reads what one view shows, not every trial.

A study of 100,000 trials must draw as fast as one of 100, so history is bucketed in SQL,
importance works from a bounded sample and curves are fetched for named trials only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from storage import value_blocks
from storage.convert import epoch_record
from storage.lookups import require_study, study_direction
from storage.models import EpochRow, TrialRow
from storage.records import EpochRecord
from storage.session import session_scope
from storage.value_blocks import VALUE_BLOCK

# Up to this many trial numbers, history buckets are computed from the trials directly.
RAW_HISTORY = 4096


@dataclass(frozen=True)
class HistoryBucket:
    """Consecutive complete trials by number: their value range and the best so far."""

    number: int
    last: int
    lo: float
    hi: float
    best: float
    count: int


@dataclass(frozen=True)
class History:
    direction: str
    n_complete: int
    bucket_size: int
    buckets: list[HistoryBucket]


class StudyInsights:
    """Aggregate queries over one engine; every method raises StudyNotFound like Store."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def history(self, study_id: int, *, points: int) -> History:
        """Complete trials' values in at most `points` buckets of consecutive numbers.

        Up to RAW_HISTORY trial numbers the buckets come from the trials themselves; past
        that, from the per-block summaries, so the read stays ~1,600 rows at 100,000 trials.
        """
        if points < 1:
            raise ValueError(f"points must be positive, got {points}")
        with session_scope(self._engine) as session:
            direction = study_direction(session, study_id)
            top = session.scalar(
                select(func.max(TrialRow.number)).where(TrialRow.study_id == study_id)
            )
            if top is None:
                return History(direction, 0, 1, [])
            if top < RAW_HISTORY:
                size = max(1, -(-(top + 1) // points))
                rows = _raw_buckets(session, study_id, size)
            else:
                blocks = -(-(top + 1) // (points * VALUE_BLOCK))
                size = blocks * VALUE_BLOCK
                rows = _merge_blocks(value_blocks.read(session, study_id), blocks, top)
        buckets = _running_best(rows, direction)
        return History(direction, sum(b.count for b in buckets), size, buckets)

    def sample_complete(self, study_id: int, *, limit: int) -> list[tuple[dict[str, Any], float]]:
        """(params, value) of complete trials among `limit` numbers spread evenly over the
        study: index look-ups by number, so the cost does not grow with the study."""
        with session_scope(self._engine) as session:
            require_study(session, study_id)
            top = session.scalar(
                select(func.max(TrialRow.number)).where(TrialRow.study_id == study_id)
            )
            if top is None:
                return []
            step = max(1, -(-(top + 1) // limit))
            query = (
                select(TrialRow.params, TrialRow.value)
                .where(
                    TrialRow.study_id == study_id,
                    TrialRow.state == "complete",
                    TrialRow.value.is_not(None),
                )
                .order_by(TrialRow.number)
            )
            if step > 1:
                query = query.where(TrialRow.number.in_(range(0, top + 1, step)))
            rows = session.execute(query).all()
        return [(dict(params), float(value)) for params, value in rows]

    def recent_numbers(self, study_id: int, *, state: str, limit: int) -> list[int]:
        """The newest `limit` trial numbers in `state`, newest first."""
        query = (
            select(TrialRow.number)
            .where(TrialRow.study_id == study_id, TrialRow.state == state)
            .order_by(TrialRow.number.desc())
            .limit(limit)
        )
        with session_scope(self._engine) as session:
            require_study(session, study_id)
            return list(session.scalars(query))

    def curves(
        self, study_id: int, numbers: Sequence[int]
    ) -> dict[int, tuple[str, float | None, list[EpochRecord]]]:
        """For each named trial that exists: (state, value, epochs in order)."""
        if not numbers:
            return {}
        wanted = sorted(set(numbers))
        # epochs_run is outside the (study, state, value, number) index: without it SQLite
        # scanned that covering index (20 ms at 100,000 trials) instead of seeking numbers.
        trials = select(TrialRow.number, TrialRow.state, TrialRow.value, TrialRow.epochs_run).where(
            TrialRow.study_id == study_id, TrialRow.number.in_(wanted)
        )
        epochs = (
            select(EpochRow)
            .where(EpochRow.study_id == study_id, EpochRow.number.in_(wanted))
            .order_by(EpochRow.number, EpochRow.epoch)
        )
        with session_scope(self._engine) as session:
            require_study(session, study_id)
            found: dict[int, tuple[str, float | None, list[EpochRecord]]] = {
                n: (s, v, []) for n, s, v, _ in session.execute(trials)
            }
            for row in session.scalars(epochs):
                found[row.number][2].append(epoch_record(row))
        return found


def _raw_buckets(session: Session, study_id: int, size: int) -> list[tuple[Any, ...]]:
    key = (TrialRow.number // size) if size > 1 else TrialRow.number
    query = (
        select(
            func.min(TrialRow.number),
            func.max(TrialRow.number),
            func.min(TrialRow.value),
            func.max(TrialRow.value),
            func.count(),
        )
        .where(
            TrialRow.study_id == study_id, TrialRow.state == "complete", TrialRow.value.is_not(None)
        )
        .group_by(key)
        .order_by(func.min(TrialRow.number))
    )
    return [tuple(row) for row in session.execute(query)]


def _merge_blocks(
    blocks: list[tuple[int, int, float, float]], per_bucket: int, top: int
) -> list[tuple[Any, ...]]:
    """Blocks grouped `per_bucket` at a time: (first number, last number, lo, hi, count)."""
    merged: dict[int, list[Any]] = {}
    for block, count, lo, hi in blocks:
        bucket = block // per_bucket
        if bucket not in merged:
            first = bucket * per_bucket * VALUE_BLOCK
            merged[bucket] = [first, min(top, first + per_bucket * VALUE_BLOCK - 1), lo, hi, 0]
        entry = merged[bucket]
        entry[2], entry[3], entry[4] = min(entry[2], lo), max(entry[3], hi), entry[4] + count
    return [tuple(entry) for _, entry in sorted(merged.items())]


def _running_best(rows: Sequence[Any], direction: str) -> list[HistoryBucket]:
    buckets: list[HistoryBucket] = []
    best: float | None = None
    for first, last, lo, hi, count in rows:
        edge = float(hi) if direction == "maximize" else float(lo)
        if best is None or (edge > best if direction == "maximize" else edge < best):
            best = edge
        buckets.append(HistoryBucket(first, last, float(lo), float(hi), best, count))
    return buckets
