"""Keeping a node for a wide study, as pure rules: which node is kept, when the
reservation ends, and which slots on it yield (and when)."""

from __future__ import annotations

from service.cluster.fair_share import ZERO, Shape
from service.cluster.placement import Placement, SlotFacts
from service.cluster.preemption import Waiter
from service.cluster.reservation import (
    KeptNode,
    NodeSlot,
    Reservation,
    clearing_yields,
    keep_node,
    standing,
)

WIDE = Shape.of(8, 0)
AFTER_S = 10.0
NOW = 100.0


def cpus(n: float) -> Shape:
    return Shape.of(n, 0)


def fact(
    slot_id: int, node: str, shape: Shape, *, busy: bool = True, reserved: Shape | None = None
) -> SlotFacts:
    return SlotFacts(slot_id, node, shape, busy, None, 0.0, shape if reserved is None else reserved)


def placement(*slots: SlotFacts) -> Placement:
    return Placement({"n1": cpus(8), "n2": cpus(8)}, list(slots), gpu_nodes=set())


def crowded() -> Placement:
    """Both nodes full of narrow trials: no single trial's end lets WIDE fit anywhere.
    n1 is closer to fitting: an idle slot there holds 2 CPUs that ending it frees."""
    return placement(
        fact(1, "n1", cpus(4)),
        fact(2, "n1", cpus(2)),
        fact(3, "n1", cpus(2), busy=False),  # idle, holds its 2 CPUs in Ray
        fact(4, "n1", cpus(1), busy=False, reserved=ZERO),  # idle, reshapeable: holds none
        fact(5, "n2", cpus(4)),
        fact(6, "n2", cpus(4)),
    )


def test_the_node_closest_to_fitting_is_kept_and_its_idle_slots_holding_room_end() -> None:
    assert keep_node(None, 7, WIDE, crowded()) == KeptNode(Reservation(7, "n1"), end=(3,))


def test_no_node_is_kept_while_one_running_trials_end_would_make_room() -> None:
    room_after_one_end = placement(fact(1, "n1", cpus(6)), fact(2, "n2", cpus(8)))
    assert keep_node(None, 7, WIDE, room_after_one_end) == KeptNode(None)


def test_a_kept_node_stays_kept_for_its_study_once_partly_drained() -> None:
    # n1 has drained to one running trial: its end would make room, so a new head would
    # get no reservation; the study it is kept for keeps it, lest the room be refilled.
    drained = placement(fact(1, "n1", cpus(4)), fact(5, "n2", cpus(4)), fact(6, "n2", cpus(4)))
    kept = Reservation(7, "n1")
    assert keep_node(kept, 7, WIDE, drained) == KeptNode(kept)
    assert keep_node(kept, 8, WIDE, drained) == KeptNode(None)


def test_a_reservation_on_a_node_that_left_or_for_another_study_is_chosen_again() -> None:
    assert keep_node(Reservation(7, "gone"), 7, WIDE, crowded()).reservation == Reservation(7, "n1")
    assert keep_node(Reservation(9, "n2"), 7, WIDE, crowded()).reservation == Reservation(7, "n1")


def test_no_node_is_kept_for_a_shape_bigger_than_every_node() -> None:
    assert keep_node(None, 7, cpus(16), crowded()) == KeptNode(None)


def test_the_reservation_ends_with_its_studys_wait() -> None:
    kept = Reservation(7, "n1")
    assert standing(kept, {7, 8}) == kept
    assert standing(kept, {8}) is None  # served, left, or over its quota
    assert standing(None, {7}) is None


STUDY = Waiter(7, "a", 1, WIDE)
START_S = 5.0  # how long a new slot's actor takes to start


def on_node(*, reshapeable: bool = False) -> list[NodeSlot]:
    slots = [
        NodeSlot(1, cpus(2), cpus(2), "b", priority=9, granted_at=0.0),
        NodeSlot(2, cpus(2), cpus(2), "a", priority=0, granted_at=0.0),
        NodeSlot(3, cpus(2), cpus(2), "a", priority=1, granted_at=0.0),  # = the study's
        NodeSlot(4, cpus(2), cpus(2), "b", granted_at=NOW - AFTER_S + 1),  # granted lately
        NodeSlot(5, cpus(2), cpus(2), "b", granted_at=0.0, yielding=True),
        NodeSlot(6, cpus(2), cpus(2)),  # idle
    ]
    if reshapeable:
        slots.append(NodeSlot(7, cpus(1), ZERO))  # idle; serves WIDE in its own process
    return slots


def yields(waited_s: float, slots: list[NodeSlot]) -> list[int]:
    return clearing_yields(
        STUDY, waited_s, slots, now=NOW, preempt_after_s=AFTER_S, actor_start_s=START_S
    )


def test_slots_on_the_kept_node_yield_once_the_study_waited_preempt_after_plus_a_start() -> None:
    assert yields(AFTER_S + START_S - 0.1, on_node()) == []
    # Another tenant's, whatever its priority, and its own tenant's of lower priority;
    # not one granted within preempt_after_s, one yielding already, or an idle one.
    assert yields(AFTER_S + START_S, on_node()) == [1, 2]


def test_with_a_slot_there_that_serves_the_shape_no_actor_start_is_waited_for() -> None:
    assert yields(AFTER_S - 0.1, on_node(reshapeable=True)) == []
    assert yields(AFTER_S, on_node(reshapeable=True)) == [1, 2]


def test_its_own_tenants_slots_of_at_least_its_priority_are_left_alone() -> None:
    own = [NodeSlot(p + 1, cpus(2), cpus(2), "a", priority=p) for p in (0, 1, 2)]
    assert yields(60.0, own) == [1]
