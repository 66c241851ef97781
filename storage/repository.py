"""The service's store: short transactions in, frozen records out.

`Store` is the one object callers hold. Its methods live in the parts it is made of, a
module each, over one `Transactions` (so a batch spans every part): studies
(`study_rows`), trials and curves (`trial_rows`), sums over a page of studies
(`study_summaries`), resumable trials (`trial_progress`). A new method goes into the
part whose rows it reads; `Store` itself only holds the transactions.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TypeVar

from sqlalchemy import Connection, Engine

from storage.study_rows import StudyRows
from storage.study_summaries import StudySummaries
from storage.transactions import Transactions
from storage.trial_progress import TrialProgress
from storage.trial_rows import TrialRows

T = TypeVar("T")


class Store(StudyRows, TrialRows, StudySummaries, TrialProgress):
    """Studies, trials and learning curves on one engine (SQLite or PostgreSQL).

    Every method is one short transaction. Methods taking a `study_id` raise StudyNotFound
    when it does not exist; database failures surface as StorageUnavailable (ConflictError for
    broken uniqueness rules), and arguments outside the documented values as ValueError.
    """

    def __init__(self, engine: Engine) -> None:
        super().__init__(Transactions(engine))
        self._engine = engine

    def batch(self) -> AbstractContextManager[None]:
        """One transaction for every call this thread makes inside it (`Transactions.batch`)."""
        return self._transactions.batch()

    def reading(self) -> AbstractContextManager[None]:
        """One session for every read this thread makes inside it (`Transactions.reading`)."""
        return self._transactions.reading()

    def run(self, write: Callable[[Connection], T]) -> T:
        """Run `write` on this thread's batch's connection, or in a transaction of its own."""
        return self._transactions.run(write)
