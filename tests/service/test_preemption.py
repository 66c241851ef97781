"""Which busy slot yields to a study that waited: priorities within a tenant, shares
between tenants (never back and forth), and room on the slot's node."""

from __future__ import annotations

from service.fair_share import Shape, TenantPolicy, TenantUse
from service.preemption import BusySlot, Waiter, pick_victim

CPU = Shape.of(1, 0)
TOTAL = Shape.of(4, 0)
FULL = {"n1": Shape.of(0, 0), "n2": Shape.of(0, 0)}


def busy(slot_id: int, study_id: int, tenant: str, *, priority: int = 0, node: str = "n1",
         shape: Shape = CPU, granted_at: float = 0.0) -> BusySlot:  # fmt: skip
    return BusySlot(slot_id, node, shape, study_id, tenant, priority, granted_at)


def use(**held_cpus: int) -> dict[str, TenantUse]:
    return {t: TenantUse(held=Shape.of(n, 0)) for t, n in held_cpus.items()}


def test_within_a_tenant_only_a_lower_priority_study_yields_the_newest_trial_first() -> None:
    slots = [busy(1, 10, "a", priority=0, granted_at=1.0), busy(2, 10, "a", granted_at=5.0),
             busy(3, 11, "a", priority=5), busy(4, 12, "a", priority=9)]  # fmt: skip
    waiter = Waiter(20, "a", 5, CPU)
    assert pick_victim(waiter, slots, FULL, use(a=4), TOTAL, TenantPolicy()) == 2
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
    assert pick_victim(waiter, slots, FULL, use(a=2), TOTAL, TenantPolicy(),
                       granted_before=90.0) == 2  # fmt: skip
    assert pick_victim(waiter, slots, FULL, use(a=2), TOTAL, TenantPolicy(),
                       granted_before=40.0) is None  # fmt: skip
