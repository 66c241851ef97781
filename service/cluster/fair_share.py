"""Who gets the next free slot: resource shapes, tenant weights and quotas, and the order.

Pure values and functions, no Ray and no clock: the scheduler (`service/cluster/scheduler.py`)
feeds them what it holds and asks for the order.

The order is that of dominant resource fairness (DRF) between tenants, kept over time
the way Linux's CFS keeps CPU time fair, then priority and age between a tenant's studies:

1. the tenant furthest behind goes first: the one with the least *virtual service*, the
   dominant share it has held (the largest of its CPU and GPU fractions of the cluster)
   integrated over time and divided by its weight, plus what it holds now over the next
   FAIR_LOOKAHEAD_S. Slots granted in one instant therefore spread over the tenants by
   what they hold (a tenant with one study and a tenant with six get half the cluster
   each), and over time a tenant whose wide trials held more than its share gives that
   time back as its trials end, or, with preemption, as its slots are taken;
2. within a tenant, the study of highest `priority`, then the oldest.

Virtual service decays (half-life RECENT_USE_HALF_LIFE_S), so old use is forgotten; a
tenant that had no study when others trained joins at the least virtual service among
those who have one (`TenantUse.join`), so it neither pays for using an empty cluster nor
takes the whole cluster to "catch up" with tenants that trained while it was away.

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
# How far ahead what a tenant holds now counts: one preemption interval (see
# `service/cluster/preemption.py`) is the natural unit, a few seconds.
FAIR_LOOKAHEAD_S = 5.0


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

    @property
    def cpu_only(self) -> bool:
        return self.gpus == 0

    def threads(self) -> int:
        """Torch threads for a trial of this shape: its CPUs rounded down, at least one."""
        return max(1, self.cpus // UNIT)


ZERO = Shape(0, 0)


def serves(slot_shape: Shape, reserved: Shape, wanted: Shape) -> bool:
    """Whether a slot process of `slot_shape`, for which Ray reserved `reserved`, can run
    a trial of `wanted` without a new process: the same shape, or any CPU-only one when
    it reserved nothing (the scheduler then accounts its CPUs; `service/cluster/placement.py`)."""
    return wanted == slot_shape or (reserved == ZERO and wanted.cpu_only)


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
    """What a tenant holds now, and its virtual service: weighted dominant-share-seconds."""

    held: Shape = ZERO
    virtual: float = 0.0  # decayed share-seconds held, divided by the tenant's weight
    updated: float = 0.0

    def advance(self, now: float, dominant: float, weight: float = 1.0) -> None:
        """Add the share held since the last update, decaying older service."""
        elapsed = max(0.0, now - self.updated)
        decay = 0.5 ** (elapsed / RECENT_USE_HALF_LIFE_S)
        self.virtual = self.virtual * decay + dominant * elapsed / weight
        self.updated = now

    def join(self, floor: float) -> None:
        """A tenant with no study until now starts level with the least served active one."""
        self.virtual = max(self.virtual, floor)

    def rank(self, held: Shape, total: Shape, weight: float) -> float:
        """Virtual service if it kept `held` for FAIR_LOOKAHEAD_S more: lower goes first."""
        return self.virtual + dominant_share(held, total) * FAIR_LOOKAHEAD_S / weight


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
        rank = tenant.rank(tenant.held, total, policy.weight(claim.tenant))
        return (rank, -claim.priority, claim.created_at, claim.study_id)

    return sorted(claims, key=key)


def entitled_shares(tenants: list[str], policy: TenantPolicy) -> dict[str, float]:
    """Each active tenant's fair fraction of the cluster: its weight over all their weights."""
    total = sum(policy.weight(t) for t in tenants)
    return {t: policy.weight(t) / total for t in tenants} if total else {}
