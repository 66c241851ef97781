"""What a slot loop runs next: a new trial, an initial config, or the retry of a lost one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TrialJob:
    """`params` fixes the searched params (initial configs, retries); None lets the sampler draw.

    `attempt` counts runs of the same config: a retry whose attempt exceeds the
    study's max_retries is not run.
    """

    params: dict[str, Any] | None = None
    retry_of: int | None = None
    attempt: int = 0
    consumes_claim: bool = field(default=True, compare=False)

    def retry(self, number: int, params: dict[str, Any]) -> TrialJob:
        return TrialJob(
            params=params, retry_of=number, attempt=self.attempt + 1, consumes_claim=False
        )
