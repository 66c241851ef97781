"""The one transaction scope: commit or roll back, and speak `storage` errors, not SQLAlchemy's."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from storage.errors import ConflictError, StorageUnavailable


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield a session whose work commits on success and rolls back on any error.

    Raises ConflictError for a broken uniqueness or reference rule, StorageUnavailable
    for any other database failure; errors raised by the body pass through unchanged.
    """
    session = Session(engine, expire_on_commit=False, autoflush=False)
    try:
        yield session
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise ConflictError(f"the write breaks a database constraint: {exc.orig}") from exc
    except SQLAlchemyError as exc:
        session.rollback()
        raise StorageUnavailable(f"database operation failed: {exc}") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
