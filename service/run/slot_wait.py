"""A study's wait for a slot: given up when the study ends, counted until granted.

The scheduler may keep a study waiting for its slots (it is `queued` until the first).
A loop waiting for a slot that the scheduler has not granted yet is *ungranted*: a PBT
member gives its slot up only to a member whose loop is short of one (see `members`),
not to one whose slot was granted while its actor still starts.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from service.run.runner import Slot, TrialRunner
from service.run.study_end import StudyEnd

_BACKOFF_S = 0.5
_BACKOFF_MAX_S = 30.0


class SlotWait:
    """Opens the study's slots on its runner; `on_grant` runs at every grant."""

    def __init__(self, runner: TrialRunner, end: StudyEnd, on_grant: Callable[[], None]):
        self.runner = runner
        self.end = end
        self.on_grant = on_grant
        self.n_ungranted = 0

    async def open(self) -> Slot | None:
        """A slot, or None when the study ends while it waits for one."""
        granted = False

        def on_grant() -> None:
            nonlocal granted
            if not granted:
                granted = True
                self.n_ungranted -= 1
            self.on_grant()

        self.n_ungranted += 1
        try:
            return await self._wait(on_grant)
        finally:
            if not granted:
                self.n_ungranted -= 1

    async def _wait(self, on_grant: Callable[[], None]) -> Slot | None:
        opening = asyncio.ensure_future(self.runner.open_slot(on_grant=on_grant))
        finished = asyncio.ensure_future(self.end.asked.wait())
        try:
            await asyncio.wait({opening, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.wait({opening})
        if opening.cancelled():
            return None
        slot = opening.result()
        if self.end.reason is not None:
            await self.runner.release_slot(slot, healthy=True)
            return None
        self.on_grant()
        return slot

    async def back_off(self, in_a_row: int) -> None:
        """Wait after `in_a_row` slots failed to start, for a pause that grows with them,
        or until the study ends."""
        pause = min(_BACKOFF_S * 2 ** (in_a_row - 1), _BACKOFF_MAX_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.end.asked.wait(), pause)
