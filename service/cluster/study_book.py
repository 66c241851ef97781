"""The studies that ask the scheduler for slots, and what each tenant holds over time.

One home for the accounting the grant order rests on (`fair_share.grant_order`): a
slot counts for its study's tenant from its grant until it comes back, and each
tenant's virtual service advances with what it holds. A study that leaves while its
trials still run stays on the books until their slots come back, so its tenant keeps
paying for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

from service.cluster.fair_share import (
    ZERO,
    Shape,
    TenantPolicy,
    TenantUse,
    dominant_share,
    grant_order,
)
from service.cluster.scheduler_state import SlotState, StudyState
from service.cluster.slot_contract import Lease, StudyDemand


class StudyBook:
    """Studies by id and tenants' use, over the cluster's `total` (set as nodes change)."""

    def __init__(self, policy: TenantPolicy, *, clock: Callable[[], float]) -> None:
        self.policy = policy
        self._clock = clock
        self.studies: dict[int, StudyState] = {}
        self.use: dict[str, TenantUse] = {}
        self.total = ZERO

    def register(self, demand: StudyDemand, *, waiting_since: datetime) -> None:
        """Add a study; a tenant that had none joins at the least virtual service among
        those who have one (`TenantUse.join`)."""
        self.advance()
        active = {s.demand.tenant for s in self.studies.values() if not s.departed}
        use = self.use.setdefault(demand.tenant, TenantUse(updated=self._clock()))
        if demand.tenant not in active and active:
            use.join(min(self.use[t].virtual for t in active))
        self.studies[demand.study_id] = StudyState(
            demand, waiting_since=waiting_since, registered=self._clock()
        )

    def ask(self, study_id: int, *, now: datetime) -> asyncio.Future[Lease]:
        """A wait for one slot of the study's; it waits from `now` unless already waiting."""
        study = self.studies[study_id]
        waiter: asyncio.Future[Lease] = asyncio.get_running_loop().create_future()
        if not study.live_waiters() and study.waiting_since is None:
            study.waiting_since = now
        study.waiters.append((waiter, self._clock()))
        study.asked = True
        return waiter

    def fail_waiting(self, error: Exception) -> None:
        """Every wait still open ends with `error`."""
        for study in self.studies.values():
            for waiter, _ in study.waiters:
                if not waiter.done():
                    waiter.set_exception(error)

    def depart(self, study: StudyState) -> None:
        """The study wants no more slots; its waits are cancelled."""
        study.departed = True
        for waiter, _ in study.waiters:
            waiter.cancel()
        study.waiters.clear()
        self.forget_if_done(study)

    def forget_if_done(self, study: StudyState) -> None:
        if study.departed and not study.held:
            self.studies.pop(study.demand.study_id, None)

    def holder(self, slot: SlotState) -> StudyState | None:
        """The study the slot serves now, if any."""
        return self.studies.get(slot.study_id) if slot.study_id is not None else None

    def release(self, slot: SlotState) -> None:
        """The slot no longer counts for the study it served, if any."""
        study = self.holder(slot)
        if study is not None:
            self.unhold(study, slot)

    def hold(self, study: StudyState, slot: SlotState) -> None:
        study.held.add(slot.id)
        self._account(slot.shape, +1, tenant=study.demand.tenant)

    def unhold(self, study: StudyState, slot: SlotState) -> None:
        study.held.discard(slot.id)
        self._account(slot.shape, -1, tenant=study.demand.tenant)
        self.forget_if_done(study)

    def advance(self) -> None:
        """Bring every tenant's virtual service up to now."""
        now = self._clock()
        for tenant, use in self.use.items():
            use.advance(now, dominant_share(use.held, self.total), self.policy.weight(tenant))

    def within_quota(self, study: StudyState) -> bool:
        tenant = study.demand.tenant
        return self.policy.quota(tenant).allows(self.use[tenant].held + study.demand.shape)

    def in_order(self, studies: list[StudyState]) -> list[StudyState]:
        """`studies` in the order the scheduler would grant them."""
        by_id = {s.demand.study_id: s for s in studies}
        order = grant_order([s.claim() for s in studies], self.use, self.total, self.policy)
        return [by_id[c.study_id] for c in order]

    def queue(self) -> list[StudyState]:
        """Studies that wait for a slot (or, before they first ask, for their first), in
        grant order."""
        return self.in_order(
            [
                s
                for s in self.studies.values()
                if not s.departed and (s.live_waiters() or (not s.asked and not s.held))
            ]
        )

    def eligible(self, now: float) -> list[StudyState]:
        """Studies that may be granted a slot now, or are getting ready to ask, within
        quota and in grant order."""
        candidates = [s for s in self.studies.values() if s.live_waiters() or s.getting_ready(now)]
        return [s for s in self.in_order(candidates) if self.within_quota(s)]

    def unmet(self) -> list[Shape]:
        """One shape per waiting `acquire`: what the autoscaler should make room for."""
        return [
            s.demand.shape
            for s in self.studies.values()
            for waiter, _ in s.waiters
            if not waiter.done()
        ]

    def _account(self, shape: Shape, sign: int, *, tenant: str) -> None:
        self.advance()
        use = self.use.setdefault(tenant, TenantUse(updated=self._clock()))
        use.held = use.held + shape if sign > 0 else use.held - shape
