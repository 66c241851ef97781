"""Aggregates behind the dashboard's charts: each bounded, whatever the study's size."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import Field

from api.deps import Insights, StudyId, Tenant
from api.schemas.errors import ERROR_RESPONSES
from api.schemas.insights import (
    CurveOut,
    CurvesOut,
    HistoryOut,
    HistoryPoint,
    ImportanceItem,
    ImportanceOut,
)
from service.studies.insights import MAX_CURVES

router = APIRouter(prefix="/api/v1/studies", tags=["insights"], responses=ERROR_RESPONSES)
Count = Annotated[int, Query(ge=0, le=MAX_CURVES)]
TrialNumberValue = Annotated[int, Field(ge=0, le=2**31 - 1)]


@router.get("/{study_id}/history", response_model=HistoryOut)
def history(
    study_id: StudyId,
    insights: Insights,
    tenant: Tenant,
    points: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> HistoryOut:
    """Optimization history: value per trial (bucketed past `points`) and the running best."""
    found = insights.history(study_id, points=points, tenant=tenant)
    return HistoryOut(
        direction=found.direction,  # type: ignore[arg-type]
        n_complete=found.n_complete,
        bucket_size=found.bucket_size,
        items=[HistoryPoint(**vars(b)) for b in found.buckets],
    )


@router.get("/{study_id}/importance", response_model=ImportanceOut)
def importance(study_id: StudyId, insights: Insights, tenant: Tenant) -> ImportanceOut:
    """Hyperparameter importance from up to 1,000 complete trials spread over the study."""
    found = insights.importance(study_id, tenant=tenant)
    items = [ImportanceItem(param=p, importance=v) for p, v in found.shares.items()]
    return ImportanceOut(evaluator=found.evaluator, n_trials=found.n_trials, items=items)


@router.get("/{study_id}/curves", response_model=CurvesOut)
def curves(
    study_id: StudyId,
    insights: Insights,
    tenant: Tenant,
    numbers: Annotated[list[TrialNumberValue], Query(max_length=MAX_CURVES)] = [],  # noqa: B006
    top: Count = 0,
    pruned: Count = 0,
) -> CurvesOut:
    """Learning curves (the primary metric per epoch) of the named trials, the `top` best
    and the `pruned` most recently pruned."""
    metric, found = insights.curves(
        study_id, numbers=numbers, top=top, pruned=pruned, tenant=tenant
    )
    return CurvesOut(metric=metric, items=[CurveOut.of(c, metric) for c in found])
