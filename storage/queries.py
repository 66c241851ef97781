"""Statement builders for trial lists: orderings and the keyset conditions that page them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, or_, select, union_all
from sqlalchemy.orm import InstrumentedAttribute, aliased
from sqlalchemy.sql.elements import UnaryExpression

from storage.cursor import decode_cursor, encode_cursor
from storage.models import StudyRow, TrialRow


def best_trials_query(study_id: int, direction: str, k: int) -> Select[TrialRow]:
    """Top-k complete trials; plain ASC/DESC on `value` so the (study_id, state, value)
    index serves it on both SQLite and PostgreSQL (nulls are filtered out anyway)."""
    return (
        select(TrialRow)
        .where(
            TrialRow.study_id == study_id, TrialRow.state == "complete", TrialRow.value.is_not(None)
        )
        .order_by(_best_first(TrialRow.value, direction), TrialRow.number.asc())
        .limit(k)
    )


# Built once: an alias proxies each of the table's columns, which cost more than the
# query itself when it was made per call.
_BEST_OF = {d: aliased(TrialRow, name=f"best_{d}") for d in ("maximize", "minimize")}


def best_of_studies_query(ids_by_direction: Mapping[str, Sequence[int]]) -> Select[TrialRow]:
    """The best complete trial of each study (a page of studies) in one statement: per
    direction, a correlated top-1 subquery per study that the (study_id, state, value)
    index serves, as `best_trials_query` does; not a window over every trial."""
    parts = []
    for direction, study_ids in ids_by_direction.items():
        if not study_ids:
            continue
        inner = _BEST_OF[direction]
        best_id = (
            select(inner.id)
            .where(
                inner.study_id == StudyRow.id, inner.state == "complete", inner.value.is_not(None)
            )
            .order_by(_best_first(inner.value, direction), inner.number.asc())
            .limit(1)
            .scalar_subquery()
        )
        parts.append(select(best_id).where(StudyRow.id.in_(list(study_ids))))
    return select(TrialRow).where(TrialRow.id.in_(union_all(*parts)))


def best_page_queries(
    base: Select[TrialRow], direction: str, cursor: str | None
) -> list[Select[TrialRow]]:
    """Best-first as two index-ordered reads: scored trials by value, then unscored by number.

    One ORDER BY with NULLS LAST sorted every trial of the study (0.4 s at 100,000 trials):
    neither database can serve it from an index in both directions.
    """
    after = trials_after("best", direction, cursor) if cursor else None
    scored = base.where(TrialRow.value.is_not(None)).order_by(*trial_order("best", direction))
    unscored = base.where(TrialRow.value.is_(None)).order_by(TrialRow.number.asc())
    if after is not None:
        scored, unscored = scored.where(after), unscored.where(after)
    if cursor is None or decode_cursor(cursor, "trials-best", (None, int))[0] is not None:
        return [scored, unscored]
    return [unscored]


def trial_order(order: str, direction: str) -> tuple[UnaryExpression[Any], ...]:
    if order == "number":
        return (TrialRow.number.asc(),)
    return (_best_first(TrialRow.value, direction), TrialRow.number.asc())


def _best_first(
    column: InstrumentedAttribute[float | None], direction: str
) -> UnaryExpression[Any]:
    """The ordering of `column` that puts the direction's best value first."""
    return column.desc() if direction == "maximize" else column.asc()


def trial_cursor(order: str, row: TrialRow) -> str:
    if order == "number":
        return encode_cursor("trials-number", row.number)
    return encode_cursor("trials-best", row.value, row.number)


def trials_after(order: str, direction: str, cursor: str) -> ColumnElement[bool]:
    """The rows that come strictly after the cursor's row in `order`."""
    if order == "number":
        (number,) = decode_cursor(cursor, "trials-number", (int,))
        return TrialRow.number > number
    value, number = decode_cursor(cursor, "trials-best", (None, int))
    return _best_after(direction, value, number)


def _best_after(direction: str, value: float | None, number: int) -> ColumnElement[bool]:
    column = TrialRow.value
    if value is None:
        return and_(column.is_(None), TrialRow.number > number)
    beyond = column < value if direction == "maximize" else column > value
    return or_(beyond, and_(column == value, TrialRow.number > number), column.is_(None))
