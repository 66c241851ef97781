"""Data set uploads: multipart CSV, Parquet or NPZ, checked before they are accepted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile

from api.deps import RuntimeDep, Studies, Tenant
from api.schemas.datasets import DatasetList, DatasetOut
from api.schemas.errors import ERROR_RESPONSES
from service.data.uploads import Uploads
from service.limits import TenantCaps

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"], responses=ERROR_RESPONSES)
_ERRORS: dict[int | str, dict[str, Any]] = {c: ERROR_RESPONSES[c] for c in (404, 409, 413, 422)}
CHUNK = 1 << 20


def get_uploads(runtime: RuntimeDep) -> Uploads:
    assert runtime.uploads is not None
    return runtime.uploads


UploadsDep = Annotated[Uploads, Depends(get_uploads)]


@router.post("", status_code=201, response_model=DatasetOut, responses=_ERRORS)
async def upload_dataset(
    uploads: UploadsDep,
    tenant: Tenant,
    response: Response,
    runtime: RuntimeDep,
    file: Annotated[
        UploadFile, File(description="CSV, Parquet or NPZ", json_schema_extra={"format": "binary"})
    ],
    target: Annotated[str, Form(min_length=1, max_length=255)] = "target",
    format: Annotated[str | None, Form()] = None,  # noqa: A002 - the spec's field name
) -> DatasetOut:
    """Upload a data set; 422 names a missing target or a non-numeric column, 413 if too big
    or if the tenant's uploads would pass max_upload_bytes_per_tenant."""

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := await file.read(CHUNK):
            yield chunk

    record = await uploads.add(
        tenant=tenant,
        filename=file.filename or "upload",
        target=target,
        file_format=format,
        chunks=chunks(),
        cap=TenantCaps.of(runtime.settings).upload_bytes,
    )
    response.headers["Location"] = f"/api/v1/datasets/{record.id}"
    return DatasetOut.of(record)


@router.get("", response_model=DatasetList)
def list_datasets(uploads: UploadsDep, tenant: Tenant) -> DatasetList:
    """The caller's data sets, oldest first."""
    return DatasetList(items=[DatasetOut.of(r) for r in uploads.of_tenant(tenant)])


@router.get("/{dataset_id}", response_model=DatasetOut, responses=_ERRORS)
def get_dataset(dataset_id: str, uploads: UploadsDep, tenant: Tenant) -> DatasetOut:
    """One data set's description."""
    return DatasetOut.of(uploads.get(dataset_id, tenant=tenant))


@router.delete("/{dataset_id}", status_code=204, responses=_ERRORS)
def delete_dataset(
    dataset_id: str, uploads: UploadsDep, studies: Studies, tenant: Tenant
) -> Response:
    """Delete a data set and its file; 409 while a queued or running study uses it."""
    uploads.delete(dataset_id, tenant=tenant, used_by=studies.studies_using_dataset(dataset_id))
    return Response(status_code=204)
