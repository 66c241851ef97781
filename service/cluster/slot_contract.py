"""What the scheduler promises drivers (a `Lease` for a `StudyDemand`) and what it needs
from Ray (`SlotBackend`, `service/cluster/ray_backend.py`; a recording fake in tests)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from service.cluster.fair_share import Shape


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    capacity: Shape
    alive: bool = True


class SlotBackend(Protocol):
    """What the scheduler needs from Ray (`service/cluster/ray_backend.py`), or a fake in tests."""

    def nodes(self) -> list[NodeInfo]:
        """Every node Ray knows, alive or not; may block (called in a thread)."""
        ...

    def create(self, shape: Shape, node_id: str, *, reserved: Shape) -> Any:
        """Start a slot actor for trials of `shape` on node `node_id`, reserving `reserved`
        of Ray's resources for it (ZERO for a reshapeable CPU slot); returns at once."""
        ...

    def kill(self, actor: Any) -> None: ...

    def request_resources(self, bundles: list[dict[str, float]]) -> None:
        """Tell an autoscaler the cluster should fit these bundles; may block."""
        ...

    def has_autoscaler(self) -> bool:
        """Whether nodes may be added on demand (then no shape is refused for size); may
        block (called in a thread)."""
        ...


@dataclass(frozen=True)
class Lease:
    """A slot granted to one study until it is released."""

    slot_id: int
    actor: Any
    node_id: str
    shape: Shape


@dataclass(frozen=True)
class StudyDemand:
    study_id: int
    name: str
    tenant: str
    priority: int
    created_at: datetime
    shape: Shape
    parallelism: int
