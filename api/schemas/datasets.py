"""An uploaded data set's description, alone and listed."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from service.records import DatasetRecord


class DatasetOut(BaseModel):
    id: str
    filename: str
    format: str
    target: str
    task: str
    size_bytes: int
    n_rows: int
    n_features: int
    created_at: datetime

    @classmethod
    def of(cls, record: DatasetRecord) -> DatasetOut:
        return cls(**{name: getattr(record, name) for name in cls.model_fields})


class DatasetList(BaseModel):
    items: list[DatasetOut]
