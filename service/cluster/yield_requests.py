"""Which running trials were asked to give their slot back, and the pass that asks them.

Only with HPO_PREEMPT_AFTER_S set. Each pass, a study that has waited that long, in
grant order, gets one busy slot asked to yield for it (`preemption.pick_victim`) while
none is yielding to it yet; the trials on a node kept for a wide study yield by the
reservation's own rule (`reservation.clearing_yields`). A trial asked to yield stops at
its next epoch boundary, with a checkpoint; when the study it yields to is served
another way, or leaves, the request is withdrawn and the trial goes on.

A slot that cannot serve the waiting study's shape in its own process (another GPU
shape, say) is taken only after the study has waited as long again as a new slot's
actor takes to start (`SlotPool.actor_start_s`, measured): sooner, a trial ending on
its own would likely have served it at no cost, while the move ends one actor and
starts another (7 to 25 s on this benchmark's busy nodes, bench/README.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from service.cluster.placement import Placement
from service.cluster.preemption import BusySlot, Waiter, pick_victim
from service.cluster.reservation import NodeSlot, Reservation, clearing_yields
from service.cluster.scheduler_state import StudyState
from service.cluster.slot_pool import SlotPool
from service.cluster.study_book import StudyBook

log = logging.getLogger(__name__)


class YieldRequests:
    """Slot id -> the waiting study it yields to, over the scheduler's pool and book."""

    def __init__(
        self,
        pool: SlotPool,
        book: StudyBook,
        *,
        preempt_after_s: float | None,
        clock: Callable[[], float],
    ) -> None:
        self._pool = pool
        self._book = book
        self._preempt_after_s = preempt_after_s
        self._clock = clock
        self.to: dict[int, int] = {}
        self.n_preempted = 0

    def asked(self, slot_id: int) -> bool:
        return slot_id in self.to

    def withdraw(self, slot_id: int) -> None:
        """The slot came back (or was lost): no yield is pending for it any more."""
        self.to.pop(slot_id, None)

    def ask(self, placement: Placement, reservation: Reservation | None, now: datetime) -> None:
        """Ask for the yields that waits past preempt_after_s call for, at UTC `now`."""
        if self._preempt_after_s is None:
            return
        for slot_id, study_id in list(self.to.items()):
            target = self._book.studies.get(study_id)
            if target is None or not target.live_waiters():
                del self.to[slot_id]  # it was served, or left: the trial goes on
        if reservation is not None:
            self._clear_kept_node(reservation, now, self._preempt_after_s)
        yielding_to = set(self.to.values())
        for study in self._book.queue():
            sid = study.demand.study_id
            waited_s = _waited_s(study, now)
            if waited_s < self._preempt_after_s or sid in yielding_to:
                continue
            if not study.live_waiters() or not self._book.within_quota(study):
                continue
            victim = pick_victim(
                _waiter(study),
                self._busy_slots(),
                placement.free,
                self._book.use,
                self._book.total,
                self._book.policy,
                granted_before=self._clock() - self._preempt_after_s,
                other_shapes=waited_s >= self._preempt_after_s + self._pool.actor_start_s,
            )
            if victim is not None:
                self._request(victim, sid, "slot %s yields at its next epoch to study %s")

    def _clear_kept_node(self, kept: Reservation, now: datetime, after_s: float) -> None:
        study = self._book.studies.get(kept.study_id)
        if study is None or study.waiting_since is None or not study.live_waiters():
            return
        slots = [self._node_slot(s.id) for s in self._pool.on_node(kept.node_id)]
        for slot_id in clearing_yields(
            _waiter(study),
            _waited_s(study, now),
            slots,
            now=self._clock(),
            preempt_after_s=after_s,
            actor_start_s=self._pool.actor_start_s,
        ):
            self._request(
                slot_id,
                kept.study_id,
                "slot %s yields at its next epoch: its node is kept for study %s",
            )

    def _request(self, slot_id: int, study_id: int, message: str) -> None:
        self.to[slot_id] = study_id
        self.n_preempted += 1
        log.info(message, slot_id, study_id)

    def _node_slot(self, slot_id: int) -> NodeSlot:
        slot = self._pool.slots[slot_id]
        holder = self._book.holder(slot)
        if holder is None:
            return NodeSlot(slot.id, slot.shape, slot.reserved)
        d = holder.demand
        return NodeSlot(
            slot.id,
            slot.shape,
            slot.reserved,
            d.tenant,
            d.priority,
            slot.granted_at,
            self.asked(slot.id),
        )

    def _busy_slots(self) -> list[BusySlot]:
        busy = []
        for slot in self._pool.slots.values():
            study = self._book.holder(slot)
            if study is None or self.asked(slot.id):
                continue
            d = study.demand
            busy.append(
                BusySlot(
                    slot.id,
                    slot.node_id,
                    slot.shape,
                    d.study_id,
                    d.tenant,
                    d.priority,
                    slot.granted_at,
                    slot.reserved,
                )
            )
        return busy


def _waiter(study: StudyState) -> Waiter:
    d = study.demand
    return Waiter(d.study_id, d.tenant, d.priority, d.shape)


def _waited_s(study: StudyState, now: datetime) -> float:
    since = study.waiting_since
    return (now - since).total_seconds() if since is not None else -1.0
