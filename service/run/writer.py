"""One writer thread per study: writes run in the order they were submitted.

The driver submits a write and goes on. Writes queued while the thread was busy
run together in one transaction (`transaction`, the store's batch), so a trial's
rows cost one commit instead of six. A batch that fails is rolled back and its
writes run again one at a time: every write before the faulty one lands, the
first failure is kept, later queued writes are skipped, and the failure
surfaces at the driver's next check, so a failing database fails the study
instead of being lost.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")
Transaction = Callable[[], AbstractContextManager[Any]]
MAX_BATCH = 256


@dataclass
class _Write:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    result: Future[Any] | None = None  # set for `call`: the caller waits and sees its errors


class RecordingFailed(RuntimeError):
    """A write failed: the study cannot go on without losing what it records."""


class OrderedWriter:
    def __init__(self, name: str, *, transaction: Transaction | None = None):
        self._transaction: Transaction = transaction or nullcontext
        self._queue: queue.SimpleQueue[_Write | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._skipped = 0
        # Started by the first write: a queued study, which writes nothing until its
        # first slot, holds no thread while it waits.
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._start = threading.Lock()

    @property
    def started(self) -> bool:
        return self._thread.ident is not None

    def _put(self, write: _Write) -> None:
        self._queue.put(write)
        if not self.started:
            with self._start:
                if not self.started:
                    self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write behind every earlier one; do not wait for it."""
        self._put(_Write(fn, args, kwargs))

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a write after every queued one and return its result; it raises its own errors."""
        result: Future[T] = Future()
        self._put(_Write(fn, args, kwargs, result))
        return await asyncio.wrap_future(result)

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise RecordingFailed(self.error)

    @property
    def error(self) -> str | None:
        """What the study's `error` says once a write failed: the first failure, and how
        many writes were skipped after it."""
        if self._error is None:
            return None
        skipped = f"; {self._skipped} later writes skipped" if self._skipped else ""
        return f"could not record: {type(self._error).__name__}: {self._error}{skipped}"

    async def drain(self) -> str | None:
        """Wait for every queued write; the first failure's description, if any."""
        await self.call(lambda: None)
        return self.error

    def close(self) -> None:
        """Finish the queued writes and stop the thread."""
        if not self.started:
            return
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            closing = False
            while len(batch) < MAX_BATCH:
                try:
                    write = self._queue.get_nowait()
                except queue.Empty:
                    break
                if write is None:
                    closing = True
                    break
                batch.append(write)
            self._run_batch(batch)
            if closing:
                return

    def _run_batch(self, batch: list[_Write]) -> None:
        if len(batch) > 1 and self._error is None:
            try:
                with self._transaction():
                    results = [w.fn(*w.args, **w.kwargs) for w in batch]
            except Exception:  # noqa: BLE001 - each write runs again alone, below
                pass
            else:
                for write, value in zip(batch, results, strict=True):
                    if write.result is not None:
                        write.result.set_result(value)
                return
        for write in batch:
            self._run_alone(write)

    def _run_alone(self, write: _Write) -> None:
        if write.result is not None:
            try:
                with self._transaction():
                    value = write.fn(*write.args, **write.kwargs)
            except BaseException as exc:  # noqa: BLE001 - handed to the waiting caller
                write.result.set_exception(exc)
            else:
                write.result.set_result(value)
            return
        if self._error is not None:
            self._skipped += 1
            return
        try:
            with self._transaction():
                write.fn(*write.args, **write.kwargs)
        except Exception as exc:  # noqa: BLE001 - kept and reported by raise_if_failed/drain
            self._error = exc
            log.error(
                "%s could not record %s; later writes are skipped and the study fails",
                self._thread.name,
                getattr(write.fn, "__name__", write.fn),
                exc_info=exc,
            )
