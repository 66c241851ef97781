"""The one transaction scope: commit or roll back, and speak `storage` errors, not SQLAlchemy's."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.errors import ConflictError, StorageUnavailable

log = logging.getLogger(__name__)


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session whose work commits on success and rolls back on any error.

    Raises ConflictError for a broken uniqueness or reference rule, StorageUnavailable
    for any other database failure, each with a short message and an error id (the log
    holds the detail under that id); errors raised by the body pass through unchanged.
    """
    session = Session(engine, expire_on_commit=False, autoflush=False)
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(logged("the write breaks a database constraint", exc)) from exc
    except SQLAlchemyError as exc:
        session.rollback()
        raise StorageUnavailable(logged("database error", exc)) from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def logged(summary: str, exc: BaseException) -> str:
    """Log the database's own text under a fresh id and return `summary (id ...)`.

    That text quotes SQL statements, table names and bound values: it belongs in the
    operator's log, while clients (API bodies, a study's `error`) get the id to quote.
    """
    error_id = secrets.token_hex(4)
    log.error("%s (id %s): %s", summary, error_id, exc)
    return f"{summary} (id {error_id})"


def describe_error(exc: BaseException) -> str:
    """`Type: message` of an error for a study's `error` field; a database error that
    reached the caller unmapped (Optuna's storage raises SQLAlchemy's own) is summarised
    under a logged id instead, since its text quotes SQL."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, SQLAlchemyError):
            return f"{type(exc).__name__}: {logged('database error', cause)}"
        cause = cause.__cause__ or cause.__context__
    return f"{type(exc).__name__}: {exc}"
