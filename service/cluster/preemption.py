"""Which running trial yields its slot to a study that has waited too long: pure rules.

Only with `HPO_PREEMPT_AFTER_S` set. A study that has waited that long may take a
busy slot whose room would let its trial fit, from a study of its own tenant with a
lower `priority`, or from another tenant that would still rank at least as high as
the waiting tenant after the move (the rank `fair_share.grant_order` uses: virtual
service plus what is held). Right after a move the move back fails that test; a slot
moves back only once its new holder has been served more, and no slot is taken within
HPO_PREEMPT_AFTER_S of its grant, so nothing moves in circles. The trial yields at its
next epoch boundary, with a checkpoint, and resumes when its study is granted a slot
again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from service.cluster.fair_share import Shape, TenantPolicy, TenantUse, serves


@dataclass(frozen=True)
class BusySlot:
    slot_id: int
    node_id: str
    shape: Shape
    study_id: int
    tenant: str
    priority: int
    granted_at: float
    reserved: Shape | None = None  # what Ray holds for the slot; None: its shape

    def serves(self, shape: Shape) -> bool:
        """Whether the slot, once yielded, runs a trial of `shape` in the same process."""
        return serves(self.shape, self.shape if self.reserved is None else self.reserved, shape)


@dataclass(frozen=True)
class Waiter:
    study_id: int
    tenant: str
    priority: int
    shape: Shape


def pick_victim(
    waiter: Waiter,
    busy: list[BusySlot],
    free: Mapping[str, Shape],
    use: Mapping[str, TenantUse],
    total: Shape,
    policy: TenantPolicy,
    *,
    granted_before: float = float("inf"),
    other_shapes: bool = True,
) -> int | None:
    """The slot to take for `waiter`, or None: one that serves the waiter's shape first
    (it is handed over as it is: the same shape, or a reshapeable CPU-only slot for a
    CPU-only waiter; for another, its actor must end and a new one start, which took
    7 to 25 s on a busy node in bench/shared_cluster.py), then the most over-share
    tenant's, then the lowest priority, then the slot serving longest: a yield loses no
    training (the trial resumes from its checkpoint), only a restart, so restarts are
    spread rather than hitting the trial that just resumed again and again.

    Only slots granted before `granted_before` are taken: a slot just handed over (a
    preempted trial resuming, too) trains a while first, so nothing moves in circles.
    With `other_shapes` False only slots that serve the waiter's shape are: the scheduler
    allows a move that needs a new actor only once the waiter has waited longer than an
    actor takes to start, since a move that saves less wait than that costs more than it gives."""

    def rank(tenant: str, held: Shape) -> float:
        return use.get(tenant, TenantUse()).rank(held, total, policy.weight(tenant))

    def held(tenant: str) -> Shape:
        return use[tenant].held if tenant in use else Shape(0, 0)

    best: tuple[tuple[bool, float, int, float], int] | None = None
    for slot in busy:
        if slot.study_id == waiter.study_id or slot.node_id not in free:
            continue
        same_process = slot.serves(waiter.shape)
        if slot.granted_at >= granted_before or (not other_shapes and not same_process):
            continue
        if not waiter.shape.fits_in(free[slot.node_id] + slot.shape):
            continue
        if slot.tenant == waiter.tenant:
            if slot.priority >= waiter.priority:
                continue
            over = 0.0
        else:
            theirs = rank(slot.tenant, held(slot.tenant) - slot.shape)
            # At most level after the move: then the move back would not be (theirs
            # before it < ours after it), so a slot never moves back and forth.
            if rank(waiter.tenant, held(waiter.tenant) + waiter.shape) > theirs:
                continue
            over = theirs
        key = (not same_process, -over, slot.priority, slot.granted_at)
        if best is None or key < best[0]:
            best = (key, slot.slot_id)
    return None if best is None else best[1]
