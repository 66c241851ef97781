"""The study driver: keeps up to `parallelism` trials in flight until the budget ends.

Each of up to `parallelism` slot loops takes the next job (a retry of a lost trial,
an initial config, or a new trial the sampler draws), asks the runner for a slot
(the cluster's scheduler may make it wait: the study is `queued` until its first
slot), runs the job on it (`trial_loop`), tells Optuna and the store the outcome and
gives the slot back, so that the scheduler can hand it to whoever deserves it next.
Decisions are made in memory (see `optuna_bridge`); every write goes in order
through one writer thread per study, so a trial's path never waits on a database
commit.

Interruptions: a trial whose worker was lost resumes from its checkpoint on the
next slot, under its own number, up to `max_retries` times. A preempted trial
(the scheduler wants its slot for a study that waited) stops at an epoch boundary
with a checkpoint and waits for the study's next slot. A pause or a shutdown stops
every trial that way; they resume when the study does (see `recovery`). A PBT member
that gives its slot to a member behind it (`members`) waits the same way; the member
furthest behind takes the study's next slot.

Every trial's end goes through `Ledger.end_trial` and the study's end through
`study_end`, so listeners hear of each once, after its commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from functools import partial
from typing import Any

import optuna

from service.listeners.commits import transaction
from service.metrics import ServiceMetrics
from service.records import Study, TrialRecord
from service.run.checkpoints import CheckpointStore
from service.run.jobs import TrialJob
from service.run.kept_weights import KeptWeights
from service.run.ledger import Ledger
from service.run.members import Members
from service.run.optuna_bridge import OptunaBridge
from service.run.outcome import TrialOutcome
from service.run.runner import DataUnavailable, Slot, TrialRunner
from service.run.slot_wait import SlotWait
from service.run.study_end import PAUSE, SHUTDOWN, StudyEnd, describe, failure, record_end
from service.run.trial_book import TrialBook
from service.run.trial_loop import ROTATED, TrialContext, run_trial
from service.run.writer import OrderedWriter
from service.spec import StudySpec
from workers.trial_checkpoints import TrialCheckpoints

log = logging.getLogger(__name__)

__all__ = ["PAUSE", "SHUTDOWN", "StudyDriver", "trial_budget"]


class StudyDriver:
    """Runs one study to the end of its budget, or until `request_stop`."""

    def __init__(
        self,
        study: Study,
        optuna: OptunaBridge,
        *,
        ledger: Ledger,
        runner: TrialRunner,
        n_done: int = 0,
        n_failed: int = 0,
        retries: Iterable[TrialJob] = (),
        checkpoints: CheckpointStore | None = None,
        best_value: float | None = None,
        metrics: ServiceMetrics | None = None,
        trial_checkpoints: TrialCheckpoints | None = None,
        members: Iterable[TrialRecord] = (),
    ):
        self.study = study
        self.study_id = study.id
        self.spec = spec = study.spec
        self.optuna = optuna
        self.ledger = ledger
        self.store = store = ledger.store
        self.runner = runner
        self.writer = OrderedWriter(f"study-{study.id}", transaction=partial(transaction, store))
        self._n_claimed = n_done
        self._n_opening = 0
        self._n_failed = n_failed
        self._retries: deque[TrialJob] = deque(retries)
        self._max_trials, spent_reason = trial_budget(spec)
        self._end = StudyEnd(spent_reason, timeout_s=spec.budget.timeout_s)
        self._metrics = metrics
        self._slots = SlotWait(runner, self._end, self._on_grant)
        self._book = TrialBook(study.id, optuna, ledger=ledger, writer=self.writer, metrics=metrics)
        self._weights = KeptWeights(
            study.id,
            spec,
            self.writer,
            checkpoints=checkpoints,
            trial_checkpoints=trial_checkpoints,
            best_value=best_value,
        )
        self._members = Members(spec, members) if spec.population else None
        self._ctx = TrialContext(
            study_id=study.id,
            spec=spec,
            optuna=optuna,
            store=store,
            writer=self.writer,
            study_ending=self._study_ending,
            interruption=self._interruption,
            target_reached=lambda: self.request_stop("target_reached"),
            keeps_checkpoint=self._weights.keeps,
            last_epoch=self._weights.last_epoch,
            save_checkpoint=self._weights.save,
            checkpoint_policy=self._weights.policy,
            warn=self._book.warn,
            population=self._members.population if self._members else None,
            rotates=self._rotates,
        )

    async def run(self) -> None:
        """Drive the study and write its final state; a trial's fault never escapes."""
        error: str | None = None
        try:
            work = self._max_trials - self._n_claimed + len(self._retries)
            async with asyncio.TaskGroup() as group:
                for _ in range(max(0, min(self.spec.budget.parallelism, work))):
                    group.create_task(self._slot_loop())
        except Exception as exc:  # noqa: BLE001 - the study fails, the service goes on
            # A fault of the service's own or of the study's data (a trial's faults end
            # as outcomes): the task group has cancelled the sibling trials;
            # `record_end` finishes them in both stores.
            error = failure(self.study_id, exc, writer_failed=self.writer.error is not None)
        finally:
            await self.runner.close()
        try:
            if not self._end.interrupts:
                self._cancel_waiting()
                if self._members is not None:  # finished members were kept as donors
                    self._weights.forget_study()
            await record_end(
                self.study,
                self._end,
                writer=self.writer,
                ledger=self.ledger,
                optuna_storage=self.optuna.storage,
                error=error,
            )
        except Exception:  # noqa: BLE001 - the database is gone: start-up reconciles it
            log.exception("study %s: its end could not be recorded", self.study_id)
        finally:
            self.writer.close()

    def request_stop(self, reason: str = "user") -> str:
        """End the study: running trials stop before their next epoch as cancelled.

        With SHUTDOWN (the service is stopping) or PAUSE, trials stop unfinished with a
        checkpoint instead, unknown to Optuna's sampler as outcomes: the study stays
        queued or running (SHUTDOWN; the next start resumes it, see `recovery`) or is
        `paused` until a user resumes it. Returns the reason in effect: the first asked.
        """
        return self._end.request(reason)

    def _study_ending(self) -> bool:
        self._end.check_timeout()
        return self._end.reason is not None

    def _interruption(self, slot: Slot) -> str | None:
        """Why a trial stops unfinished at this epoch boundary, if it does."""
        if self._end.interrupts:
            return self._end.reason
        if self._end.reason is None and self.runner.should_yield(slot):
            return "preempted"
        return None

    def _rotates(self, epochs: int) -> bool:
        """Whether a PBT member that trained `epochs` (at a boundary) gives its slot up to
        one behind it, for a slot the study cannot get (see `members`)."""
        # A loop whose slot was granted, its actor still starting, is not short of one.
        if self._members is None or self._end.reason is not None or not self._slots.n_ungranted:
            return False
        unstarted = self._n_claimed < self._max_trials
        return self._members.gives_way(epochs, waiting=self._retries, unstarted=unstarted)

    def _cancel_waiting(self) -> None:
        """Trials still waiting to resume when the study ends are cancelled (a pause or a
        shutdown keeps them waiting instead)."""
        for job in self._retries:
            if job.number is not None:
                trial = job.trial or self.optuna.adopt(job.number)
                self._finish(trial, TrialOutcome("cancelled"))
        self._retries.clear()

    async def _slot_loop(self) -> None:
        # The job is taken once the slot is there, and asked of Optuna at once: initial
        # configs and retries then get trial numbers (and training seeds) in their order,
        # whichever loop's slot comes first.
        failed_starts = 0
        while self._has_work():
            self._n_opening += 1
            try:
                slot = await self._slots.open()
            except DataUnavailable:
                raise  # every trial would fail the same way: the study fails
            except Exception as exc:  # noqa: BLE001 - the cluster's fault, not the study's
                slot = None
                failed_starts += 1
                await self._slot_start_failed(exc, failed_starts)
                continue
            finally:
                self._n_opening -= 1
            if slot is None:
                return
            failed_starts = 0
            job = self._next_job()
            if job is None:
                await self.runner.release_slot(slot, healthy=True)
                return
            healthy = False
            try:
                outcome = await self._run_job(slot, job)
                # A user's stop abandons the epoch in flight: the slot ends with it.
                lost = outcome.stop_reason == "worker_lost" or outcome.timed_out
                lost = lost or outcome.slot_suspect
                healthy = not lost and self._end.reason != "user"
            finally:
                await self.runner.release_slot(slot, healthy=healthy)

    async def _slot_start_failed(self, exc: Exception, in_a_row: int) -> None:
        """A slot that could not start (its actor's set-up raised, or the runner's attempts
        ran out) costs the study no trial: it is warned and tries again after a pause
        that grows. Each such start counts toward `max_failed_trials`, so a cluster that
        can start no slot fails the study instead of keeping it waiting for ever."""
        log.warning("study %s: a slot could not start: %s", self.study_id, describe(exc))
        self._book.warn(f"slots could not start, the study goes on with others: {describe(exc)}")
        self._n_failed += 1
        if self._n_failed >= self.spec.budget.max_failed_trials:
            self.request_stop("max_failed_trials")
            return
        await self._slots.back_off(in_a_row)

    def _on_grant(self) -> None:
        """The study's first slot makes it `running` (a new actor may still be starting)."""
        if self._end.start():
            self.writer.submit(self.ledger.move_study, self.study_id, "running")

    def _has_work(self) -> bool:
        """Whether a job is left that no other loop already waits for a slot to run: a
        slot granted and handed straight back may have started an actor, or preempted
        another tenant's trial, for nothing. A loop that runs a job checks again after it,
        so a retry its trial leaves is never without a loop."""
        unclaimed = len(self._retries) + max(0, self._max_trials - self._n_claimed)
        return self._end.reason is None and unclaimed > self._n_opening

    def _next_job(self) -> TrialJob | None:
        self._end.check_timeout()
        self.writer.raise_if_failed()
        all_claimed = self._n_claimed >= self._max_trials
        if self._end.reason is None and self._retries:
            if self._members is None:
                return self._retries.popleft()
            job = self._members.take_next(self._retries, all_claimed=all_claimed)
            if job is not None:
                return job
        if self._end.reason is not None or all_claimed:
            return None
        initial = self.spec.initial_trials
        params = initial[self._n_claimed] if self._n_claimed < len(initial) else None
        self._n_claimed += 1
        return TrialJob(params=dict(params) if params is not None else None)

    async def _run_job(self, slot: Slot, job: TrialJob) -> TrialOutcome:
        trial, params = await self._book.begin(slot, job)
        population = self._members.population if self._members is not None else None
        if population is not None:
            population.join(trial.number, params)
        if self._metrics is not None:
            self._metrics.trials_running.inc()
        try:
            outcome = await run_trial(
                self._ctx,
                slot,
                trial,
                {**self.spec.params, **params},
                resume=job.number is not None,
            )
        finally:
            if self._metrics is not None:
                self._metrics.trials_running.dec()
        if population is not None:  # a PBT member may train on with a copy's params
            params = population.current(trial.number, params)
        if outcome.interrupted is not None:
            if self._members is not None:
                self._members.waits(trial.number, outcome.epochs_run)
            self._interrupt(job, trial, params, outcome.interrupted)
        elif outcome.stop_reason == "worker_lost" and job.attempt < self.spec.budget.max_retries:
            self._interrupt(job, trial, params, "worker_lost")
        else:
            self._finish(trial, outcome)
        return outcome

    def _interrupt(
        self, job: TrialJob, trial: optuna.Trial, params: dict[str, Any], reason: str
    ) -> None:
        """The trial stopped unfinished: it waits to resume from its checkpoint, on this
        study's next slot (lost worker, preemption) or when the study resumes."""
        self._book.interrupt(trial.number, reason)
        if reason == "preempted":  # first in line for the study's next slot
            self._retries.appendleft(job.resumed(trial, params, lost=False))
        elif reason == "worker_lost":
            self._retries.append(job.resumed(trial, params, lost=True))
        elif reason == ROTATED:
            self._retries.append(job.resumed(trial, params, lost=False))

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """End the trial in both stores; a PBT member that did not fail stays in the
        population, its checkpoint kept as a donor's."""
        keep_state = self._members is not None and outcome.state != "failed"
        if self._members is not None and not keep_state:
            self._members.population.leave(trial.number)
        self._book.end(trial, outcome)
        if not keep_state:
            self._weights.forget_trial(trial.number)
        if outcome.state == "failed":
            self._n_failed += 1
            if self._n_failed >= self.spec.budget.max_failed_trials:
                self.request_stop("max_failed_trials")


def trial_budget(spec: StudySpec) -> tuple[int, str]:
    """How many trials the study may run, and the reason it ends when they are done."""
    size = spec.sampler.n_points(spec.space)
    if size is not None and size < spec.budget.max_trials:
        return size, "grid_exhausted"
    return spec.budget.max_trials, "max_trials"
