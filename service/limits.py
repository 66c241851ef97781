"""Per-deployment limits: what a spec may ask for, how fast a tenant may submit, and how
much a tenant may hold at once (active studies, stored uploads, open event streams)."""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from service.errors import CapReached, InvalidRequest, RateLimited, Unavailable
from service.settings import Settings
from service.spec import StudySpec
from storage.errors import StorageUnavailable
from storage.repository import Store

WINDOW_S = 60.0
# Every state but the terminal ones: a paused study still holds its checkpoints and may
# resume at any time, so it counts against max_active_studies_per_tenant.
OPEN_STUDY_STATES = ("queued", "running", "paused")


@dataclass(frozen=True)
class SpecLimits:
    max_trials: int = 100_000
    max_epochs: int = 10_000
    max_parallelism: int = 64

    def check(self, spec: StudySpec) -> None:
        """InvalidRequest (422) naming the first budget field over its limit."""
        budget = spec.budget
        for field, value, limit in (
            ("max_trials", budget.max_trials, self.max_trials),
            ("max_epochs", budget.max_epochs, self.max_epochs),
            ("parallelism", budget.parallelism, self.max_parallelism),
        ):
            if value > limit:
                raise InvalidRequest(
                    f"budget.{field} must be <= {limit} on this service, got {value}",
                    field=f"budget.{field}",
                )


class SubmissionRate:
    """A sliding one-minute window of study submissions per tenant."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._times: defaultdict[str, deque[float]] = defaultdict(deque)

    def admit(self, tenant: str) -> None:
        """Count one submission, or raise RateLimited with the wait until a slot frees."""
        now = time.monotonic()
        times = self._times[tenant]
        while times and now - times[0] >= WINDOW_S:
            times.popleft()
        if len(times) >= self.per_minute:
            wait = WINDOW_S - (now - times[0])
            raise RateLimited(
                f"at most {self.per_minute} studies a minute per tenant; retry in "
                f"{math.ceil(wait)} s",
                retry_after_s=wait,
            )
        times.append(now)


@dataclass(frozen=True)
class TenantCap:
    """How many of something one tenant may hold at once, named by its setting, so that a
    refusal tells the user what to end and the operator what to raise."""

    setting: str
    value: int

    def check(self, held: int, *, adding: int = 1) -> None:
        """CapReached when `held` plus `adding` would pass the cap."""
        if held + adding > self.value:
            raise CapReached(self.reached())

    def reached(self) -> str:
        return f"tenant cap reached: {self.setting} = {self.value}"


@dataclass(frozen=True)
class TenantCaps:
    """The per-tenant caps of the settings; a service without tokens caps its one tenant."""

    active_studies: TenantCap
    upload_bytes: TenantCap
    event_streams: TenantCap

    @classmethod
    def of(cls, settings: Settings) -> TenantCaps:
        return cls(
            TenantCap("max_active_studies_per_tenant", settings.max_active_studies_per_tenant),
            TenantCap("max_upload_bytes_per_tenant", settings.max_upload_bytes_per_tenant),
            TenantCap("max_event_streams_per_tenant", settings.max_event_streams_per_tenant),
        )


def check_active_studies(store: Store, tenant: str, cap: TenantCap) -> None:
    """CapReached when `tenant` already holds `cap` unfinished studies; Unavailable when
    the database does not answer.

    A check before the submission, not a reservation: submissions racing past it together
    may all be stored, passing the cap by at most the number of them.
    """
    try:
        held = sum(
            len(store.list_studies(state=state, limit=cap.value, tenant=tenant).items)
            for state in OPEN_STUDY_STATES
        )
    except StorageUnavailable as exc:
        raise Unavailable(str(exc)) from exc
    cap.check(held)
