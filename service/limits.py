"""Per-deployment limits on what a spec may ask for and how fast a tenant may submit."""

from __future__ import annotations

import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass

from service.errors import InvalidRequest, RateLimited
from service.spec import StudySpec

WINDOW_S = 60.0


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
                f"at most {self.per_minute} studies a minute per tenant; "
                f"retry in {math.ceil(wait)} s",
                retry_after_s=wait,
            )
        times.append(now)
