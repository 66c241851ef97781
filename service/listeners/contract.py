"""The listener contract: what a listener is told, when, and what it may do.

Webhooks, MLflow or TensorBoard exporters and audit logs all want to hear when a trial
ends or a study changes state. They are told through this one seam, after the change is
committed, so that none of them can hold a study's transaction open, see a change that
is later rolled back, or fail the study by failing themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

DELETED = "deleted"
"""The state a `StudyTransition` names when the study's rows are gone."""


@dataclass(frozen=True)
class TrialEnded:
    """A trial reached its end: complete, pruned or failed (`stop_reason` says how: a
    user's stop or a study's end is `cancelled`, a lost worker past its retries is
    `worker_lost`, ...)."""

    study_id: int
    number: int
    state: str
    stop_reason: str
    value: float | None = None
    values: tuple[float, ...] | None = None
    error: str | None = None


@dataclass(frozen=True)
class StudyTransition:
    """A study moved to `state` (one of the study states, or DELETED) for `reason`."""

    study_id: int
    state: str
    reason: str | None = None
    error: str | None = None


@runtime_checkable
class StudyListener(Protocol):
    """Told of every trial end and every study state change, after each is committed.

    When it is called:
        After the transaction that recorded the change has committed, never inside it:
        the store already shows the trial's end (or the study's new state) when the
        method runs. Each change is told at most once; changes of one study come in the
        order they were committed. A change whose transaction rolled back is not told.

    Where it runs:
        On the service's event loop, in a task of the listener's own that awaits one
        call at a time. The study never waits for it: the driver queues the event and
        goes on. A listener that has fallen `queue_size` events behind (see
        `service.listeners.fanout.Listeners`) misses the newer ones, each logged.

    What it may do:
        Read the store (off the loop: `asyncio.to_thread`), or send the event elsewhere.
        It must not write the study's rows or its trials' rows: the study's driver and
        commands own them, and a listener's write would race theirs.

    May it block:
        No. It shares the loop with every study's driver and every HTTP request; a call
        that blocks holds all of them. Slow work (a network call, a file upload) awaits,
        or goes to a thread or a queue of the listener's own.

    When it raises:
        The exception is logged with the listener's name; the study goes on, and the
        other listeners, and this one's next events, are told as usual.
    """

    async def on_trial_ended(self, event: TrialEnded) -> None:
        """A trial of the study ended (committed)."""
        ...

    async def on_study_state(self, event: StudyTransition) -> None:
        """The study moved to `event.state` (committed)."""
        ...
