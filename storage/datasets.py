"""Uploaded data sets' rows: small, tenant-scoped, values out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from sqlalchemy import Engine, select

from storage.errors import NotFoundError
from storage.models import DatasetRow
from storage.records import DatasetRecord
from storage.session import session_scope


class DatasetNotFound(NotFoundError):
    def __init__(self, dataset_id: str) -> None:
        super().__init__(f"dataset {dataset_id!r} does not exist")


def _record(row: DatasetRow) -> DatasetRecord:
    return DatasetRecord(
        **{f.name: getattr(row, f.name) for f in dataclasses.fields(DatasetRecord)}
    )


class DatasetStore:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, **fields: object) -> DatasetRecord:
        with session_scope(self._engine) as session:
            row = DatasetRow(**fields, created_at=datetime.now(UTC))
            session.add(row)
            session.flush()
            return _record(row)

    def get(self, dataset_id: str) -> DatasetRecord:
        with session_scope(self._engine) as session:
            row = session.get(DatasetRow, dataset_id)
            if row is None:
                raise DatasetNotFound(dataset_id)
            return _record(row)

    def list(self, tenant: str) -> list[DatasetRecord]:
        query = (
            select(DatasetRow).where(DatasetRow.tenant == tenant).order_by(DatasetRow.created_at)
        )
        with session_scope(self._engine) as session:
            return [_record(row) for row in session.scalars(query)]

    def delete(self, dataset_id: str) -> None:
        with session_scope(self._engine) as session:
            row = session.get(DatasetRow, dataset_id)
            if row is None:
                raise DatasetNotFound(dataset_id)
            session.delete(row)
