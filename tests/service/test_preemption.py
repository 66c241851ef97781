"""Which busy slot yields to a study that waited: priorities within a tenant, shares
between tenants (never back and forth), and room on the slot's node."""

from __future__ import annotations

from service.cluster.fair_share import Shape, TenantPolicy, TenantUse
from service.cluster.preemption import BusySlot, Waiter, pick_victim

CPU = Shape.of(1, 0)
TOTAL = Shape.of(4, 0)
FULL = {"n1": Shape.of(0, 0), "n2": Shape.of(0, 0)}


def busy(
    slot_id: int,
    study_id: int,
    tenant: str,
    *,
    priority: int = 0,
    node: str = "n1",
    shape: Shape = CPU,
    granted_at: float = 0.0,
) -> BusySlot:
    return BusySlot(slot_id, node, shape, study_id, tenant, priority, granted_at)


def use(**held_cpus: int) -> dict[str, TenantUse]:
    return {t: TenantUse(held=Shape.of(n, 0)) for t, n in held_cpus.items()}


def test_within_a_tenant_only_a_lower_priority_study_yields_the_longest_serving_slot_first() -> (
    None
):
    slots = [
        busy(1, 10, "a", priority=0, granted_at=1.0),
        busy(2, 10, "a", granted_at=5.0),
        busy(3, 11, "a", priority=5),
        busy(4, 12, "a", priority=9),
    ]
    waiter = Waiter(20, "a", 5, CPU)
    assert pick_victim(waiter, slots, FULL, use(a=4), TOTAL, TenantPolicy()) == 1
    equal = Waiter(20, "a", 0, CPU)
    assert pick_victim(equal, slots, FULL, use(a=4), TOTAL, TenantPolicy()) is None


def test_between_tenants_a_slot_moves_only_toward_the_fair_share() -> None:
    policy = TenantPolicy()
    three_to_one = [busy(1, 10, "a"), busy(2, 10, "a"), busy(3, 10, "a"), busy(4, 11, "b")]
    waiter_b = Waiter(12, "b", 0, CPU)
    # b holds 1 of 4: taking one of a's 3 leaves 2 and 2.
    assert pick_victim(waiter_b, three_to_one, FULL, use(a=3, b=1), TOTAL, policy) in {1, 2, 3}
    even = [busy(1, 10, "a"), busy(2, 10, "a"), busy(3, 11, "b"), busy(4, 11, "b")]
    # 2 and 2 already: moving one would make b the richer one, so nothing yields.
    assert pick_victim(waiter_b, even, FULL, use(a=2, b=2), TOTAL, policy) is None
    # A weight of 3 for b makes 1 of 4 slots less than its share, 3 of 4 not more.
    weighted = TenantPolicy.parse("b:3")
    assert pick_victim(waiter_b, even, FULL, use(a=2, b=2), TOTAL, weighted) in {1, 2}


def test_a_slot_yields_only_where_its_room_fits_the_waiting_trial() -> None:
    slots = [busy(1, 10, "a", node="n1"), busy(2, 10, "a", node="n2")]
    two_cpus = Waiter(20, "a", 5, Shape.of(2, 0))
    free = {"n1": Shape.of(0, 0), "n2": Shape.of(1, 0)}
    assert pick_victim(two_cpus, slots, free, use(a=2), TOTAL, TenantPolicy()) == 2
    assert pick_victim(two_cpus, slots, FULL, use(a=2), TOTAL, TenantPolicy()) is None


def test_a_slot_granted_moments_ago_trains_before_it_can_yield() -> None:
    slots = [busy(1, 10, "a", granted_at=100.0), busy(2, 10, "a", granted_at=50.0)]
    waiter = Waiter(20, "a", 5, CPU)
    assert (
        pick_victim(waiter, slots, FULL, use(a=2), TOTAL, TenantPolicy(), granted_before=110.0) == 2
    )
    assert (
        pick_victim(waiter, slots[:1], FULL, use(a=2), TOTAL, TenantPolicy(), granted_before=110.0)
        == 1
    )
    assert (
        pick_victim(waiter, slots[:1], FULL, use(a=2), TOTAL, TenantPolicy(), granted_before=90.0)
        is None
    )
    assert (
        pick_victim(waiter, slots, FULL, use(a=2), TOTAL, TenantPolicy(), granted_before=40.0)
        is None
    )


def served(virtual: float, cpus: int) -> TenantUse:
    return TenantUse(held=Shape.of(cpus, 0), virtual=virtual)


def test_a_wide_slot_yields_once_its_tenant_has_been_served_more_over_time() -> None:
    # b holds 2 of 4 CPUs, a and c 1 each: at equal service, taking b's slot for a
    # would leave b below a, so nothing moves yet.
    slots = [
        busy(1, 10, "a", node="n1"),
        busy(2, 20, "b", node="n2", shape=Shape.of(2, 0)),
        busy(3, 30, "c", node="n1"),
    ]
    waiter_a = Waiter(11, "a", 0, CPU)
    level = {"a": served(10.0, 1), "b": served(10.0, 2), "c": served(10.0, 1)}
    assert pick_victim(waiter_a, slots, FULL, level, TOTAL, TenantPolicy()) is None
    # After b held twice a's share for 20 s more (0.25 share-s/s ahead), it gives back.
    ahead = {"a": served(15.0, 1), "b": served(20.0, 2), "c": served(15.0, 1)}
    assert pick_victim(waiter_a, slots, FULL, ahead, TOTAL, TenantPolicy()) == 2


def test_a_moved_slot_moves_back_only_after_its_new_holder_is_served_more() -> None:
    slots = [busy(1, 10, "a"), busy(2, 10, "a")]
    waiter_b = Waiter(20, "b", 0, Shape.of(1, 0))
    # Just after b lost a slot to a: a holds 2, b 0, and a is the less served.
    after_move = {"a": served(4.0, 2), "b": served(6.0, 0)}
    assert pick_victim(waiter_b, slots, FULL, after_move, TOTAL, TenantPolicy()) is None
    # a has since held half the cluster for 8 s more: b takes one back.
    later = {"a": served(8.0, 2), "b": served(6.0, 0)}
    assert pick_victim(waiter_b, slots, FULL, later, TOTAL, TenantPolicy()) in {1, 2}


def test_a_slot_of_the_waiters_own_shape_yields_first_it_needs_no_new_actor() -> None:
    half = Shape.of(0.5, 0)
    slots = [
        busy(1, 10, "a", node="n1", shape=Shape.of(2, 0), granted_at=1.0),
        busy(2, 11, "b", node="n2", shape=half, granted_at=9.0),
        busy(3, 11, "b", node="n2", shape=Shape.of(1.5, 0), granted_at=2.0),
    ]
    waiter = Waiter(20, "c", 0, half)
    # a holds more than b, but b's half-CPU slot is handed over as it is.
    held = {"a": served(2.0, 2), "b": served(1.0, 2), "c": served(0.0, 0)}
    assert pick_victim(waiter, slots, FULL, held, TOTAL, TenantPolicy()) == 2
    # Without a slot of its shape, the most over-share tenant's goes.
    assert pick_victim(waiter, [slots[0], slots[2]], FULL, held, TOTAL, TenantPolicy()) == 1


def test_only_a_slot_of_the_waiters_shape_yields_while_other_shapes_are_held_back() -> None:
    half = Shape.of(0.5, 0)
    slots = [busy(1, 10, "a", node="n1", shape=Shape.of(2, 0), granted_at=1.0)]
    waiter = Waiter(20, "a", 5, half)  # same tenant, higher priority: a yield is due
    held = {"a": served(2.0, 2)}
    assert pick_victim(waiter, slots, FULL, held, TOTAL, TenantPolicy()) == 1
    assert pick_victim(waiter, slots, FULL, held, TOTAL, TenantPolicy(), other_shapes=False) is None
    own = [*slots, busy(2, 10, "a", node="n2", shape=half, granted_at=2.0)]
    assert pick_victim(waiter, own, FULL, held, TOTAL, TenantPolicy(), other_shapes=False) == 2
