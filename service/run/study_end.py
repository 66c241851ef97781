"""How a study's run ends: why (the first reason asked wins), in which state, and the
writes that record it.

A pause or a shutdown *interrupts*: trials stop unfinished with a checkpoint and wait
(a shutdown leaves the study queued or running for the next start; a pause makes it
`paused`). Any other end is final: trials still unfinished end as cancelled (failed,
when the study failed), then the study's state is written, once.
"""

from __future__ import annotations

import asyncio
import logging
import time

import optuna

from service.records import Study
from service.run.ledger import Ledger
from service.run.recovery import end_unfinished
from service.run.runner import DataUnavailable
from service.run.writer import OrderedWriter
from storage.session import describe_error

log = logging.getLogger(__name__)

SHUTDOWN = "shutdown"
PAUSE = "paused"
INTERRUPTING = (SHUTDOWN, PAUSE)


class StudyEnd:
    """Why the study ends, once asked: `reason` is None while it runs on."""

    def __init__(self, spent_reason: str, *, timeout_s: float | None = None):
        self.spent_reason = spent_reason  # why it ends when its trials are all done
        self.timeout_s = timeout_s
        self.reason: str | None = None
        self.asked = asyncio.Event()
        self.started: float | None = None

    def start(self) -> bool:
        """The study got its first slot: its time starts. True the first time only."""
        if self.started is not None:
            return False
        self.started = time.monotonic()
        return True

    def check_timeout(self) -> None:
        """`timeout_s` counts from the study's first slot: time queued is not spent."""
        if self.timeout_s is None or self.started is None:
            return
        if time.monotonic() - self.started >= self.timeout_s:
            self.request("timeout")

    def request(self, reason: str) -> str:
        """Ask the study to end for `reason`; the reason in effect (the first asked)."""
        self.reason = self.reason or reason
        self.asked.set()
        return self.reason

    @property
    def interrupts(self) -> bool:
        return self.reason in INTERRUPTING

    def final_state(self, error: str | None) -> tuple[str, str]:
        """The study's state and state reason once its run is over."""
        if error is not None:
            return "failed", "error"
        reason = self.reason or self.spent_reason
        if reason == "user":
            return "stopped", reason
        if reason == PAUSE:
            return "paused", "user"
        if reason == "max_failed_trials":
            return "failed", reason
        return "completed", reason


async def record_end(
    study: Study,
    end: StudyEnd,
    *,
    writer: OrderedWriter,
    ledger: Ledger,
    optuna_storage: optuna.storages.RDBStorage,
    error: str | None,
) -> None:
    """Write the study's final state, after its queued writes; no trial of an ended study
    stays unfinished. A shutdown that found no fault writes nothing: the study resumes."""
    # The writer's own failure is the cause: what escaped the task group is its echo.
    error = await writer.drain() or error
    if end.reason == SHUTDOWN and error is None:
        return
    state, reason = end.final_state(error)
    if not end.interrupts or error is not None:
        # Trials that the task group cancelled, or whose rows the writer skipped.
        stop_reason = "failed" if error is not None else "cancelled"
        why = None if error is None else f"the study failed: {error}"
        await writer.call(
            end_unfinished, ledger, optuna_storage, study, stop_reason=stop_reason, error=why
        )
    await writer.call(ledger.move_study, study.id, state, reason=reason, error=error)


def failure(study_id: int, exc: BaseException, *, writer_failed: bool) -> str:
    """What the study's `error` says of a fault that escaped its trials, logged: the
    user's data is no bug (one line), the writer logged its own failure already."""
    error = describe(exc)
    if _only_data_errors(exc):
        log.warning("study %s failed: %s", study_id, error)
    elif not writer_failed:
        log.error("study %s failed", study_id, exc_info=exc)
    return error


def _only_data_errors(exc: BaseException) -> bool:
    """Whether every error in `exc` (a task group's, often) is the study's data's fault."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_data_errors(e) for e in exc.exceptions)
    return isinstance(exc, DataUnavailable)


def describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(describe(e) for e in exc.exceptions))
    return describe_error(exc)
