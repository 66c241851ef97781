"""Uploaded data sets: streamed to disk under <data dir>/uploads, checked, then registered.

A file is parsed with the worker's own reader before it is accepted, so a study
never starts on a file that has text features, a missing target or holes; a
rejected or oversized upload leaves nothing behind. Writing, parsing and
registering run on worker threads: a 100 MB file must not stall every study's
epochs and every other request while it is read.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path, PurePath

import numpy as np

from service.errors import Conflict, InvalidRequest, NotFound, PayloadTooLarge
from service.limits import TenantCap
from storage.datasets import DatasetNotFound, DatasetStore
from storage.records import DatasetRecord
from workers.data import infer_task
from workers.data_error import DataError
from workers.files import read_table

FORMATS = ("csv", "parquet", "npz")


class Uploads:
    def __init__(self, store: DatasetStore, root: Path, *, max_bytes: int):
        self.store = store
        self.root = root
        self.max_bytes = max_bytes
        self._registering = asyncio.Lock()

    def path_of(self, record: DatasetRecord) -> Path:
        return self.root / record.id / record.filename

    async def add(
        self,
        *,
        tenant: str,
        filename: str,
        target: str,
        file_format: str | None,
        chunks: AsyncIterator[bytes],
        cap: TenantCap | None = None,
    ) -> DatasetRecord:
        """Store, check and register an upload; InvalidRequest (422) or PayloadTooLarge (413,
        also when the tenant's stored uploads and this one would pass `cap`)."""
        name = PurePath(filename or "upload").name
        fmt = file_format or PurePath(name).suffix.lstrip(".")
        if fmt not in FORMATS:
            raise InvalidRequest(
                f"format must be one of {list(FORMATS)}, got {fmt!r}", field="format"
            )
        dataset_id = uuid.uuid4().hex[:16]
        folder = self.root / dataset_id
        folder.mkdir(parents=True, exist_ok=False)
        try:
            stored = 0 if cap is None else await asyncio.to_thread(self._stored, tenant)
            size = await self._write(folder / name, chunks, cap=cap, stored=stored)
            x, y = await asyncio.to_thread(self._check, folder / name, fmt, target)
            async with self._registering:  # no other upload lands between check and create
                if cap is not None:
                    await asyncio.to_thread(self._check_total, tenant, cap, size)
                return await asyncio.to_thread(
                    self.store.create,
                    id=dataset_id,
                    tenant=tenant,
                    filename=name,
                    format=fmt,
                    target=target,
                    task=infer_task(y),
                    size_bytes=size,
                    n_rows=len(y),
                    n_features=int(x[0].size),
                )
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise

    async def _write(
        self, path: Path, chunks: AsyncIterator[bytes], *, cap: TenantCap | None, stored: int
    ) -> int:
        """The bytes written; PayloadTooLarge as soon as the upload passes a limit, so that an
        upload over the tenant's total is refused before all of it is on disk."""
        size = 0
        out = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if size > self.max_bytes:
                    raise PayloadTooLarge(f"upload over {self.max_bytes} bytes")
                if cap is not None and stored + size > cap.value:
                    raise PayloadTooLarge(_over_total(cap, stored))
                await asyncio.to_thread(out.write, chunk)
        finally:
            await asyncio.to_thread(out.close)
        return size

    def _stored(self, tenant: str) -> int:
        return sum(record.size_bytes for record in self.store.list(tenant))

    def _check_total(self, tenant: str, cap: TenantCap, size: int) -> None:
        """Again at registration: another upload of the tenant may have landed meanwhile."""
        stored = self._stored(tenant)
        if stored + size > cap.value:
            raise PayloadTooLarge(_over_total(cap, stored))

    def _check(self, path: Path, fmt: str, target: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            x, y = read_table(path, fmt, target)
        except DataError as exc:
            raise InvalidRequest(str(exc), field="file") from exc
        if len(y) < 10:
            raise InvalidRequest(
                f"a data set needs at least 10 rows, {path.name} has {len(y)}", field="file"
            )
        return x, y

    def get(self, dataset_id: str, *, tenant: str | None = None) -> DatasetRecord:
        try:
            record = self.store.get(dataset_id)
        except DatasetNotFound as exc:
            raise NotFound(str(exc)) from exc
        if tenant is not None and record.tenant != tenant:
            raise NotFound(f"dataset {dataset_id!r} does not exist")
        return record

    def of_tenant(self, tenant: str) -> list[DatasetRecord]:
        return self.store.list(tenant)

    def delete(self, dataset_id: str, *, tenant: str | None, used_by: list[int]) -> None:
        """Remove a data set and its file; Conflict while `used_by` lists active studies."""
        record = self.get(dataset_id, tenant=tenant)
        if used_by:
            raise Conflict(
                f"dataset {dataset_id!r} is used by running studies {used_by}; stop them first"
            )
        self.store.delete(record.id)
        shutil.rmtree(self.root / record.id, ignore_errors=True)


def _over_total(cap: TenantCap, stored: int) -> str:
    return (
        f"{cap.reached()}; the tenant's uploads hold {stored} bytes and this one would pass "
        "it (delete a data set to make room)"
    )
