"""The cluster's one slot scheduler: every trial slot is granted here, and nowhere else.

Studies never ask Ray for a slot on their own. A driver calls `acquire` for each
trial it wants to run and `release` when the trial ends; the scheduler sees the whole
demand at once, and hands a free slot to the most deserving waiting study
(`fair_share.grant_order`: the tenant least served over time, then priority, then
age). Shares therefore move as trials end; a running trial is never killed to
rebalance, and only with HPO_PREEMPT_AFTER_S set does one yield its slot, with a
checkpoint, at an epoch boundary (`service/cluster/preemption.py`).

A slot is a warm actor (`workers.slot.TrialSlot`) pinned to a node. To grant one, the
scheduler takes, in turn: an idle slot that serves the study's shape (the one that
last served the study first: it has its data); free room on a node, where it starts
a new actor pinned to that node; or room that idle slots of other shapes hold, which
it ends first. It counts what its slots hold per node itself, so it never makes a Ray
request that cannot be placed, and idle actors never block a waiting study. CPU-only
slots reserve no CPUs in Ray (unless an autoscaler sizes the cluster by what Ray sees
reserved, or `reshape_cpu_slots` is off): the scheduler's own count keeps their
trials within each node, and an idle one serves any CPU-only shape without a new
process (`service/cluster/placement.py`).

No mix of shapes can starve: when the most deserving study fits nowhere, the node
closest to fitting it is reserved for it (nothing else is placed there and its idle
slots end) until its running trials end and it fits. Nodes are re-read from Ray every
`refresh_s`, so a node that joins is used at once and slots on a node that left are
forgotten; waiting demand that fits nowhere is told to Ray's autoscaler.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from service.cluster.autoscaler_requests import AutoscalerRequests
from service.cluster.cluster_view import ClusterSnapshot, QueueInfo
from service.cluster.fair_share import (
    ZERO,
    Shape,
    TenantPolicy,
    TenantUse,
    dominant_share,
    grant_order,
    serves,
)
from service.cluster.placement import Placement, Plan, SlotFacts, refusal
from service.cluster.preemption import BusySlot, Waiter, pick_victim
from service.cluster.scheduler_state import READY_GRACE_S, SlotState, StudyState, snapshot_of
from service.cluster.slot_contract import Lease, NodeInfo, SlotBackend, StudyDemand

log = logging.getLogger(__name__)


class SlotScheduler:
    """Owns the cluster's trial slots; use it from the service's event loop only."""

    def __init__(
        self, backend: SlotBackend, policy: TenantPolicy | None = None, *, max_idle: int = 2,
        refresh_s: float = 1.0, on_wait: Callable[[float], None] | None = None,
        preempt_after_s: float | None = None, reshape_cpu_slots: bool = True,
        clock: Callable[[], float] = time.monotonic,
        utc_now: Callable[[], datetime] | None = None,
    ):  # fmt: skip
        # The clocks are parameters so that tests can drive shares and waits in simulated
        # time: measured on a busy machine, they would check its speed, not the rules.
        self._clock = clock
        self._utc_now = utc_now or _now
        self._backend = backend
        self.policy = policy or TenantPolicy()
        self._max_idle = max_idle
        self._refresh_s = refresh_s
        self._on_wait = on_wait
        self._nodes: dict[str, NodeInfo] = {}
        self._slots: dict[int, SlotState] = {}
        self._studies: dict[int, StudyState] = {}
        self._use: dict[str, TenantUse] = {}
        self._ids = itertools.count(1)
        self._reservation: tuple[int, str] | None = None
        self._gate: set[int] = set()
        self._held_for: set[int] = set()
        self._kicked = False
        self._closed = False
        self._autoscaler_requests = AutoscalerRequests(backend)
        self._autoscaler = False
        self._refresher: asyncio.Task[None] | None = None
        self._snapshot = ClusterSnapshot([], [], [], [], None)
        self._positions: dict[int, QueueInfo] = {}
        self._preempt_after_s = preempt_after_s
        self._reshape_cpu_slots = reshape_cpu_slots
        self._yielding: dict[int, int] = {}  # slot id -> the waiting study it goes to
        self.n_preempted = 0
        self.actor_start_s = 0.0  # moving average, slots started for a grant until they answer

    # -- life cycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Read the cluster's nodes, then follow them every `refresh_s`."""
        await self.refresh()
        self._refresher = asyncio.create_task(self._follow_nodes(), name="slot-scheduler")

    async def close(self) -> None:
        """End every slot; studies still waiting get a RuntimeError."""
        self._closed = True
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        for study in self._studies.values():
            for waiter, _ in study.waiters:
                if not waiter.done():
                    waiter.set_exception(RuntimeError("the slot scheduler has closed"))
        for slot in self._slots.values():
            self._backend.kill(slot.actor)
        self._slots.clear()
        await self._autoscaler_requests.close()

    async def refresh(self) -> None:
        """Re-read the nodes; forget slots on nodes that left, use nodes that joined."""
        nodes = await asyncio.to_thread(self._backend.nodes)
        self._autoscaler = await asyncio.to_thread(self._backend.has_autoscaler)
        self._nodes = {n.node_id: n for n in nodes}
        for slot in list(self._slots.values()):
            if slot.node_id not in self._alive_nodes():
                self._drop(slot)
        self._kick()

    async def _follow_nodes(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                await self.refresh()
            except Exception:  # noqa: BLE001 - Ray may be restarting; the next read retries
                log.warning("could not read the cluster's nodes", exc_info=True)

    def gate(self, study_ids: Iterable[int], *, timeout_s: float = 120.0) -> None:
        """Grant nothing until each study has asked for a slot (or left), or `timeout_s`.

        After a restart the recovered studies get ready in any order; the gate keeps the
        first one ready from taking slots that the queue's order gives to another.
        """
        self._gate = {i for i in study_ids if i in self._studies}
        if self._gate:
            asyncio.get_running_loop().call_later(timeout_s, self._open_gate)

    def _open_gate(self) -> None:
        self._gate.clear()
        self._kick()

    # -- studies ----------------------------------------------------------------------

    def register(self, demand: StudyDemand, *, waiting_since: datetime | None = None) -> None:
        """A study that will ask for slots; it is queued from `waiting_since` (default now)."""
        self._advance_use()
        active = {s.demand.tenant for s in self._studies.values() if not s.departed}
        use = self._use.setdefault(demand.tenant, TenantUse(updated=self._clock()))
        if demand.tenant not in active and active:
            use.join(min(self._use[t].virtual for t in active))
        self._studies[demand.study_id] = StudyState(
            demand, waiting_since=waiting_since or self._utc_now(), registered=self._clock()
        )
        self._kick()

    def unregister(self, study_id: int) -> None:
        """The study wants no more slots; those it still holds count for its tenant until
        they come back with `release`."""
        study = self._studies.get(study_id)
        if study is None:
            return
        study.departed = True
        for waiter, _ in study.waiters:
            waiter.cancel()
        study.waiters.clear()
        self._gate.discard(study_id)
        self._forget_if_done(study)
        self._kick()

    def _forget_if_done(self, study: StudyState) -> None:
        if study.departed and not study.held:
            self._studies.pop(study.demand.study_id, None)

    async def acquire(self, study_id: int) -> Lease:
        """Wait for a slot of the study's shape; cancel the call to stop waiting."""
        study = self._studies[study_id]
        waiter: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        if not study.live_waiters() and study.waiting_since is None:
            study.waiting_since = self._utc_now()
        study.waiters.append((waiter, self._clock()))
        study.asked = True
        self._gate.discard(study_id)
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
        self._yielding.pop(lease.slot_id, None)
        slot = self._slots.get(lease.slot_id)
        if slot is None:
            return
        study = self._studies.get(slot.study_id) if slot.study_id is not None else None
        if study is not None:
            study.held.discard(slot.id)
            self._account(slot.shape, -1, tenant=study.demand.tenant)
            self._forget_if_done(study)
        slot.last_study, slot.study_id = slot.study_id or slot.last_study, None
        slot.idle_since = self._clock()
        if not keep:
            self._end(slot)
        self._kick()

    def serving(self, lease: Lease) -> None:
        """The lease's slot answers and its trial starts now: preemption counts a slot's
        time held from here, so a slot whose actor took long to start is not taken
        before its trial has trained."""
        slot = self._slots.get(lease.slot_id)
        if slot is not None and slot.study_id is not None:
            slot.granted_at = self._clock()
            if slot.started_for_grant is not None:
                took = slot.granted_at - slot.started_for_grant
                first = self.actor_start_s == 0.0
                self.actor_start_s = took if first else 0.7 * self.actor_start_s + 0.3 * took
                slot.started_for_grant = None

    def should_yield(self, lease: Lease) -> bool:
        """Whether the lease's trial should stop at its next epoch boundary and give the
        slot back (preemption, see `service/cluster/preemption.py`)."""
        return lease.slot_id in self._yielding

    def prewarm(self, shape: Shape, n: int) -> None:
        """Start idle slots of `shape` where there is room, until `n` (at most max_idle)
        idle ones serve it."""
        serving = sum(1 for s in self._slots.values() if s.study_id is None
                      and serves(s.shape, s.reserved, shape))  # fmt: skip
        placement = self._placement()
        for _ in range(min(n, self._max_idle) - serving):
            node = placement.best_fit(shape, blocked=set())
            if node is None:
                return
            self._new_slot(shape, node)
            # Counted as if busy, so warm slots spread over the room their trials will need
            # (a reshapeable idle slot holds none of its own).
            placement.free[node] = placement.free[node] - shape

    # -- what users see ---------------------------------------------------------------

    def check_fits(self, tenant: str, shape: Shape) -> tuple[str, str] | None:
        """(field, message) when one trial of `shape` could never run for `tenant`: over
        its quota, or bigger than every node while no autoscaler can add a bigger one."""
        nodes = [] if self._autoscaler else [n.capacity for n in self._nodes.values() if n.alive]
        return refusal(shape, tenant, self.policy, nodes)

    def queue_info(self, study_id: int) -> QueueInfo | None:
        """The study's place in the queue as of the last pass; safe from any thread."""
        return self._positions.get(study_id)

    def snapshot(self) -> ClusterSnapshot:
        """Nodes, slots, tenants and the queue as of the last pass (`GET /api/v1/cluster`,
        Prometheus); safe from any thread."""
        return self._snapshot

    def _publish(self) -> None:
        """Freeze what readers in other threads see; run at the end of every pass."""
        self._snapshot = self._build_snapshot()
        positions = {q.study_id: q for q in self._snapshot.queue}
        self._positions = {
            study_id: QueueInfo(
                positions[study_id].position if study_id in positions else None,
                positions[study_id].waiting_since if study_id in positions else None,
                len(study.held),
            )
            for study_id, study in self._studies.items()
            if not study.departed
        }

    def _build_snapshot(self) -> ClusterSnapshot:
        return snapshot_of(
            nodes=list(self._nodes.values()), slots=list(self._slots.values()),
            studies=self._studies, queue=self._queue(), use=self._use, policy=self.policy,
            reserved_node=self._reservation[1] if self._reservation else None,
        )  # fmt: skip

    def _queue(self) -> list[StudyState]:
        """Studies that wait for a slot (or, before they first ask, for their first), in
        the order the scheduler would grant them."""
        waiting = {
            s.demand.study_id: s
            for s in self._studies.values()
            if not s.departed and (s.live_waiters() or (not s.asked and not s.held))
        }
        order = grant_order([s.claim() for s in waiting.values()], self._use, self._total(),
                            self.policy)  # fmt: skip
        return [waiting[c.study_id] for c in order]

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
        self._advance_use()
        if not self._gate:
            while self._grant_one():
                pass
            self._preempt()
        self._trim_idle()
        self._tell_autoscaler()
        self._publish()

    def _grant_one(self) -> bool:
        """Grant one slot to the most deserving study that can have one now.

        A study submitted moments ago that is still getting ready holds back the grants
        to those after it in the order (for READY_GRACE_S at most): otherwise the first
        of a burst of submissions to be ready would take the whole cluster until its
        trials end. When the first study in the order fits nowhere, and no single running
        trial's end would make it fit, a node is kept for it (`needs_reservation`); the
        study stays first until it is served there, even if others come to rank before
        it meanwhile, so the room held back for it is not held back for nothing.
        """
        now = self._clock()
        candidates = {
            s.demand.study_id: s for s in self._studies.values()
            if s.live_waiters() or s.getting_ready(now)
        }  # fmt: skip
        order = grant_order([s.claim() for s in candidates.values()], self._use, self._total(),
                            self.policy)  # fmt: skip
        eligible = [candidates[c.study_id] for c in order
                    if self._within_quota(candidates[c.study_id])]  # fmt: skip
        if not eligible:
            self._reservation = None
            return False
        kept = self._reserved_study(eligible)
        if kept is not None:
            eligible = [kept, *(s for s in eligible if s is not kept)]
        placement = self._placement()
        head = eligible[0]
        if head.getting_ready(now):
            return self._hold_for(head)
        plan = placement.plan(head.demand.study_id, head.demand.shape, blocked=set())
        if plan is not None:
            self._reservation = None
            self._grant(head, self._carry_out(plan, head.demand.shape))
            return True
        self._keep_node_for(head, placement)
        blocked = {self._reservation[1]} if self._reservation else set()
        for study in eligible[1:]:
            if study.getting_ready(now):
                return self._hold_for(study)
            plan = placement.plan(study.demand.study_id, study.demand.shape, blocked=blocked)
            if plan is not None:
                self._grant(study, self._carry_out(plan, study.demand.shape))
                return True
        return False

    def _preempt(self) -> None:
        """Ask one busy slot to yield for each study that has waited preempt_after_s,
        in grant order, while none is yielding to it yet. A slot that cannot serve the
        study's shape in its own process (another GPU shape, say) is taken only after
        the study has waited as long again as a new slot's actor takes to start
        (`actor_start_s`, measured): sooner, a trial ending on its own would
        likely have served it at no cost, while the move ends one actor and starts
        another (7 to 25 s on this benchmark's busy nodes, bench/README.md)."""
        if self._preempt_after_s is None:
            return
        for slot_id, sid in list(self._yielding.items()):
            target = self._studies.get(sid)
            if target is None or not target.live_waiters():
                del self._yielding[slot_id]  # it was served, or left: the trial goes on
        now = self._utc_now()
        self._clear_reserved_node(now)
        placement = self._placement()
        yielding_to = set(self._yielding.values())
        for study in self._queue():
            since = study.waiting_since
            waited_s = (now - since).total_seconds() if since is not None else -1.0
            waited = waited_s >= self._preempt_after_s
            sid = study.demand.study_id
            if not waited or sid in yielding_to or not study.live_waiters():
                continue
            if not self._within_quota(study):
                continue
            victim = pick_victim(
                Waiter(sid, study.demand.tenant, study.demand.priority, study.demand.shape),
                self._busy_slots(), placement.free, self._use, self._total(), self.policy,
                granted_before=self._clock() - self._preempt_after_s,
                other_shapes=waited_s >= self._preempt_after_s + self.actor_start_s,
            )  # fmt: skip
            if victim is not None:
                self._yielding[victim] = sid
                self.n_preempted += 1
                log.info("slot %s yields at its next epoch to study %s", victim, sid)

    def _clear_reserved_node(self, now: datetime) -> None:
        """The trials on a node kept for a wide study yield at their next epoch, once the
        study has waited preempt_after_s, plus an actor's start unless a slot there serves
        its shape in its own process (a reshapeable CPU slot): no single slot there would
        make room for it (so `pick_victim` takes none), and waiting for the last of them
        to end left part of the node idle for 30-40 s in bench/shared_cluster.py. The
        study is first in the grant order, so the move follows the same rank; a slot of
        its own tenant with a priority at least its own is left alone."""
        if self._reservation is None or self._preempt_after_s is None:
            return
        study_id, node_id = self._reservation
        study = self._studies.get(study_id)
        since = study.waiting_since if study is not None else None
        if study is None or since is None or not study.live_waiters():
            return
        on_node = [s for s in self._slots.values() if s.node_id == node_id]
        shape = study.demand.shape
        # No actor to start when a slot there will serve its shape (a reshapeable one).
        reused = any(serves(s.shape, s.reserved, shape) for s in on_node)
        extra = 0.0 if reused else self.actor_start_s
        if (now - since).total_seconds() < self._preempt_after_s + extra:
            return
        cutoff = self._clock() - self._preempt_after_s
        for slot in on_node:
            holder = self._studies.get(slot.study_id) if slot.study_id is not None else None
            if holder is None or slot.id in self._yielding:
                continue
            mine = holder.demand.tenant == study.demand.tenant
            if slot.granted_at >= cutoff or (
                mine and holder.demand.priority >= study.demand.priority
            ):
                continue
            self._yielding[slot.id] = study_id
            self.n_preempted += 1
            log.info("slot %s yields at its next epoch: its node is kept for study %s", slot.id,
                     study_id)  # fmt: skip

    def _busy_slots(self) -> list[BusySlot]:
        busy = []
        for slot in self._slots.values():
            study = self._studies.get(slot.study_id) if slot.study_id is not None else None
            if study is None or slot.id in self._yielding:
                continue
            d = study.demand
            busy.append(BusySlot(slot.id, slot.node_id, slot.shape, d.study_id, d.tenant,
                                 d.priority, slot.granted_at, slot.reserved))  # fmt: skip
        return busy

    def _hold_for(self, study: StudyState) -> bool:
        """Grant nothing more now; look again when the study's grace ends (it kicks a
        pass itself when it asks)."""
        if study.demand.study_id not in self._held_for:
            self._held_for.add(study.demand.study_id)
            delay = max(0.0, study.registered + READY_GRACE_S - self._clock())
            asyncio.get_running_loop().call_later(delay, self._end_hold, study.demand.study_id)
        return False

    def _end_hold(self, study_id: int) -> None:
        self._held_for.discard(study_id)
        self._kick()

    def _within_quota(self, study: StudyState) -> bool:
        tenant = study.demand.tenant
        return self.policy.quota(tenant).allows(self._use[tenant].held + study.demand.shape)

    def _reserved_study(self, eligible: list[StudyState]) -> StudyState | None:
        """The study a node is kept for, while it still waits; the reservation ends with
        its wait."""
        if self._reservation is None:
            return None
        study = next((s for s in eligible if s.demand.study_id == self._reservation[0]), None)
        if study is None or not study.live_waiters():
            self._reservation = None
            return None
        return study

    def _keep_node_for(self, head: StudyState, placement: Placement) -> None:
        """Reserve a node for the blocked head of the queue when it needs one, and end the
        idle slots there that hold room in Ray (a reshapeable one holds none, and may serve
        the study when its room is free)."""
        shape = head.demand.shape
        kept = self._reservation
        holds = (
            kept is not None and kept[0] == head.demand.study_id and (kept[1] in placement.capacity)
        )
        # A node kept stays kept until the study is served there: once part of it has
        # drained, one more trial's end would make room, but only if the freed part is
        # not handed to a smaller shape meanwhile, which it would be without the hold.
        if not holds and not placement.needs_reservation(shape):
            self._reservation = None
            return
        if not holds:
            node_id = placement.closest_node(shape)
            self._reservation = (head.demand.study_id, node_id) if node_id else None
        if self._reservation is not None:
            for slot in [s for s in self._slots.values() if s.node_id == self._reservation[1]]:
                if slot.study_id is None and slot.reserved != ZERO:
                    self._end(slot)

    def _placement(self) -> Placement:
        alive = {n.node_id: n for n in self._nodes.values() if n.alive}
        facts = [
            SlotFacts(s.id, s.node_id, s.shape, s.study_id is not None, s.last_study,
                      s.idle_since, s.reserved)
            for s in self._slots.values()
        ]  # fmt: skip
        gpu_nodes = {n for n, info in alive.items() if info.capacity.gpus > 0}
        return Placement({n: i.capacity for n, i in alive.items()}, facts, gpu_nodes)

    def _carry_out(self, plan: Plan, shape: Shape) -> SlotState:
        if plan.reuse is not None:
            slot = self._slots[plan.reuse]
            slot.shape = shape  # a reshapeable slot takes the trial's shape (placement.py)
            return slot
        for slot_id in plan.end:
            self._end(self._slots[slot_id])
        assert plan.node_id is not None
        slot = self._new_slot(shape, plan.node_id)
        slot.started_for_grant = self._clock()
        return slot

    def _grant(self, study: StudyState, slot: SlotState) -> None:
        waiter, since = study.waiters.popleft()
        # Not serving until its actor answers (`serving`): preemption never takes it before.
        slot.study_id, slot.granted_at = study.demand.study_id, math.inf
        study.held.add(slot.id)
        self._account(slot.shape, +1, tenant=study.demand.tenant)
        waiter.set_result(Lease(slot.id, slot.actor, slot.node_id, slot.shape))
        if not study.live_waiters():
            study.waiting_since = None
        if self._on_wait is not None:
            self._on_wait(self._clock() - since)

    # -- bookkeeping ------------------------------------------------------------------

    def _new_slot(self, shape: Shape, node_id: str) -> SlotState:
        reshapeable = self._reshape_cpu_slots and not self._autoscaler and shape.cpu_only
        reserved = ZERO if reshapeable else shape
        actor = self._backend.create(shape, node_id, reserved=reserved)
        slot = SlotState(next(self._ids), actor, shape, node_id, idle_since=self._clock(),
                         reserved=reserved)  # fmt: skip
        self._slots[slot.id] = slot
        return slot

    def _end(self, slot: SlotState) -> None:
        self._backend.kill(slot.actor)
        self._drop(slot)

    def _drop(self, slot: SlotState) -> None:
        self._slots.pop(slot.id, None)
        if slot.study_id is not None:
            study = self._studies.get(slot.study_id)
            if study is not None:
                study.held.discard(slot.id)
                self._account(slot.shape, -1, tenant=study.demand.tenant)
                self._forget_if_done(study)
            slot.study_id = None

    def _account(self, shape: Shape, sign: int, *, tenant: str) -> None:
        self._advance_use()
        use = self._use.setdefault(tenant, TenantUse(updated=self._clock()))
        use.held = use.held + shape if sign > 0 else use.held - shape

    def _advance_use(self) -> None:
        now, total = self._clock(), self._total()
        for tenant, use in self._use.items():
            use.advance(now, dominant_share(use.held, total), self.policy.weight(tenant))

    def _trim_idle(self) -> None:
        idle = sorted(
            (s for s in self._slots.values() if s.study_id is None), key=lambda s: s.idle_since
        )
        for slot in idle[: max(0, len(idle) - self._max_idle)]:
            self._end(slot)

    def _tell_autoscaler(self) -> None:
        unmet = [
            s.demand.shape
            for s in self._studies.values()
            for waiter, _ in s.waiters
            if not waiter.done()
        ]
        busy = [s.shape for s in self._slots.values() if s.study_id is not None]
        self._autoscaler_requests.update(busy, unmet)

    def _alive_nodes(self) -> set[str]:
        return {n.node_id for n in self._nodes.values() if n.alive}

    def _total(self) -> Shape:
        return sum((n.capacity for n in self._nodes.values() if n.alive), ZERO)


def _now() -> datetime:
    return datetime.now(UTC)
