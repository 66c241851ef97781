"""One writer thread per study: writes run in the order they were submitted.

The driver submits a write and goes on. The first failure is kept, later queued
writes are skipped, and the failure surfaces at the driver's next check, so a
failing database fails the study instead of being lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class OrderedWriter:
    def __init__(self, name: str):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._last: Future[None] | None = None
        self._error: BaseException | None = None

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Queue a write behind every earlier one; do not wait for it."""
        self._last = self._executor.submit(self._guarded, fn, args, kwargs)

    def _guarded(self, fn: Callable[..., Any], args: Any, kwargs: Any) -> None:
        if self._error is not None:
            return
        try:
            fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - kept and reported by raise_if_failed/drain
            self._error = exc

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a write after every queued one and return its result; it raises its own errors."""
        result: T = await asyncio.wrap_future(self._executor.submit(fn, *args, **kwargs))
        return result

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"recording failed: {self.error}")

    @property
    def error(self) -> str | None:
        return None if self._error is None else f"{type(self._error).__name__}: {self._error}"

    async def drain(self) -> str | None:
        """Wait for every queued write; the first failure's description, if any."""
        if self._last is not None:
            await asyncio.wrap_future(self._last)
        return self.error

    def close(self) -> None:
        self._executor.shutdown(wait=True)
