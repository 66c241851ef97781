"""Who gets the next free slot: resource shapes, tenant weights and quotas, and the order.

Pure values and functions, no Ray and no clock: the scheduler (`service/scheduler.py`)
feeds them what it holds and asks for the order.

The order is that of dominant resource fairness (DRF) between tenants, then priority
and age between a tenant's studies:

1. the tenant furthest below its share goes first: the one whose dominant share (the
   largest of its CPU and GPU fractions of the cluster) held now, plus the dominant
   share it held on average lately (decaying with RECENT_USE_HALF_LIFE_S), divided by
   its weight, is lowest. So a tenant with one study and a tenant with six get half
   the cluster each; the odd slot of an odd count alternates between two tenants; and
   a tenant that took the whole cluster while the others were still arriving, or
   whose wide trials held it, gives that time back as its trials end;
2. within a tenant, the study of highest `priority`, then the oldest.

Resources are counted in Ray's own unit, 1/10000 of a CPU or GPU, as integers: sums
of fractional shapes (0.1 GPU ten times) then fit exactly where floats would not.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

UNIT = 10_000  # Ray schedules resources to four decimal places
RECENT_USE_HALF_LIFE_S = 300.0


def units(amount: float) -> int:
    return round(amount * UNIT)


@dataclass(frozen=True, order=True)
class Shape:
    """One trial slot's resources, in UNITs: what `resources` in a spec asks for."""

    cpus: int
    gpus: int

    @classmethod
    def of(cls, cpus: float, gpus: float) -> Shape:
        return cls(units(cpus), units(gpus))

    def __add__(self, other: Shape) -> Shape:
        return Shape(self.cpus + other.cpus, self.gpus + other.gpus)

    def __sub__(self, other: Shape) -> Shape:
        return Shape(self.cpus - other.cpus, self.gpus - other.gpus)

    def fits_in(self, room: Shape) -> bool:
        return self.cpus <= room.cpus and self.gpus <= room.gpus

    def ray_options(self) -> dict[str, float]:
        return {"num_cpus": self.cpus / UNIT, "num_gpus": self.gpus / UNIT}

    def bundle(self) -> dict[str, float]:
        """The shape as an autoscaler resource bundle (zero resources left out)."""
        resources = {"CPU": self.cpus / UNIT, "GPU": self.gpus / UNIT}
        return {k: v for k, v in resources.items() if v > 0}

    def label(self) -> str:
        return f"{self.cpus / UNIT:g}cpu-{self.gpus / UNIT:g}gpu"


ZERO = Shape(0, 0)


@dataclass(frozen=True)
class Quota:
    """A tenant's cap on concurrent CPUs and GPUs held by its slots; None is no cap."""

    cpus: float | None = None
    gpus: float | None = None

    def allows(self, held: Shape) -> bool:
        return (self.cpus is None or held.cpus <= units(self.cpus)) and (
            self.gpus is None or held.gpus <= units(self.gpus)
        )


@dataclass(frozen=True)
class TenantPolicy:
    """Weights (default 1) and quotas (default none) per tenant, from settings."""

    weights: Mapping[str, float] = field(default_factory=dict)
    quotas: Mapping[str, Quota] = field(default_factory=dict)

    def weight(self, tenant: str) -> float:
        return self.weights.get(tenant, 1.0)

    def quota(self, tenant: str) -> Quota:
        return self.quotas.get(tenant, Quota())

    @classmethod
    def parse(cls, weights: str = "", quotas: str = "") -> TenantPolicy:
        """From `team-a:2,team-b:1` and `team-a:cpus=8,gpus=2,team-b:cpus=4`.

        Raises ValueError naming the malformed entry.
        """
        return cls(_parse_weights(weights), _parse_quotas(quotas))


def _parse_weights(raw: str) -> dict[str, float]:
    weights: dict[str, float] = {}
    for entry in (e.strip() for e in raw.split(",") if e.strip()):
        tenant, sep, value = entry.partition(":")
        weight = _number(value) if sep and tenant.strip() else None
        if weight is None or weight <= 0:
            raise ValueError(
                f"HPO_TENANT_WEIGHTS entries must be tenant:weight with a weight > 0, got {entry!r}"
            )
        weights[tenant.strip()] = weight
    return weights


def _parse_quotas(raw: str) -> dict[str, Quota]:
    """`tenant:cpus=8,gpus=2`; an item without `tenant:` continues the tenant before it."""
    limits: dict[str, dict[str, float]] = {}
    tenant: str | None = None
    for item in (e.strip() for e in raw.replace(";", ",").split(",") if e.strip()):
        if ":" in item:
            name, _, item = item.partition(":")
            tenant = name.strip() or None
        key, sep, value = item.partition("=")
        amount = _number(value) if sep else None
        if tenant is None or key.strip() not in ("cpus", "gpus") or amount is None or amount < 0:
            raise ValueError(
                f"HPO_TENANT_QUOTAS entries must be tenant:cpus=N,gpus=N with N >= 0, got {item!r}"
            )
        limits.setdefault(tenant, {})[key.strip()] = amount
    return {t: Quota(cpus=q.get("cpus"), gpus=q.get("gpus")) for t, q in limits.items()}


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class TenantUse:
    """What a tenant holds now, and the dominant share it held on average lately."""

    held: Shape = ZERO
    recent: float = 0.0  # decayed share-seconds
    span: float = 0.0  # decayed seconds, the same way: recent / span is the average
    updated: float = 0.0

    def advance(self, now: float, dominant: float) -> None:
        """Add the share held since the last update, decaying older use."""
        elapsed = max(0.0, now - self.updated)
        decay = 0.5 ** (elapsed / RECENT_USE_HALF_LIFE_S)
        self.recent = self.recent * decay + dominant * elapsed
        self.span = self.span * decay + elapsed
        self.updated = now

    @property
    def recent_share(self) -> float:
        return self.recent / self.span if self.span > 0 else 0.0


def dominant_share(held: Shape, total: Shape) -> float:
    """The largest fraction of a cluster resource that `held` takes."""
    shares = [h / t for h, t in ((held.cpus, total.cpus), (held.gpus, total.gpus)) if t > 0]
    return max(shares, default=0.0)


@dataclass(frozen=True)
class Claim:
    """A study that waits for a slot, as the order sees it."""

    study_id: int
    tenant: str
    priority: int
    created_at: datetime


def grant_order(
    claims: list[Claim], use: Mapping[str, TenantUse], total: Shape, policy: TenantPolicy
) -> list[Claim]:
    """Claims, most deserving first (see the module's docstring)."""

    def key(claim: Claim) -> tuple[float, int, datetime, int]:
        tenant = use.get(claim.tenant, TenantUse())
        used = dominant_share(tenant.held, total) + tenant.recent_share
        return (used / policy.weight(claim.tenant), -claim.priority, claim.created_at,
                claim.study_id)  # fmt: skip

    return sorted(claims, key=key)


def entitled_shares(tenants: list[str], policy: TenantPolicy) -> dict[str, float]:
    """Each active tenant's fair fraction of the cluster: its weight over all their weights."""
    total = sum(policy.weight(t) for t in tenants)
    return {t: policy.weight(t) / total for t in tenants} if total else {}
