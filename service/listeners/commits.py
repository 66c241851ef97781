"""Work that waits for a transaction to commit: `after_commit`, as in Django.

The store commits each call on its own unless the calling thread is in one of its
batches (a study's writer runs its queued writes in one). What is told to listeners
must wait for that batch's commit, and must be dropped if it rolls back: a write
inside `transaction(store)` registers with `after_commit`, and the hooks run once the
batch has committed, in the order they were registered.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

log = logging.getLogger(__name__)

_open = threading.local()


class Batches(Protocol):
    def batch(self) -> AbstractContextManager[Any]: ...


@contextmanager
def transaction(store: Batches) -> Iterator[None]:
    """`store.batch()`, running the `after_commit` hooks of its writes once it commits.

    Raises RuntimeError when nested (as `Store.batch` does)."""
    if getattr(_open, "hooks", None) is not None:
        raise RuntimeError("transaction() does not nest")
    hooks: list[Callable[[], None]] = []
    _open.hooks = hooks
    try:
        with store.batch():
            yield
    finally:
        _open.hooks = None
    for hook in hooks:  # not reached when the batch rolled back
        _run(hook)


def after_commit(hook: Callable[[], None]) -> None:
    """Run `hook` once this thread's `transaction` commits; at once outside one (each
    store call has committed by the time it returns). A hook must not raise or block:
    a raising one is logged."""
    hooks: list[Callable[[], None]] | None = getattr(_open, "hooks", None)
    if hooks is None:
        _run(hook)
    else:
        hooks.append(hook)


def _run(hook: Callable[[], None]) -> None:
    try:
        hook()
    except Exception:  # noqa: BLE001 - what was committed stays committed
        log.exception("an after-commit hook raised")
