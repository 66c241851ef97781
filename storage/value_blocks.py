"""Per-block summaries of complete trials' values, kept up to date as trials complete."""

from __future__ import annotations

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from storage.models import TrialRow, ValueBlockRow

VALUE_BLOCK = 64


def add_value(session: Session, study_id: int, number: int, value: float) -> None:
    """Count one newly complete trial's value in its block (an upsert on both databases)."""
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    table = ValueBlockRow.__table__
    statement = dialect.insert(table).values(
        study_id=study_id, block=number // VALUE_BLOCK, count=1, lo=value, hi=value
    )
    excluded = statement.excluded
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["study_id", "block"],
            set_={
                "count": table.c.count + 1,
                "lo": func.min(table.c.lo, excluded.lo)
                if dialect is sqlite
                else func.least(table.c.lo, excluded.lo),
                "hi": func.max(table.c.hi, excluded.hi)
                if dialect is sqlite
                else func.greatest(table.c.hi, excluded.hi),
            },
        )
    )


def rebuild(session: Session, study_id: int) -> None:
    """Recompute a study's blocks from its trials (after rows were written in bulk)."""
    session.execute(delete(ValueBlockRow).where(ValueBlockRow.study_id == study_id))
    block = TrialRow.number // VALUE_BLOCK
    summary = (
        select(
            TrialRow.study_id,
            block,
            func.count(),
            func.min(TrialRow.value),
            func.max(TrialRow.value),
        )
        .where(
            TrialRow.study_id == study_id, TrialRow.state == "complete", TrialRow.value.is_not(None)
        )
        .group_by(TrialRow.study_id, block)
    )
    session.execute(
        insert(ValueBlockRow).from_select(["study_id", "block", "count", "lo", "hi"], summary)
    )


def read(session: Session, study_id: int) -> list[tuple[int, int, float, float]]:
    """(block, count, lo, hi) of every block with a complete trial, in block order."""
    query = (
        select(ValueBlockRow.block, ValueBlockRow.count, ValueBlockRow.lo, ValueBlockRow.hi)
        .where(ValueBlockRow.study_id == study_id)
        .order_by(ValueBlockRow.block)
    )
    return [(b, c, lo, hi) for b, c, lo, hi in session.execute(query)]
