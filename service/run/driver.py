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
that gives its slot to a member behind it (`_rotates`) waits the same way; the member
furthest behind takes the study's next slot.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import optuna

from service.metrics import ServiceMetrics
from service.records import TrialRecord
from service.run.checkpoints import CheckpointStore
from service.run.draws import Drawer
from service.run.jobs import TrialJob
from service.run.optuna_bridge import OptunaBridge
from service.run.outcome import TrialOutcome
from service.run.population import Population
from service.run.recovery import end_unfinished
from service.run.runner import DataUnavailable, LastEpoch, Slot, TrialRunner
from service.run.trial_loop import ROTATED, TrialContext, run_trial
from service.run.writer import OrderedWriter
from service.spec import StudySpec
from storage.repository import Store
from storage.session import describe_error
from workers.direction import at_least
from workers.trial_checkpoints import CheckpointPolicy, TrialCheckpoints, trial_key

log = logging.getLogger(__name__)

SHUTDOWN = "shutdown"
PAUSE = "paused"
_INTERRUPTING = (SHUTDOWN, PAUSE)


class StudyDriver:
    """Runs one study to the end of its budget, or until `request_stop`."""

    def __init__(
        self, study_id: int, spec: StudySpec, optuna: OptunaBridge, *, store: Store,
        runner: TrialRunner, n_done: int = 0, n_failed: int = 0,
        retries: Iterable[TrialJob] = (), checkpoints: CheckpointStore | None = None,
        best_value: float | None = None, metrics: ServiceMetrics | None = None,
        trial_checkpoints: TrialCheckpoints | None = None,
        members: Iterable[TrialRecord] = (),
    ):  # fmt: skip
        self.study_id = study_id
        self.spec = spec
        self.optuna = optuna
        self._drawer = Drawer(optuna)
        self.store = store
        self.runner = runner
        self.writer = OrderedWriter(f"study-{study_id}", transaction=store.batch)
        self._n_claimed = n_done
        self._n_opening = 0
        self._n_ungranted = 0  # of those, loops the scheduler has not granted a slot yet
        self._n_failed = n_failed
        self._retries: deque[TrialJob] = deque(retries)
        self._max_trials, self._spent_reason = trial_budget(spec)
        self._end_reason: str | None = None
        self._ending = asyncio.Event()
        self._started: float | None = None
        self._metrics = metrics
        self._checkpoints = checkpoints
        self._kept: dict[int, float] = {}
        self._best_value = best_value
        self._trial_checkpoints = trial_checkpoints if spec.checkpoints.enabled else None
        self._warned: set[str] = set()
        self._population = Population(spec, seed=spec.split.seed) if spec.population else None
        self._member_epochs: dict[int, int] = {}  # PBT members waiting: epochs trained
        if self._population is not None:
            members = list(members)
            self._population.restore(members)  # a PBT study resumed: what it ranked with
            self._member_epochs = {m.number: m.checkpoint_epoch or 0 for m in members}
        self._ctx = TrialContext(
            study_id=study_id, spec=spec, optuna=optuna, store=store, writer=self.writer,
            study_ending=self._study_ending, interruption=self._interruption,
            target_reached=lambda: self.request_stop("target_reached"),
            keeps_checkpoint=self._keeps_checkpoint, last_epoch=self._last_epoch,
            save_checkpoint=self._save_checkpoint, checkpoint_policy=self._checkpoint_policy,
            warn=self._warn, population=self._population, rotates=self._rotates,
        )  # fmt: skip

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
            # as outcomes): the task group has cancelled the sibling trials; `_end`
            # finishes them in both stores. The user's data is no bug: one line for it.
            error = _describe(exc)
            if _only_data_errors(exc):
                log.warning("study %s failed: %s", self.study_id, error)
            elif self.writer.error is None:
                log.exception("study %s failed", self.study_id)
        finally:
            await self.runner.close()
        try:
            await self._end(error)
        except Exception:  # noqa: BLE001 - the database is gone: start-up reconciles it
            log.exception("study %s: its end could not be recorded", self.study_id)
        finally:
            self.writer.close()

    async def _end(self, error: str | None) -> None:
        """Write the study's final state; no trial of an ended study stays unfinished."""
        if self._end_reason not in _INTERRUPTING:
            self._cancel_waiting()
            if self._population is not None and self._trial_checkpoints is not None:
                # Finished members were kept as donors; the population is done with them.
                self.writer.submit(self._trial_checkpoints.delete_study, self.study_id)
        # The writer's own failure is the cause: what escaped the task group is its echo.
        error = await self.writer.drain() or error
        if self._end_reason == SHUTDOWN and error is None:
            return
        state, reason = self._final_state(error)
        if self._end_reason not in _INTERRUPTING or error is not None:
            # Trials that the task group cancelled, or whose rows the writer skipped.
            stop_reason = "failed" if error is not None else "cancelled"
            why = None if error is None else f"the study failed: {error}"
            await self.writer.call(
                end_unfinished, self.store, self.optuna.storage, self.study_id,
                self.optuna.study_name, stop_reason=stop_reason, error=why,
            )  # fmt: skip
        await self.writer.call(
            self.store.set_study_state, self.study_id, state, reason=reason, error=error
        )

    def request_stop(self, reason: str = "user") -> str:
        """End the study: running trials stop before their next epoch as cancelled.

        With SHUTDOWN (the service is stopping) or PAUSE, trials stop unfinished with a
        checkpoint instead, unknown to Optuna's sampler as outcomes: the study stays
        queued or running (SHUTDOWN; the next start resumes it, see `recovery`) or is
        `paused` until a user resumes it. Returns the reason in effect: the first asked.
        """
        self._end_reason = self._end_reason or reason
        self._ending.set()
        return self._end_reason

    def _study_ending(self) -> bool:
        self._check_timeout()
        return self._end_reason is not None

    def _interruption(self, slot: Slot) -> str | None:
        """Why a trial stops unfinished at this epoch boundary, if it does."""
        if self._end_reason in _INTERRUPTING:
            return self._end_reason
        if self._end_reason is None and self.runner.should_yield(slot):
            return "preempted"
        return None

    def _rotates(self, epochs: int) -> bool:
        """Whether a PBT member that trained `epochs` (at a boundary) gives its slot up: a
        member that has not started, or has trained fewer epochs, waits for a slot the
        study cannot get. Members then train in step, as in Ray Tune's PBT on a cluster
        smaller than the population; otherwise late members would be ranked against
        members that had trained to the end, and copy them at once."""
        # A loop whose slot was granted, its actor still starting, is not short of one.
        if self._population is None or self._end_reason is not None or not self._n_ungranted:
            return False
        unstarted = self._n_claimed < self._max_trials
        return unstarted or any(self._behind(job) < epochs for job in self._retries)

    def _behind(self, job: TrialJob) -> int:
        """Epochs a waiting PBT member has trained (0 for one not started)."""
        return 0 if job.number is None else self._member_epochs.get(job.number, 0)

    def _checkpoint_policy(self, number: int) -> CheckpointPolicy | None:
        if self._trial_checkpoints is None:
            return None
        return CheckpointPolicy(
            self._trial_checkpoints.uri,
            trial_key(self.study_id, number),
            every_epochs=self.spec.checkpoints.every_epochs,
        )

    def _warn(self, warning: str) -> None:
        """Put `warning` on the study, once."""
        if warning not in self._warned:
            self._warned.add(warning)
            self.writer.submit(self.store.add_warning, self.study_id, warning)

    def _keeps_checkpoint(self, value: float) -> bool:
        """A complete trial at least as good as every earlier one keeps its weights."""
        if self._checkpoints is None:
            return False
        return at_least(value, self._best_value, self.spec.primary.direction)

    def _last_epoch(self) -> LastEpoch:
        """What a slot needs to end a trial with its last epoch: the weights to ship."""
        return LastEpoch(keep=self._checkpoints is not None, floor=self._best_value)

    def _save_checkpoint(self, number: int, value: float, data: bytes) -> None:
        assert self._checkpoints is not None
        self._best_value = value
        self._kept = {n: v for n, v in self._kept.items() if v == value} | {number: value}
        self.writer.submit(
            self._checkpoints.save, self.study_id, number, data, keep=set(self._kept)
        )

    def _cancel_waiting(self) -> None:
        """Trials still waiting to resume when the study ends are cancelled (a pause or a
        shutdown keeps them waiting instead)."""
        for job in self._retries:
            if job.number is not None:
                trial = job.trial or self.optuna.adopt(job.number)
                self._finish(trial, TrialOutcome("cancelled"))
        self._retries.clear()

    def _final_state(self, error: str | None) -> tuple[str, str]:
        if error is not None:
            return "failed", "error"
        reason = self._end_reason or self._spent_reason
        if reason == "user":
            return "stopped", reason
        if reason == PAUSE:
            return "paused", "user"
        if reason == "max_failed_trials":
            return "failed", reason
        return "completed", reason

    async def _slot_loop(self) -> None:
        # The job is taken once the slot is there, and asked of Optuna at once: initial
        # configs and retries then get trial numbers (and training seeds) in their order,
        # whichever loop's slot comes first.
        failed_starts = 0
        while self._has_work():
            self._n_opening += 1
            try:
                slot = await self._open_slot()
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
                healthy = not lost and self._end_reason != "user"
            finally:
                await self.runner.release_slot(slot, healthy=healthy)

    async def _slot_start_failed(self, exc: Exception, in_a_row: int) -> None:
        """A slot that could not start (its actor's set-up raised, or the runner's attempts
        ran out) costs the study no trial: it is warned and tries again after a pause
        that grows. Each such start counts toward `max_failed_trials`, so a cluster that
        can start no slot fails the study instead of keeping it waiting for ever."""
        log.warning("study %s: a slot could not start: %s", self.study_id, _describe(exc))
        self._warn(f"slots could not start, the study goes on with others: {_describe(exc)}")
        self._n_failed += 1
        if self._n_failed >= self.spec.budget.max_failed_trials:
            self.request_stop("max_failed_trials")
            return
        pause = min(_START_BACKOFF_S * 2 ** (in_a_row - 1), _START_BACKOFF_MAX_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ending.wait(), pause)

    async def _open_slot(self) -> Slot | None:
        """A slot, or None when the study ends while it waits for one."""
        granted = False

        def on_grant() -> None:
            nonlocal granted
            if not granted:
                granted = True
                self._n_ungranted -= 1
            self._on_grant()

        self._n_ungranted += 1
        try:
            return await self._wait_for_slot(on_grant)
        finally:
            if not granted:
                self._n_ungranted -= 1

    async def _wait_for_slot(self, on_grant: Callable[[], None]) -> Slot | None:
        opening = asyncio.ensure_future(self.runner.open_slot(on_grant=on_grant))
        finished = asyncio.ensure_future(self._ending.wait())
        try:
            await asyncio.wait({opening, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            finished.cancel()
            if not opening.done():
                opening.cancel()
                await asyncio.wait({opening})
        if opening.cancelled():
            return None
        slot = opening.result()
        if self._end_reason is not None:
            await self.runner.release_slot(slot, healthy=True)
            return None
        self._on_grant()
        return slot

    def _on_grant(self) -> None:
        """The study's first slot makes it `running` (a new actor may still be starting)."""
        if self._started is None:
            self._started = time.monotonic()
            self.writer.submit(self.store.set_study_state, self.study_id, "running")

    def _has_work(self) -> bool:
        """Whether a job is left that no other loop already waits for a slot to run: a
        slot granted and handed straight back may have started an actor, or preempted
        another tenant's trial, for nothing. A loop that runs a job checks again after it,
        so a retry its trial leaves is never without a loop."""
        unclaimed = len(self._retries) + max(0, self._max_trials - self._n_claimed)
        return self._end_reason is None and unclaimed > self._n_opening

    def _next_job(self) -> TrialJob | None:
        self._check_timeout()
        self.writer.raise_if_failed()
        if self._end_reason is None and self._retries:
            if self._population is None:
                return self._retries.popleft()
            # PBT: the member furthest behind; one not started yet has trained nothing.
            job = min(self._retries, key=self._behind)
            if self._behind(job) == 0 or self._n_claimed >= self._max_trials:
                self._retries.remove(job)
                return job
        if self._end_reason is not None or self._n_claimed >= self._max_trials:
            return None
        initial = self.spec.initial_trials
        params = initial[self._n_claimed] if self._n_claimed < len(initial) else None
        self._n_claimed += 1
        return TrialJob(params=dict(params) if params is not None else None)

    def _check_timeout(self) -> None:
        """`timeout_s` counts from the study's first slot: time queued is not spent."""
        timeout_s, started = self.spec.budget.timeout_s, self._started
        if timeout_s is None or started is None:
            return
        if time.monotonic() - started >= timeout_s:
            self.request_stop("timeout")

    async def _run_job(self, slot: Slot, job: TrialJob) -> TrialOutcome:
        trial, params = await self._begin(slot, job)
        if self._population is not None:
            self._population.join(trial.number, params)
        if self._metrics is not None:
            self._metrics.trials_running.inc()
        try:
            outcome = await run_trial(
                self._ctx, slot, trial, {**self.spec.params, **params},
                resume=job.number is not None,
            )  # fmt: skip
        finally:
            if self._metrics is not None:
                self._metrics.trials_running.dec()
        if self._population is not None:  # a PBT member may train on with a copy's params
            params = self._population.current(trial.number, params)
        if outcome.interrupted is not None:
            if self._population is not None:
                self._member_epochs[trial.number] = outcome.epochs_run
            self._interrupt(job, trial, params, outcome.interrupted)
        elif outcome.stop_reason == "worker_lost" and job.attempt < self.spec.budget.max_retries:
            self._interrupt(job, trial, params, "worker_lost")
        else:
            self._finish(trial, outcome)
        return outcome

    async def _begin(self, slot: Slot, job: TrialJob) -> tuple[optuna.Trial, dict[str, Any]]:
        """The job's trial: drawn now and stored, or an unfinished one to resume."""
        if job.number is not None:
            assert job.params is not None
            return job.trial or self.optuna.adopt(job.number), job.params
        started = time.perf_counter()
        trial, params, create = await self._drawer.ask(job.params)
        if self._metrics is not None:
            self._metrics.ask_seconds.observe(time.perf_counter() - started)
            self._metrics.trials_started.inc()
        self.writer.submit(create)
        # The writer runs later: the times are taken here, where the slot is held.
        self.writer.submit(
            self.store.create_trial, self.study_id, trial.number, params, node=slot.node,
            started_at=datetime.now(UTC), device=slot.device,
        )  # fmt: skip
        return trial, params

    def _interrupt(
        self, job: TrialJob, trial: optuna.Trial, params: dict[str, Any], reason: str
    ) -> None:
        """The trial stopped unfinished: it waits to resume from its checkpoint, on this
        study's next slot (lost worker, preemption) or when the study resumes."""
        self.writer.submit(
            self.store.interrupt_trial, self.study_id, trial.number, end=reason, state="waiting"
        )
        if reason == "preempted":  # first in line for the study's next slot
            self._retries.appendleft(job.resumed(trial, params, lost=False))
        elif reason == "worker_lost":
            self._retries.append(job.resumed(trial, params, lost=True))
        elif reason == ROTATED:
            self._retries.append(job.resumed(trial, params, lost=False))

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """Tell Optuna first, then write the summary row the API reads."""
        keep_state = self._population is not None and outcome.state != "failed"
        if self._population is not None and not keep_state:
            self._population.leave(trial.number)
        values = outcome.values if outcome.state == "complete" else None
        started = time.perf_counter()
        self.writer.submit(self.optuna.tell(trial, outcome.optuna_state, values))
        if self._metrics is not None:
            self._metrics.tell_seconds.observe(time.perf_counter() - started)
            self._metrics.trials_finished.labels(outcome.state).inc()
            self._metrics.epochs.inc(outcome.epochs_run)
        self.writer.submit(
            self.store.finish_trial, self.study_id, trial.number,
            state=outcome.state, value=outcome.value, values=outcome.values,
            best_epoch=outcome.best_epoch, stop_reason=outcome.stop_reason, error=outcome.error,
            test_metrics=outcome.test_metrics, finished_at=datetime.now(UTC),
        )  # fmt: skip
        if self._trial_checkpoints is not None and not keep_state:
            self.writer.submit(
                self._trial_checkpoints.delete, trial_key(self.study_id, trial.number)
            )
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


_START_BACKOFF_S = 0.5
_START_BACKOFF_MAX_S = 30.0


def _only_data_errors(exc: BaseException) -> bool:
    """Whether every error in `exc` (a task group's, often) is the study's data's fault."""
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_data_errors(e) for e in exc.exceptions)
    return isinstance(exc, DataUnavailable)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(dict.fromkeys(_describe(e) for e in exc.exceptions))
    return describe_error(exc)
