"""The study service's mapping of store errors onto errors named for the caller's next move."""

from __future__ import annotations

import pytest

from service.errors import Conflict, InvalidRequest, NotFound, ServiceError, Unavailable
from service.studies.study_service import storage_errors
from storage.errors import (
    ConflictError,
    InvalidCursorError,
    StorageError,
    StorageUnavailable,
    StudyNotFound,
)

CASES: list[tuple[StorageError, type[ServiceError]]] = [
    (StudyNotFound(7), NotFound),  # 404: do not retry
    (InvalidCursorError("not ours"), InvalidRequest),  # 422: fix the request
    (ConflictError("trial number 3 used twice"), Conflict),  # 409: check the state first
    (StorageUnavailable("connection refused"), Unavailable),  # 503: retry later
]


@pytest.mark.parametrize(("raised", "expected"), CASES, ids=[type(c[0]).__name__ for c in CASES])
def test_each_store_error_becomes_the_service_error_for_the_callers_next_move(
    raised: StorageError, expected: type[ServiceError]
) -> None:
    with pytest.raises(expected, match=str(raised)), storage_errors():
        raise raised


def test_a_conflict_is_not_reported_as_an_unreachable_database() -> None:
    with pytest.raises(ServiceError) as caught, storage_errors():
        raise ConflictError("the write breaks a database constraint")
    assert not isinstance(caught.value, Unavailable)
