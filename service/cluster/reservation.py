"""Keeping a node for a wide study: pure rules over facts the scheduler hands in.

When the study first in the grant order fits nowhere, and no single running trial's end
would make it fit (`Placement.needs_reservation`), trials ending one by one would each be
taken by smaller shapes and the wide study would wait for ever. So the node closest to
fitting it is kept for it: nothing else is placed there, its idle slots that hold room in
Ray end (a reshapeable one holds none, and may serve the study once its room is free),
and the study stays first in the order until it is served there. The node stays kept
while part of it has drained: one more trial's end would then make room, but only if the
freed part is not handed to a smaller shape meanwhile. The reservation ends with the
study's wait, or when it fits somewhere.

With HPO_PREEMPT_AFTER_S set, the trials on the kept node yield at their next epoch once
the study has waited that long, plus an actor's start unless a slot there serves its
shape in its own process: no single slot there would make room for it (so
`preemption.pick_victim` takes none), and waiting for the last of them to end left part
of the node idle for 30-40 s in bench/shared_cluster.py. A slot of the study's own tenant
with a priority at least its own is left alone, and none is taken within preempt_after_s
of its grant.

Nothing here reads a clock or starts, ends or asks anything: the scheduler
(`service/cluster/scheduler.py`) passes in the state and the time, and carries out the
decisions that come back.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from service.cluster.fair_share import ZERO, Shape, serves
from service.cluster.placement import Placement
from service.cluster.preemption import Waiter


@dataclass(frozen=True)
class Reservation:
    """Node `node_id` is kept for study `study_id`."""

    study_id: int
    node_id: str


@dataclass(frozen=True)
class KeptNode:
    """The reservation after a blocked head of the queue was looked at, and the idle
    slots on its node to end (they hold room in Ray the study needs)."""

    reservation: Reservation | None
    end: tuple[int, ...] = ()


@dataclass(frozen=True)
class NodeSlot:
    """A slot on the kept node, as the clearing rule sees it; `tenant` is None while idle."""

    slot_id: int
    shape: Shape
    reserved: Shape
    tenant: str | None = None
    priority: int = 0
    granted_at: float = 0.0
    yielding: bool = False


def standing(reservation: Reservation | None, waiting: Collection[int]) -> Reservation | None:
    """The reservation while its study is among `waiting` (the eligible studies that
    still wait for a slot); None once that wait has ended."""
    if reservation is None or reservation.study_id not in waiting:
        return None
    return reservation


def keep_node(
    reservation: Reservation | None, study_id: int, shape: Shape, placement: Placement
) -> KeptNode:
    """Keep a node for `study_id`, first in the order and placed nowhere, when it needs
    one: the node it already holds, else the one closest to fitting `shape`."""
    holds = (
        reservation is not None
        and reservation.study_id == study_id
        and reservation.node_id in placement.capacity
    )
    if not holds and not placement.needs_reservation(shape):
        return KeptNode(None)
    if not holds:
        node_id = placement.closest_node(shape)
        reservation = Reservation(study_id, node_id) if node_id else None
    if reservation is None:
        return KeptNode(None)
    end = tuple(
        s.slot_id
        for s in placement.slots
        if s.node_id == reservation.node_id and not s.busy and s.reserved != ZERO
    )
    return KeptNode(reservation, end)


def clearing_yields(
    study: Waiter,
    waited_s: float,
    slots: Iterable[NodeSlot],
    *,
    now: float,
    preempt_after_s: float,
    actor_start_s: float,
) -> list[int]:
    """The busy slots on the kept node that yield to `study`, which has waited
    `waited_s`, at monotonic time `now`; none before preempt_after_s (plus
    `actor_start_s` when no slot there serves its shape in its own process)."""
    on_node = list(slots)
    reused = any(serves(s.shape, s.reserved, study.shape) for s in on_node)
    if waited_s < preempt_after_s + (0.0 if reused else actor_start_s):
        return []
    cutoff = now - preempt_after_s
    return [s.slot_id for s in on_node if _yields(s, study, cutoff)]


def _yields(slot: NodeSlot, study: Waiter, cutoff: float) -> bool:
    if slot.tenant is None or slot.yielding or slot.granted_at >= cutoff:
        return False
    return slot.tenant != study.tenant or slot.priority < study.priority
