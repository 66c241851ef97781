"""What the scheduler keeps per slot and per study, and the snapshot readers see of it.

Plain state that the scheduler (`service/cluster/scheduler.py`) and its parts change from
the event loop alone; `snapshot_of` and `queue_infos` freeze it into `cluster_view`
values for other threads.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from service.cluster.cluster_view import (
    ClusterSnapshot,
    NodeView,
    QueueEntry,
    QueueInfo,
    SlotView,
    TenantView,
)
from service.cluster.fair_share import (
    ZERO,
    Claim,
    Shape,
    TenantPolicy,
    TenantUse,
    dominant_share,
    entitled_shares,
)
from service.cluster.slot_contract import Lease, NodeInfo, StudyDemand

READY_GRACE_S = 5.0  # how long a new study getting ready may hold back grants to others


@dataclass
class SlotState:
    id: int
    actor: Any
    shape: Shape
    node_id: str
    study_id: int | None = None
    last_study: int | None = None
    idle_since: float = 0.0
    granted_at: float = 0.0
    started_for_grant: float | None = None  # monotonic: created for a grant, not answered yet
    reserved: Shape = ZERO  # what Ray holds for the slot's process (placement.py)

    def holds(self) -> Shape:
        """The room the slot takes on its node: its trial's shape while busy, what Ray
        reserved for it while idle."""
        return self.shape if self.study_id is not None else self.reserved


@dataclass
class StudyState:
    demand: StudyDemand
    waiters: deque[tuple[asyncio.Future[Lease], float]] = field(default_factory=deque)
    held: set[int] = field(default_factory=set)
    waiting_since: datetime | None = None
    asked: bool = False
    departed: bool = False
    registered: float = field(default_factory=time.monotonic)

    def getting_ready(self, now: float) -> bool:
        """Submitted moments ago and not asking yet (its data and sampler are being set up)."""
        return not self.asked and not self.departed and now - self.registered < READY_GRACE_S

    def claim(self) -> Claim:
        d = self.demand
        return Claim(d.study_id, d.tenant, d.priority, d.created_at)

    def live_waiters(self) -> bool:
        while self.waiters and self.waiters[0][0].done():
            self.waiters.popleft()
        return bool(self.waiters)


def snapshot_of(
    *,
    nodes: list[NodeInfo],
    slots: list[SlotState],
    studies: Mapping[int, StudyState],
    queue: list[StudyState],
    use: Mapping[str, TenantUse],
    policy: TenantPolicy,
    reserved_node: str | None,
) -> ClusterSnapshot:
    """Nodes, slots, tenants (every one seen since start; idle ones at share 0) and the
    queue in grant order."""
    total = sum((n.capacity for n in nodes if n.alive), ZERO)
    active = sorted(
        {s.demand.tenant for s in studies.values()} | {t for t, u in use.items() if u.held != ZERO}
    )
    shares = entitled_shares(active, policy)
    return ClusterSnapshot(
        nodes=[_node_view(n, slots) for n in nodes],
        slots=[_slot_view(s, studies) for s in slots],
        tenants=[
            _tenant_view(t, use.get(t, TenantUse()), studies, policy, total, shares.get(t, 0.0))
            for t in sorted(use)
        ],
        queue=[_queue_entry(i, s) for i, s in enumerate(queue, 1)],
        reserved_node=reserved_node,
    )


def queue_infos(
    snapshot: ClusterSnapshot, studies: Mapping[int, StudyState]
) -> dict[int, QueueInfo]:
    """Each study's place in the snapshot's queue (None while it holds what it asked for)."""
    positions = {q.study_id: q for q in snapshot.queue}
    return {
        study_id: QueueInfo(
            positions[study_id].position if study_id in positions else None,
            positions[study_id].waiting_since if study_id in positions else None,
            len(study.held),
        )
        for study_id, study in studies.items()
        if not study.departed
    }


def _queue_entry(position: int, study: StudyState) -> QueueEntry:
    d = study.demand
    return QueueEntry(
        position=position,
        study_id=d.study_id,
        name=d.name,
        tenant=d.tenant,
        priority=d.priority,
        waiting_since=study.waiting_since,
        slots_held=len(study.held),
        parallelism=d.parallelism,
        shape=d.shape,
    )


def _node_view(node: NodeInfo, slots: list[SlotState]) -> NodeView:
    used = sum((s.holds() for s in slots if s.node_id == node.node_id), ZERO)
    return NodeView(node.node_id, node.alive, node.capacity, used)


def _slot_view(slot: SlotState, studies: Mapping[int, StudyState]) -> SlotView:
    study = studies.get(slot.study_id) if slot.study_id is not None else None
    return SlotView(
        slot.id,
        slot.node_id,
        slot.shape,
        "busy" if slot.study_id is not None else "idle",
        slot.study_id,
        study.demand.tenant if study else None,
    )


def _tenant_view(
    tenant: str,
    use: TenantUse,
    studies: Mapping[int, StudyState],
    policy: TenantPolicy,
    total: Shape,
    share: float,
) -> TenantView:
    own = [s for s in studies.values() if s.demand.tenant == tenant]
    return TenantView(
        tenant=tenant,
        weight=policy.weight(tenant),
        share=share,
        held=use.held,
        dominant_share=dominant_share(use.held, total),
        slots=sum(len(s.held) for s in own),
        studies_waiting=sum(1 for s in own if s.live_waiters()),
        quota=policy.quota(tenant),
    )
