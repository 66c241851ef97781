"""The aggregates behind the dashboard's charts: history, importance and learning curves."""

from __future__ import annotations

from typing import Literal, cast

from pydantic import BaseModel, Field

from api.schemas.trials import INTEGER_METRICS, EpochValue, TrialState, as_count
from service.studies.insights import Curve


class HistoryPoint(BaseModel):
    number: int = Field(description="First trial number in the bucket.")
    last: int = Field(description="Last trial number in the bucket.")
    lo: float
    hi: float
    best: float = Field(description="Best value of every trial up to `last`.")
    count: int


class HistoryOut(BaseModel):
    """Complete trials' primary value by number, bucketed to at most `points` buckets."""

    direction: Literal["minimize", "maximize"]
    n_complete: int
    bucket_size: int
    items: list[HistoryPoint]


class ImportanceItem(BaseModel):
    param: str
    importance: float


class ImportanceOut(BaseModel):
    evaluator: str = Field(description="Optuna's importance evaluator used.")
    n_trials: int = Field(description="Complete trials the importances were computed from.")
    items: list[ImportanceItem]


class CurveOut(BaseModel):
    number: int
    state: TrialState
    value: float | None
    epochs: list[int]
    values: list[EpochValue] = Field(
        description="The metric per epoch (an integer for a count such as n_params); null if not "
        "finite."
    )

    @classmethod
    def of(cls, curve: Curve, metric: str) -> CurveOut:
        values: list[EpochValue] = list(curve.values)
        if metric in INTEGER_METRICS:
            values = [as_count(v) for v in curve.values]
        state = cast(TrialState, curve.state)
        return cls(
            number=curve.number, state=state, value=curve.value, epochs=curve.epochs, values=values
        )


class CurvesOut(BaseModel):
    metric: str
    items: list[CurveOut]
