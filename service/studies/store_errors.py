"""The one place the store's errors become the service's, named for the caller's next
move (`service.errors`); `api` maps those to HTTP in one place of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from service.errors import Conflict, InvalidRequest, NotFound, Unavailable
from storage.errors import ConflictError, InvalidCursorError, NotFoundError, StorageError


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn the store's errors into the service's, named for the caller's next move."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFound(str(exc)) from exc
    except InvalidCursorError as exc:
        raise InvalidRequest(str(exc)) from exc
    except ConflictError as exc:
        raise Conflict(str(exc)) from exc
    except StorageError as exc:
        raise Unavailable(str(exc)) from exc
