"""Study routes: thin handlers that validate, call the service and return a schema."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from api.deps import RuntimeDep, Studies, StudyId, Tenant, TrialNumber
from api.json_response import json_response
from api.schemas.errors import ERROR_RESPONSES, ErrorOut
from api.schemas.studies import ResumeIn, StudyOut, StudyPage, StudyState
from api.schemas.trials import BestOut, TrialDetailOut, TrialOut, TrialPage, TrialState
from api.yaml_route import YamlOrJsonRoute
from service.limits import TenantCaps, check_active_studies
from service.spec import StudySpec
from service.studies.study_service import FINISHED_TRIAL_STATES

router = APIRouter(
    prefix="/api/v1/studies",
    tags=["studies"],
    route_class=YamlOrJsonRoute,
    responses=ERROR_RESPONSES,
)
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut} for code in (404, 409, 422, 503)
}
FINISHED_TRIAL_CACHE = "private, max-age=60"
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=500)]
_YAML_BODY = {
    "requestBody": {
        "content": {"application/yaml": {"schema": {"$ref": "#/components/schemas/StudySpec"}}}
    }
}


@router.post(
    "", status_code=201, response_model=StudyOut, responses=_ERRORS, openapi_extra=_YAML_BODY
)
async def submit_study(
    spec: StudySpec, studies: Studies, tenant: Tenant, response: Response, runtime: RuntimeDep
) -> StudyOut:
    """Store a study (JSON or YAML) and start searching; 422 names every bad field, 429
    answers a tenant over its submission rate or its cap of active studies."""
    cap = TenantCaps.of(runtime.settings).active_studies
    await asyncio.to_thread(check_active_studies, studies.store, tenant, cap)
    view = await studies.submit(spec, tenant=tenant)
    response.headers["Location"] = f"/api/v1/studies/{view.record.id}"
    return StudyOut.of(view)


@router.get("", response_model=StudyPage, responses=_ERRORS)
def list_studies(
    studies: Studies,
    tenant: Tenant,
    state: StudyState | None = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """Studies, newest first, one page at a time."""
    page = studies.list_studies(state=state, limit=limit, cursor=cursor, tenant=tenant)
    items = [StudyOut.of(v) for v in page.items]
    return json_response(StudyPage(items=items, next_cursor=page.next_cursor))


@router.get("/{study_id}", response_model=StudyOut, responses=_ERRORS)
def get_study(study_id: StudyId, studies: Studies, tenant: Tenant) -> Response:
    """One study: state, spec, trial counts by state, best trial, timings, error."""
    return json_response(StudyOut.of(studies.get(study_id, tenant=tenant)))


@router.post("/{study_id}/stop", status_code=202, response_model=StudyOut, responses=_ERRORS)
async def stop_study(study_id: StudyId, studies: Studies, tenant: Tenant) -> StudyOut:
    """Stop a queued or running study; running trials end as cancelled."""
    return StudyOut.of(await studies.stop(study_id, tenant=tenant))


@router.post("/{study_id}/pause", status_code=202, response_model=StudyOut, responses=_ERRORS)
async def pause_study(study_id: StudyId, studies: Studies, tenant: Tenant) -> StudyOut:
    """Pause a queued or running study: trials stop at an epoch boundary with a checkpoint."""
    return StudyOut.of(await studies.pause(study_id, tenant=tenant))


@router.post("/{study_id}/resume", status_code=202, response_model=StudyOut, responses=_ERRORS)
async def resume_study(
    study_id: StudyId,
    studies: Studies,
    tenant: Tenant,
    runtime: RuntimeDep,
    body: ResumeIn | None = None,
) -> StudyOut:
    """Continue a paused study from its checkpoints, or run a finished one further;
    `budget` fields replace the old ones."""
    budget = body.budget.model_dump(exclude_unset=True) if body and body.budget else None
    cap = TenantCaps.of(runtime.settings).active_studies

    def admit(owner: str) -> None:  # a finished study resumed is one more active study
        check_active_studies(studies.store, owner, cap)

    return StudyOut.of(await studies.resume(study_id, budget=budget, tenant=tenant, admit=admit))


@router.delete("/{study_id}", status_code=204, responses=_ERRORS)
async def delete_study(study_id: StudyId, studies: Studies, tenant: Tenant) -> Response:
    """Delete a finished study with its trials, curves, events and Optuna study."""
    await studies.delete(study_id, tenant=tenant)
    return Response(status_code=204)


@router.get("/{study_id}/trials", response_model=TrialPage, responses=_ERRORS)
def list_trials(
    study_id: StudyId,
    studies: Studies,
    tenant: Tenant,
    state: TrialState | None = None,
    order: Literal["best", "number"] = "number",
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Response:
    """A study's trials by number or best value first, one page at a time."""
    page = studies.list_trials(
        study_id, state=state, order=order, limit=limit, cursor=cursor, tenant=tenant
    )
    items = [TrialOut.of(t) for t in page.items]
    return json_response(TrialPage(items=items, next_cursor=page.next_cursor))


@router.get("/{study_id}/trials/{number}", response_model=TrialDetailOut, responses=_ERRORS)
def get_trial(
    study_id: StudyId, number: TrialNumber, studies: Studies, tenant: Tenant, response: Response
) -> TrialDetailOut:
    """One trial with its per-epoch learning curve; a finished one may be cached a minute
    (it changes no more, but its study may be deleted)."""
    trial = TrialDetailOut.of(studies.trial(study_id, number, tenant=tenant))
    if trial.state in FINISHED_TRIAL_STATES:
        response.headers["Cache-Control"] = FINISHED_TRIAL_CACHE
    return trial


@router.get("/{study_id}/best", response_model=BestOut, responses=_ERRORS)
def best_trials(
    study_id: StudyId, studies: Studies, tenant: Tenant, k: Annotated[int, Query(ge=1, le=1000)] = 1
) -> Response:
    """The k best complete trials, best first."""
    best = studies.best(study_id, k=k, tenant=tenant)
    return json_response(BestOut(items=[TrialOut.of(t) for t in best]))


@router.get("/{study_id}/best/spec", responses=_ERRORS)
def best_spec(study_id: StudyId, studies: Studies, tenant: Tenant) -> dict[str, Any]:
    """A PBT study's best member as a plain study spec that replays its schedule (its
    lineage's params as `params`, then `param_schedule`, and its seed as `training_seed`):
    POST it to train it again."""
    return studies.replay_spec(study_id, tenant=tenant)


@router.get(
    "/{study_id}/best/checkpoint",
    response_class=FileResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **_ERRORS},
)
def best_checkpoint(study_id: StudyId, studies: Studies, tenant: Tenant) -> FileResponse:
    """The best trial's weights and model description, for `torch.load(weights_only=True)`."""
    number, path = studies.best_checkpoint(study_id, tenant=tenant)
    return FileResponse(
        path,
        media_type="application/octet-stream",
        filename=f"study-{study_id}-trial-{number}.pt",
        headers={"X-Trial-Number": str(number)},
    )
