"""The warm slot actors the scheduler grants: started, reshaped, kept idle and ended here.

A slot is a warm actor (`workers.slot.TrialSlot`) pinned to a node; starting one costs
a process and its imports (3 to 25 s on a busy node, bench/README.md), so up to
`max_idle` are kept idle for the next grant. CPU-only slots reserve no CPUs in Ray
(unless an autoscaler sizes the cluster by what Ray sees reserved, or
`reshape_cpu_slots` is off): the scheduler's own count keeps their trials within each
node, and an idle one serves any CPU-only shape without a new process
(`service/cluster/placement.py`). The pool decides nothing about who gets a slot; it
carries out the scheduler's plans and reports what it holds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from service.cluster.fair_share import ZERO, Shape, serves
from service.cluster.placement import Placement, Plan, SlotFacts
from service.cluster.scheduler_state import SlotState
from service.cluster.slot_contract import NodeInfo, SlotBackend


class SlotPool:
    """Slots by id, over the backend that starts and ends their actors."""

    def __init__(
        self,
        backend: SlotBackend,
        *,
        max_idle: int,
        reshape_cpu_slots: bool,
        clock: Callable[[], float],
    ) -> None:
        self._backend = backend
        self._max_idle = max_idle
        self._reshape_cpu_slots = reshape_cpu_slots
        self._clock = clock
        self._ids = itertools.count(1)
        self.slots: dict[int, SlotState] = {}
        self.autoscaler = False  # Ray's autoscaler sizes by what is reserved: no reshaping
        self.actor_start_s = 0.0  # moving average, slots started for a grant until they answer

    def placement(self, nodes: Iterable[NodeInfo]) -> Placement:
        """Where shapes can go now, over the alive ones of `nodes`."""
        alive = {n.node_id: n for n in nodes if n.alive}
        facts = [
            SlotFacts(
                s.id,
                s.node_id,
                s.shape,
                s.study_id is not None,
                s.last_study,
                s.idle_since,
                s.reserved,
            )
            for s in self.slots.values()
        ]
        gpu_nodes = {n for n, info in alive.items() if info.capacity.gpus > 0}
        return Placement({n: i.capacity for n, i in alive.items()}, facts, gpu_nodes)

    def carry_out(self, plan: Plan, shape: Shape) -> SlotState:
        """The slot `plan` names for a trial of `shape`: reused, or started after the idle
        slots it names end."""
        if plan.reuse is not None:
            slot = self.slots[plan.reuse]
            slot.shape = shape  # a reshapeable slot takes the trial's shape (placement.py)
            return slot
        for slot_id in plan.end:
            self.end(self.slots[slot_id])
        assert plan.node_id is not None
        slot = self.new(shape, plan.node_id)
        slot.started_for_grant = self._clock()
        return slot

    def prewarm(self, shape: Shape, n: int, placement: Placement) -> None:
        """Start idle slots of `shape` where there is room, until `n` (at most max_idle)
        idle ones serve it."""
        serving = sum(
            1
            for s in self.slots.values()
            if s.study_id is None and serves(s.shape, s.reserved, shape)
        )
        for _ in range(min(n, self._max_idle) - serving):
            node = placement.best_fit(shape, blocked=set())
            if node is None:
                return
            self.new(shape, node)
            # Counted as if busy, so warm slots spread over the room their trials will need
            # (a reshapeable idle slot holds none of its own).
            placement.free[node] = placement.free[node] - shape

    def serving(self, slot: SlotState) -> None:
        """The busy slot answers: its trial's time held counts from now, and a slot
        started for its grant tells how long an actor takes to start."""
        slot.granted_at = self._clock()
        if slot.started_for_grant is not None:
            took = slot.granted_at - slot.started_for_grant
            first = self.actor_start_s == 0.0
            self.actor_start_s = took if first else 0.7 * self.actor_start_s + 0.3 * took
            slot.started_for_grant = None

    def give_back(self, slot: SlotState, *, keep: bool) -> None:
        """The slot's trial is over: idle from now (remembering whom it served last), or
        ended when `keep` is False."""
        slot.last_study, slot.study_id = slot.study_id or slot.last_study, None
        slot.idle_since = self._clock()
        if not keep:
            self.end(slot)

    def new(self, shape: Shape, node_id: str) -> SlotState:
        reshapeable = self._reshape_cpu_slots and not self.autoscaler and shape.cpu_only
        reserved = ZERO if reshapeable else shape
        actor = self._backend.create(shape, node_id, reserved=reserved)
        slot = SlotState(
            next(self._ids), actor, shape, node_id, idle_since=self._clock(), reserved=reserved
        )
        self.slots[slot.id] = slot
        return slot

    def end(self, slot: SlotState) -> None:
        """End an idle slot's actor and forget the slot."""
        self._backend.kill(slot.actor)
        self.slots.pop(slot.id, None)

    def end_all(self) -> None:
        for slot in self.slots.values():
            self._backend.kill(slot.actor)
        self.slots.clear()

    def forget_off(self, alive: set[str]) -> list[SlotState]:
        """Forget the slots on nodes not in `alive` (their actors went with the node);
        returns them, busy ones included, for their studies to give up."""
        gone = [s for s in self.slots.values() if s.node_id not in alive]
        for slot in gone:
            self.slots.pop(slot.id, None)
        return gone

    def trim_idle(self) -> None:
        """End the idle slots past max_idle, those idle the longest first."""
        idle = sorted(
            (s for s in self.slots.values() if s.study_id is None), key=lambda s: s.idle_since
        )
        for slot in idle[: max(0, len(idle) - self._max_idle)]:
            self.end(slot)

    def on_node(self, node_id: str) -> list[SlotState]:
        return [s for s in self.slots.values() if s.node_id == node_id]

    def busy_shapes(self) -> list[Shape]:
        return [s.shape for s in self.slots.values() if s.study_id is not None]
