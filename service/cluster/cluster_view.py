"""What the scheduler shows: plain values for `GET /api/v1/cluster`, the study view and
Prometheus. Resources are in `fair_share.UNIT`s; `amount` turns them back into CPUs and
GPUs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from service.cluster.fair_share import UNIT, Quota, Shape


def amount(units: int) -> float:
    return units / UNIT


@dataclass(frozen=True)
class QueueInfo:
    """A study's place in the queue: `position` is None while it waits for nothing."""

    position: int | None
    waiting_since: datetime | None
    slots_held: int


@dataclass(frozen=True)
class NodeView:
    node_id: str
    alive: bool
    capacity: Shape
    used: Shape


@dataclass(frozen=True)
class SlotView:
    slot_id: int
    node_id: str
    shape: Shape
    state: str
    study_id: int | None
    tenant: str | None


@dataclass(frozen=True)
class TenantView:
    tenant: str
    weight: float
    share: float
    held: Shape
    dominant_share: float
    slots: int
    studies_waiting: int
    quota: Quota


@dataclass(frozen=True)
class QueueEntry:
    """A waiting study; another tenant's shows only its place, shape and slots."""

    position: int
    study_id: int | None
    name: str | None
    tenant: str | None
    priority: int | None
    waiting_since: datetime | None
    slots_held: int
    parallelism: int
    shape: Shape


@dataclass(frozen=True)
class ClusterSnapshot:
    nodes: list[NodeView]
    slots: list[SlotView]
    tenants: list[TenantView]
    queue: list[QueueEntry]
    reserved_node: str | None


@dataclass(frozen=True)
class ScopedCluster:
    """The cluster as one tenant may see it: its own studies, slots and usage in full;
    other tenants' usage as one total, their slots and queue places without names."""

    snapshot: ClusterSnapshot
    others: TenantView | None


def scope(snapshot: ClusterSnapshot, tenant: str | None) -> ScopedCluster:
    """`tenant` None sees everything (a single-tenant service, no tokens)."""
    if tenant is None:
        return ScopedCluster(snapshot, None)
    own = [t for t in snapshot.tenants if t.tenant == tenant]
    rest = [t for t in snapshot.tenants if t.tenant != tenant]
    others = TenantView(
        tenant="others",
        weight=sum(t.weight for t in rest),
        share=sum(t.share for t in rest),
        held=sum((t.held for t in rest), Shape(0, 0)),
        dominant_share=sum(t.dominant_share for t in rest),
        slots=sum(t.slots for t in rest),
        studies_waiting=sum(t.studies_waiting for t in rest),
        quota=Quota(),
    )
    slots = [
        s if s.tenant == tenant else SlotView(s.slot_id, s.node_id, s.shape, s.state, None, None)
        for s in snapshot.slots
    ]
    queue = [q if q.tenant == tenant else _anonymous(q) for q in snapshot.queue]
    scoped = ClusterSnapshot(snapshot.nodes, slots, own, queue, snapshot.reserved_node)
    return ScopedCluster(scoped, others)


def _anonymous(entry: QueueEntry) -> QueueEntry:
    return QueueEntry(
        position=entry.position,
        study_id=None,
        name=None,
        tenant=None,
        priority=None,
        waiting_since=entry.waiting_since,
        slots_held=entry.slots_held,
        parallelism=entry.parallelism,
        shape=entry.shape,
    )
