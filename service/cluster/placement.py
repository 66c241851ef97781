"""Where a slot of a given shape can go now: pure reasoning over nodes and slots.

The slot pool (`service/cluster/slot_pool.py`) builds a `Placement` from what it holds
and carries out the `Plan` it returns; nothing here starts or ends anything.

A slot is a process that Ray placed with some resources reserved (`reserved`). A GPU
slot reserves its shape, and serves that shape only. A CPU-only slot may reserve
nothing (a *reshapeable* slot): the scheduler alone accounts the CPUs its trial uses,
so once idle it holds no room and serves a trial of any CPU-only shape that fits its
node, with the trial's torch threads set per trial. A move between CPU shapes then
reuses a running process instead of ending one actor and starting another (3 to 25 s
on a busy node, bench/README.md "Shared cluster").
"""

from __future__ import annotations

from dataclasses import dataclass

from service.cluster.fair_share import UNIT, ZERO, Shape, TenantPolicy, serves


@dataclass(frozen=True)
class SlotFacts:
    slot_id: int
    node_id: str
    shape: Shape
    busy: bool
    last_study: int | None
    idle_since: float
    reserved: Shape  # what Ray holds for the slot's process

    def holds(self) -> Shape:
        """The room the slot takes on its node: its trial's shape while busy, what Ray
        reserved for it while idle."""
        return self.shape if self.busy else self.reserved

    def serves(self, shape: Shape) -> bool:
        """Whether the slot, idle, can run a trial of `shape` without a new process."""
        return serves(self.shape, self.reserved, shape)


@dataclass(frozen=True)
class Plan:
    """Hand over idle slot `reuse`; or end the idle slots `end`, then start a new slot
    on `node_id`."""

    reuse: int | None = None
    node_id: str | None = None
    end: tuple[int, ...] = ()


class Placement:
    """Nodes (alive ones, by id, with their capacity) and the slots on them."""

    def __init__(
        self, capacity: dict[str, Shape], slots: list[SlotFacts], gpu_nodes: set[str]
    ) -> None:
        self.capacity = capacity
        self.slots = [s for s in slots if s.node_id in capacity]
        self.gpu_nodes = gpu_nodes
        self.free = dict(capacity)
        self.idle_room = dict.fromkeys(capacity, ZERO)
        for slot in self.slots:
            self.free[slot.node_id] = self.free[slot.node_id] - slot.holds()
            if not slot.busy:
                self.idle_room[slot.node_id] = self.idle_room[slot.node_id] + slot.reserved

    def plan(self, study_id: int, shape: Shape, *, blocked: set[str]) -> Plan | None:
        """An idle slot that serves the shape (the study's own last one first: it has the
        study's tensors; then one of the same shape, then the one idle the shortest), free
        room (the best fit), or room that idle slots of other shapes hold; None when none
        of these exists outside `blocked`."""
        idle = [
            s
            for s in self.slots
            if not s.busy
            and s.node_id not in blocked
            and s.serves(shape)
            and shape.fits_in(self.free[s.node_id] + s.reserved)
        ]
        if idle:
            best = max(
                idle, key=lambda s: (s.last_study == study_id, s.shape == shape, s.idle_since)
            )
            return Plan(reuse=best.slot_id)
        node = self.best_fit(shape, blocked)
        if node is not None:
            return Plan(node_id=node)
        for node_id in sorted(set(self.capacity) - blocked, key=lambda n: _spare(self.free[n])):
            victims = self._idle_to_end(node_id, shape)
            if victims is not None:
                return Plan(node_id=node_id, end=victims)
        return None

    def best_fit(self, shape: Shape, blocked: set[str]) -> str | None:
        """The fitting node left with the least room (keeping big holes for big shapes);
        CPU-only slots go to nodes without GPUs first."""
        fitting = [n for n, room in self.free.items() if n not in blocked and shape.fits_in(room)]
        if not fitting:
            return None
        return min(
            fitting,
            key=lambda n: (
                shape.gpus == 0 and n in self.gpu_nodes,
                _spare(self.free[n] - shape),
                n,
            ),
        )

    def _idle_to_end(self, node_id: str, shape: Shape) -> tuple[int, ...] | None:
        """The fewest idle slots on the node whose room, with the free room, fits `shape`."""
        room = self.free[node_id]
        idle = sorted(
            (s for s in self.slots if s.node_id == node_id and not s.busy and s.reserved != ZERO),
            key=lambda s: s.reserved,
            reverse=True,
        )
        victims: list[int] = []
        for slot in idle:
            if shape.fits_in(room):
                break
            victims.append(slot.slot_id)
            room = room + slot.reserved
        return tuple(victims) if shape.fits_in(room) else None

    def needs_reservation(self, shape: Shape) -> bool:
        """Whether no single busy slot's end would let `shape` fit anywhere: then slots
        that end one by one would be taken by smaller shapes, and a node must be kept."""
        return not any(
            shape.fits_in(self.free[s.node_id] + self.idle_room[s.node_id] + s.shape)
            for s in self.slots
            if s.busy
        )

    def closest_node(self, shape: Shape) -> str | None:
        """The node that big enough for `shape` needs the least to end before it fits."""
        able = [n for n, c in self.capacity.items() if shape.fits_in(c)]
        if not able:
            return None
        return min(able, key=lambda n: _deficit(shape, self.free[n] + self.idle_room[n]))


def refusal(
    shape: Shape, tenant: str, policy: TenantPolicy, nodes: list[Shape]
) -> tuple[str, str] | None:
    """(spec field, message) when one trial of `shape` can never run for `tenant`: more
    than its quota, or more than each of `nodes` offers (pass none when an autoscaler
    may add nodes, or the nodes are not known yet)."""
    quota = policy.quota(tenant)
    for resource, cap in (("cpus", quota.cpus), ("gpus", quota.gpus)):
        need = getattr(shape, resource) / UNIT
        if cap is not None and need > cap:
            return (
                f"resources.{resource}_per_trial",
                f"one trial needs {need:g} {resource.upper()}, more than tenant '{tenant}' "
                f"may hold at once (quota {cap:g})",
            )
    if not nodes or any(shape.fits_in(n) for n in nodes):
        return None
    resource = "gpus" if not any(shape.gpus <= n.gpus for n in nodes) else "cpus"
    largest = max(getattr(n, resource) for n in nodes) / UNIT
    return (
        f"resources.{resource}_per_trial",
        f"one trial needs {getattr(shape, resource) / UNIT:g} {resource.upper()} on one node; "
        f"no node of the cluster offers that (the largest has {largest:g}) and it has no "
        "autoscaler to add one",
    )


def _spare(room: Shape) -> tuple[int, int]:
    return (room.gpus, room.cpus)


def _deficit(shape: Shape, room: Shape) -> tuple[int, int, int]:
    return (max(0, shape.gpus - room.gpus), max(0, shape.cpus - room.cpus), 0)
