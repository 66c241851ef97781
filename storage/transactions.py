"""The store's transactions: one engine, and each thread's open batch that calls join.

Every part of the store (`study_rows`, `trial_rows`, `trial_counts`, `trial_progress`)
opens its sessions here, so a batch that one part opens is the one the others write in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import TypeVar

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from storage.session import session_scope

T = TypeVar("T")


class Transactions:
    """Sessions on one engine: this thread's batch when one is open, else one of their own."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._batch = threading.local()

    def session(self) -> AbstractContextManager[Session]:
        session: Session | None = getattr(self._batch, "session", None)
        return nullcontext(session) if session is not None else session_scope(self.engine)

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every call this thread makes inside it (a study's writer).

        Commits at the end; any error rolls all of it back and is raised as from one call.
        Raises RuntimeError when this thread has a batch open already.
        """
        if getattr(self._batch, "session", None) is not None:
            raise RuntimeError("Store.batch() does not nest")
        with session_scope(self.engine) as session:
            self._batch.session = session
            try:
                yield
            finally:
                self._batch.session = None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One session for every call this thread makes inside it: a read of several
        queries (a study's row, counts, best) checks a connection out once, not per query.
        Inside a batch it is that batch."""
        if getattr(self._batch, "session", None) is not None:
            yield
            return
        with self.batch():
            yield

    def run(self, write: Callable[[Connection], T]) -> T:
        """Run `write` on the connection of this thread's batch, or in a transaction of its own.

        For rows the store does not own but that must commit with its own (Optuna's mirror).
        """
        with self.session() as session:
            return write(session.connection())


class StorePart:
    """A part of the store: its methods open their sessions from shared `Transactions`."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def _session(self) -> AbstractContextManager[Session]:
        return self._transactions.session()
