"""What holds the scheduler's grants back for a while: the gate after a restart, and
studies still getting ready.

After a restart the recovered studies get ready in any order; the gate keeps the first
one ready from taking slots that the queue's order gives to another, until each has
asked for a slot (or left), or a timeout. A study submitted moments ago that is still
getting ready holds back the grants to those after it in the order for READY_GRACE_S
at most: otherwise the first of a burst of submissions to be ready would take the whole
cluster until its trials end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from service.cluster.scheduler_state import READY_GRACE_S, StudyState


class GrantHolds:
    """Holds on the grants; `kick` runs a pass when one ends."""

    def __init__(self, kick: Callable[[], None], *, clock: Callable[[], float]) -> None:
        self._kick = kick
        self._clock = clock
        self._gate: set[int] = set()
        self._held_for: set[int] = set()

    @property
    def gated(self) -> bool:
        return bool(self._gate)

    def gate(self, study_ids: Iterable[int], *, timeout_s: float) -> None:
        """Close the gate until each of `study_ids` has asked (`asked`), or `timeout_s`."""
        self._gate = set(study_ids)
        if self._gate:
            asyncio.get_running_loop().call_later(timeout_s, self._open_gate)

    def asked(self, study_id: int) -> None:
        """The study asked for a slot, or left: the gate no longer waits for it."""
        self._gate.discard(study_id)

    def hold_for(self, study: StudyState) -> None:
        """Look again when the study's grace ends (it kicks a pass itself when it asks)."""
        if study.demand.study_id not in self._held_for:
            self._held_for.add(study.demand.study_id)
            delay = max(0.0, study.registered + READY_GRACE_S - self._clock())
            asyncio.get_running_loop().call_later(delay, self._end_hold, study.demand.study_id)

    def _open_gate(self) -> None:
        self._gate.clear()
        self._kick()

    def _end_hold(self, study_id: int) -> None:
        self._held_for.discard(study_id)
        self._kick()
