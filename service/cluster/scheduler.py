"""The cluster's one slot scheduler: every trial slot is granted here, and nowhere else.

Studies never ask Ray for a slot on their own. A driver calls `acquire` for each
trial it wants to run and `release` when the trial ends; the scheduler sees the whole
demand at once, and hands a free slot to the most deserving waiting study
(`fair_share.grant_order`: the tenant least served over time, then priority, then
age). Shares therefore move as trials end; a running trial is never killed to
rebalance, and only with HPO_PREEMPT_AFTER_S set does one yield its slot, with a
checkpoint, at an epoch boundary (`service/cluster/yield_requests.py`).

This module is the grant loop: each pass (one per loop turn that changed something)
grants slots in that order while any fits, then asks for yields, trims the idle slots
and publishes what readers see. To grant one it takes, in turn, an idle slot that
serves the study's shape, free room on a node, or room that idle slots of other shapes
hold (`service/cluster/placement.py`); the slots themselves live in
`service/cluster/slot_pool.py`, which counts what they hold per node, so no Ray request
is made that cannot be placed and idle actors never block a waiting study.

No mix of shapes can starve: when the most deserving study fits nowhere, a node is kept
for it (`service/cluster/reservation.py`) until its running trials end and it fits.
Nodes are re-read from Ray every `refresh_s`, so a node that joins is used at once and
slots on a node that left are forgotten; waiting demand that fits nowhere is told to
Ray's autoscaler.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from service.cluster.autoscaler_requests import AutoscalerRequests
from service.cluster.cluster_nodes import ClusterNodes
from service.cluster.cluster_view import ClusterSnapshot, QueueInfo
from service.cluster.fair_share import Shape, TenantPolicy
from service.cluster.grant_holds import GrantHolds
from service.cluster.placement import Placement, refusal
from service.cluster.reservation import Reservation, keep_node, standing
from service.cluster.scheduler_state import SlotState, StudyState, queue_infos, snapshot_of
from service.cluster.slot_contract import Lease, SlotBackend, StudyDemand
from service.cluster.slot_pool import SlotPool
from service.cluster.study_book import StudyBook
from service.cluster.yield_requests import YieldRequests

log = logging.getLogger(__name__)


class SlotScheduler:
    """Owns the cluster's trial slots; use it from the service's event loop only."""

    def __init__(
        self,
        backend: SlotBackend,
        policy: TenantPolicy | None = None,
        *,
        max_idle: int = 2,
        refresh_s: float = 1.0,
        on_wait: Callable[[float], None] | None = None,
        preempt_after_s: float | None = None,
        reshape_cpu_slots: bool = True,
        clock: Callable[[], float] = time.monotonic,
        utc_now: Callable[[], datetime] | None = None,
    ):
        # The clocks are parameters so that tests can drive shares and waits in simulated
        # time: measured on a busy machine, they would check its speed, not the rules.
        self._clock = clock
        self._utc_now = utc_now or _now
        self._book = StudyBook(policy or TenantPolicy(), clock=clock)
        self._pool = SlotPool(
            backend, max_idle=max_idle, reshape_cpu_slots=reshape_cpu_slots, clock=clock
        )
        self._yields = YieldRequests(
            self._pool, self._book, preempt_after_s=preempt_after_s, clock=clock
        )
        self._nodes = ClusterNodes(backend, refresh_s=refresh_s)
        self._on_wait = on_wait
        self._reservation: Reservation | None = None
        self._holds = GrantHolds(self._kick, clock=clock)
        self._kicked = False
        self._closed = False
        self._autoscaler_requests = AutoscalerRequests(backend)
        self._snapshot = ClusterSnapshot([], [], [], [], None)
        self._positions: dict[int, QueueInfo] = {}

    @property
    def policy(self) -> TenantPolicy:
        return self._book.policy

    @property
    def n_preempted(self) -> int:
        """How many times a busy slot was asked to yield."""
        return self._yields.n_preempted

    @property
    def actor_start_s(self) -> float:
        """Moving average of how long a slot started for a grant took to answer."""
        return self._pool.actor_start_s

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Read the cluster's nodes, then follow them every `refresh_s`."""
        await self.refresh()
        self._nodes.follow(self.refresh)

    async def close(self) -> None:
        """End every slot; studies still waiting get a RuntimeError."""
        self._closed = True
        await self._nodes.stop()
        self._book.fail_waiting(RuntimeError("the slot scheduler has closed"))
        self._pool.end_all()
        await self._autoscaler_requests.close()

    async def refresh(self) -> None:
        """Re-read the nodes; forget slots on nodes that left, use nodes that joined."""
        await self._nodes.read()
        self._pool.autoscaler = self._nodes.autoscaler
        self._book.total = self._nodes.total()
        for slot in self._pool.forget_off(self._nodes.alive()):
            self._book.release(slot)  # lost with its node
            slot.study_id = None
        self._kick()

    def gate(self, study_ids: Iterable[int], *, timeout_s: float = 120.0) -> None:
        """Grant nothing until each study has asked for a slot (or left), or `timeout_s`.

        After a restart the recovered studies get ready in any order; the gate keeps the
        first one ready from taking slots that the queue's order gives to another.
        """
        known = [i for i in study_ids if i in self._book.studies]
        self._holds.gate(known, timeout_s=timeout_s)

    # -- studies ----------------------------------------------------------------------

    def register(self, demand: StudyDemand, *, waiting_since: datetime | None = None) -> None:
        """A study that will ask for slots; it is queued from `waiting_since` (default now)."""
        self._book.register(demand, waiting_since=waiting_since or self._utc_now())
        self._kick()

    def unregister(self, study_id: int) -> None:
        """The study wants no more slots; those it still holds count for its tenant until
        they come back with `release`."""
        study = self._book.studies.get(study_id)
        if study is None:
            return
        self._book.depart(study)
        self._holds.asked(study_id)
        self._kick()

    async def acquire(self, study_id: int) -> Lease:
        """Wait for a slot of the study's shape; cancel the call to stop waiting."""
        waiter = self._book.ask(study_id, now=self._utc_now())
        self._holds.asked(study_id)
        self._kick()
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release(waiter.result(), keep=True)
            raise

    def release(self, lease: Lease, *, keep: bool) -> None:
        """Give a slot back: kept idle for the next grant, or ended when `keep` is False
        (its worker was lost, or its trial was abandoned mid-epoch)."""
        self._yields.withdraw(lease.slot_id)
        slot = self._pool.slots.get(lease.slot_id)
        if slot is None:
            return
        self._book.release(slot)
        self._pool.give_back(slot, keep=keep)
        self._kick()

    def serving(self, lease: Lease) -> None:
        """The lease's slot answers and its trial starts now: preemption counts its time
        held from here, so a slot slow to start is not taken before its trial trains."""
        slot = self._pool.slots.get(lease.slot_id)
        if slot is not None and slot.study_id is not None:
            self._pool.serving(slot)

    def should_yield(self, lease: Lease) -> bool:
        """Whether the lease's trial should stop at its next epoch boundary and give the
        slot back (preemption, see `service/cluster/yield_requests.py`)."""
        return self._yields.asked(lease.slot_id)

    def prewarm(self, shape: Shape, n: int) -> None:
        """Start idle slots of `shape` until `n` (at most max_idle) serve it (`SlotPool`)."""
        self._pool.prewarm(shape, n, self._placement())

    # -- what users see ---------------------------------------------------------------

    def check_fits(self, tenant: str, shape: Shape) -> tuple[str, str] | None:
        """(field, message) when one trial of `shape` could never run for `tenant`: over
        its quota, or bigger than every node while no autoscaler can add a bigger one."""
        return refusal(shape, tenant, self.policy, self._nodes.largest_possible())

    def queue_info(self, study_id: int) -> QueueInfo | None:
        """The study's place in the queue as of the last pass; safe from any thread."""
        return self._positions.get(study_id)

    def snapshot(self) -> ClusterSnapshot:
        """Nodes, slots, tenants and the queue as of the last pass (`GET /api/v1/cluster`,
        Prometheus); safe from any thread."""
        return self._snapshot

    def _publish(self) -> None:
        """Freeze what readers in other threads see; run at the end of every pass."""
        book = self._book
        self._snapshot = snapshot_of(
            nodes=list(self._nodes.by_id.values()),
            slots=list(self._pool.slots.values()),
            studies=book.studies,
            queue=book.queue(),
            use=book.use,
            policy=book.policy,
            reserved_node=self._reservation.node_id if self._reservation else None,
        )
        self._positions = queue_infos(self._snapshot, book.studies)

    # -- granting ---------------------------------------------------------------------

    def _kick(self) -> None:
        """Run a pass soon; several changes in one loop turn share a pass."""
        if not self._kicked and not self._closed:
            self._kicked = True
            asyncio.get_running_loop().call_soon(self._pass)

    def _pass(self) -> None:
        self._kicked = False
        if self._closed:
            return
        self._book.advance()
        if not self._holds.gated:
            while self._grant_one():
                pass
            self._yields.ask(self._placement(), self._reservation, self._utc_now())
        self._pool.trim_idle()
        self._autoscaler_requests.update(self._pool.busy_shapes(), self._book.unmet())
        self._publish()

    def _grant_one(self) -> bool:
        """Grant one slot to the most deserving study that can have one now.

        A study still getting ready holds back the grants to those after it in the order
        (`grant_holds.py`). When the first study in the order fits nowhere, and no single
        running trial's end would make it fit, a node is kept for it (`reservation.py`);
        the study stays first until it is served there, even if others come to rank
        before it meanwhile, so the room held back for it is not held back for nothing.
        """
        now = self._clock()
        eligible = self._in_grant_order(now)
        if not eligible:
            return False
        placement = self._placement()
        head = eligible[0]
        if head.getting_ready(now):
            self._holds.hold_for(head)
            return False
        plan = placement.plan(head.demand.study_id, head.demand.shape, blocked=set())
        if plan is not None:
            self._reservation = None
            self._grant(head, self._pool.carry_out(plan, head.demand.shape))
            return True
        self._keep_node_for(head, placement)
        blocked = {self._reservation.node_id} if self._reservation else set()
        for study in eligible[1:]:
            if study.getting_ready(now):
                self._holds.hold_for(study)
                return False
            plan = placement.plan(study.demand.study_id, study.demand.shape, blocked=blocked)
            if plan is not None:
                self._grant(study, self._pool.carry_out(plan, study.demand.shape))
                return True
        return False

    def _in_grant_order(self, now: float) -> list[StudyState]:
        """The studies that may be granted a slot now, in grant order but for the one a
        node is kept for, which comes first while it still waits."""
        eligible = self._book.eligible(now)
        waiting = {s.demand.study_id for s in eligible if s.live_waiters()}
        self._reservation = standing(self._reservation, waiting)
        if self._reservation is None:
            return eligible
        kept = next(s for s in eligible if s.demand.study_id == self._reservation.study_id)
        return [kept, *(s for s in eligible if s is not kept)]

    def _keep_node_for(self, head: StudyState, placement: Placement) -> None:
        """Reserve a node for the blocked head of the queue when it needs one, and end the
        idle slots there that hold room in Ray (`reservation.keep_node`)."""
        kept = keep_node(self._reservation, head.demand.study_id, head.demand.shape, placement)
        self._reservation = kept.reservation
        for slot_id in kept.end:
            self._pool.end(self._pool.slots[slot_id])

    def _grant(self, study: StudyState, slot: SlotState) -> None:
        waiter, since = study.waiters.popleft()
        # Not serving until its actor answers (`serving`): preemption never takes it before.
        slot.study_id, slot.granted_at = study.demand.study_id, math.inf
        self._book.hold(study, slot)
        waiter.set_result(Lease(slot.id, slot.actor, slot.node_id, slot.shape))
        if not study.live_waiters():
            study.waiting_since = None
        if self._on_wait is not None:
            self._on_wait(self._clock() - since)

    def _placement(self) -> Placement:
        return self._pool.placement(self._nodes.by_id.values())


def _now() -> datetime:
    return datetime.now(UTC)
