"""The shared cluster as the caller's tenant may see it: nodes, slots, tenants, the queue."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from service.cluster.cluster_view import ScopedCluster, TenantView, amount


class NodeOut(BaseModel):
    node_id: str
    alive: bool
    cpus: float
    gpus: float
    cpus_used: float = Field(
        description="Held by the service's slots: busy ones, and idle ones that reserve their "
        "room in Ray (a reshapeable CPU slot holds none while idle)."
    )
    gpus_used: float


class SlotOut(BaseModel):
    slot_id: int
    node_id: str
    cpus: float
    gpus: float
    state: Literal["busy", "idle"]
    study_id: int | None = Field(
        description="The study it trains for; null when idle or another tenant's."
    )
    tenant: str | None


class TenantOut(BaseModel):
    tenant: str = Field(description="The tenant, or `others`: every other tenant summed.")
    weight: float
    share: float = Field(
        description="The fraction of the cluster its weight entitles it to among the tenants with "
        "studies now."
    )
    cpus: float
    gpus: float
    slots: int = Field(description="Busy slots.")
    dominant_share: float = Field(
        description="Its largest fraction of the cluster's CPUs or GPUs held now."
    )
    studies_waiting: int
    quota_cpus: float | None
    quota_gpus: float | None


class QueueEntryOut(BaseModel):
    position: int
    study_id: int | None = Field(description="Null for another tenant's study.")
    name: str | None
    tenant: str | None
    priority: int | None
    waiting_since: datetime | None
    slots_held: int
    parallelism: int
    cpus_per_trial: float
    gpus_per_trial: float


class ClusterOut(BaseModel):
    """The cluster as the caller's tenant may see it."""

    nodes: list[NodeOut]
    slots: list[SlotOut]
    tenants: list[TenantOut]
    others: TenantOut | None = Field(description="Other tenants' usage as one total.")
    queue: list[QueueEntryOut] = Field(
        description="Studies waiting for a slot, in the order they will get one."
    )
    reserved_node: str | None = Field(
        description="A node kept free for the first study in the queue, whose trials fit nowhere "
        "else yet."
    )

    @classmethod
    def of(cls, cluster: ScopedCluster) -> ClusterOut:
        snap = cluster.snapshot
        return cls(
            nodes=[
                NodeOut(
                    node_id=n.node_id,
                    alive=n.alive,
                    cpus=amount(n.capacity.cpus),
                    gpus=amount(n.capacity.gpus),
                    cpus_used=amount(n.used.cpus),
                    gpus_used=amount(n.used.gpus),
                )
                for n in snap.nodes
            ],
            slots=[
                SlotOut(
                    slot_id=s.slot_id,
                    node_id=s.node_id,
                    cpus=amount(s.shape.cpus),
                    gpus=amount(s.shape.gpus),
                    state=cast(Any, s.state),
                    study_id=s.study_id,
                    tenant=s.tenant,
                )
                for s in snap.slots
            ],
            tenants=[_tenant_out(t) for t in snap.tenants],
            others=_tenant_out(cluster.others) if cluster.others else None,
            queue=[
                QueueEntryOut(
                    position=q.position,
                    study_id=q.study_id,
                    name=q.name,
                    tenant=q.tenant,
                    priority=q.priority,
                    waiting_since=q.waiting_since,
                    slots_held=q.slots_held,
                    parallelism=q.parallelism,
                    cpus_per_trial=amount(q.shape.cpus),
                    gpus_per_trial=amount(q.shape.gpus),
                )
                for q in snap.queue
            ],
            reserved_node=snap.reserved_node,
        )


def _tenant_out(t: TenantView) -> TenantOut:
    return TenantOut(
        tenant=t.tenant,
        weight=t.weight,
        share=t.share,
        cpus=amount(t.held.cpus),
        gpus=amount(t.held.gpus),
        slots=t.slots,
        dominant_share=t.dominant_share,
        studies_waiting=t.studies_waiting,
        quota_cpus=t.quota.cpus,
        quota_gpus=t.quota.gpus,
    )
