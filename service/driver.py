"""The study driver: keeps up to `parallelism` trials in flight until the budget ends.

Each slot loop asks Optuna for params, trains epoch by epoch on a slot, records
every epoch, asks the pruner, applies early stopping and tells Optuna the
outcome. Decisions are made in memory (see `optuna_bridge`); every write, to
Optuna's tables and to the store, goes in order through one writer thread per
study, so a trial's path never waits on a database commit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time

import optuna

from search.samplers import GridSamplerSpec, grid_size
from service.optuna_bridge import OptunaBridge
from service.outcome import CurveBest, TrialOutcome
from service.runner import Slot, TrialError, TrialRunner, TrialStart, WorkerLost
from service.spec import StudySpec
from service.writer import OrderedWriter
from storage.repository import Store
from workers.early_stopping import EarlyStopping


class StudyDriver:
    """Runs one study to the end of its budget, or until `request_stop`."""

    def __init__(
        self, study_id: int, spec: StudySpec, optuna: OptunaBridge, *, store: Store,
        runner: TrialRunner, n_done: int = 0, n_failed: int = 0,
    ):  # fmt: skip
        self.study_id = study_id
        self.spec = spec
        self.optuna = optuna
        self.store = store
        self.runner = runner
        self.writer = OrderedWriter(f"study-{study_id}")
        self._n_claimed = n_done
        self._n_failed = n_failed
        self._max_trials, self._spent_reason = trial_budget(spec)
        self._end_reason: str | None = None
        self._started = time.monotonic()

    async def run(self) -> None:
        """Drive the study and write its final state; a trial's fault never escapes."""
        await self.writer.call(self.store.set_study_state, self.study_id, "running")
        self._started = time.monotonic()
        error: str | None = None
        try:
            n_loops = min(self.spec.budget.parallelism, self._max_trials - self._n_claimed)
            async with asyncio.TaskGroup() as group:
                for _ in range(n_loops):
                    group.create_task(self._slot_loop())
        except Exception as exc:  # noqa: BLE001 - the study fails, the service goes on
            error = _describe(exc)
        finally:
            await self.runner.close()
        error = error or await self.writer.drain()
        state, reason = self._final_state(error)
        await self.writer.call(
            self.store.set_study_state, self.study_id, state, reason=reason, error=error
        )
        self.writer.close()

    def request_stop(self, reason: str = "user") -> None:
        """End the study: running trials stop after their current epoch as cancelled."""
        self._end_reason = self._end_reason or reason

    def _final_state(self, error: str | None) -> tuple[str, str]:
        if error is not None:
            return "failed", "error"
        reason = self._end_reason or self._spent_reason
        if reason == "user":
            return "stopped", reason
        if reason == "max_failed_trials":
            return "failed", reason
        return "completed", reason

    async def _slot_loop(self) -> None:
        slot = await self.runner.open_slot()
        while self._claim_trial():
            outcome = await self._run_trial(slot)
            if outcome.stop_reason == "worker_lost":
                await slot.close()
                slot = await self.runner.open_slot()

    def _claim_trial(self) -> bool:
        self._check_timeout()
        self.writer.raise_if_failed()
        if self._end_reason is not None or self._n_claimed >= self._max_trials:
            return False
        self._n_claimed += 1
        return True

    def _check_timeout(self) -> None:
        timeout_s = self.spec.budget.timeout_s
        if timeout_s is not None and time.monotonic() - self._started >= timeout_s:
            self.request_stop("timeout")

    async def _run_trial(self, slot: Slot) -> TrialOutcome:
        trial, params, create = self.optuna.ask()
        self.writer.submit(create)
        self.writer.submit(
            self.store.create_trial, self.study_id, trial.number, params, node=slot.node
        )
        outcome = await self._train(slot, trial, {**self.spec.params, **params})
        self._finish(trial, outcome)
        return outcome

    async def _train(
        self, slot: Slot, trial: optuna.Trial, params: dict[str, object]
    ) -> TrialOutcome:
        number = trial.number
        try:
            await slot.start_trial(TrialStart(dict(params), seed=self.spec.split.seed + number))
            outcome = await self._epochs(slot, trial)
            test_metrics = await slot.end_trial()
            return dataclasses.replace(outcome, test_metrics=test_metrics)
        except WorkerLost as exc:
            return TrialOutcome("worker_lost", error=str(exc))
        except TrialError as exc:
            return TrialOutcome("failed", error=str(exc))

    async def _epochs(self, slot: Slot, trial: optuna.Trial) -> TrialOutcome:
        budget, primary = self.spec.budget, self.spec.primary
        stopper = EarlyStopping(
            patience=self.spec.early_stopping.patience,
            min_delta=self.spec.early_stopping.min_delta,
            direction=primary.direction,
        )
        best = CurveBest(
            primary.metric, primary.direction, [o.metric for o in self.spec.objectives]
        )
        for epoch in range(1, budget.max_epochs + 1):
            self._check_timeout()
            if self._end_reason is not None:
                return best.outcome("cancelled")
            metrics = await slot.run_epoch()
            value = float(metrics[primary.metric])
            self._record_epoch(trial, epoch, metrics)
            if not (math.isfinite(value) and math.isfinite(metrics["train_loss"])):
                return best.outcome("diverged")
            best.update(epoch, metrics)
            pruned, write = self.optuna.report(trial, epoch, value)
            self.writer.submit(write)
            if best.reached(budget.target):
                self.request_stop("target_reached")
                return best.outcome("completed")
            if pruned:
                return best.outcome("pruned")
            if stopper.update(epoch, value):
                return best.outcome("early_stopped")
        return best.outcome("completed")

    def _record_epoch(self, trial: optuna.Trial, epoch: int, metrics: dict[str, float]) -> None:
        """Queue the epoch's row; JSON has no NaN or infinity, so those are stored as null."""
        values = {
            k: (v if math.isfinite(v) else None) for k, v in metrics.items() if k != "seconds"
        }
        self.writer.submit(
            self.store.add_epoch, self.study_id, trial.number,
            epoch=epoch, seconds=metrics.get("seconds", 0.0), metrics=values,
        )  # fmt: skip

    def _finish(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """Tell Optuna first, then write the summary row the API reads."""
        values = outcome.values if outcome.state == "complete" else None
        self.writer.submit(self.optuna.tell(trial, outcome.optuna_state, values))
        self.writer.submit(
            self.store.finish_trial, self.study_id, trial.number,
            state=outcome.state, value=outcome.value, values=outcome.values,
            best_epoch=outcome.best_epoch,
            stop_reason=outcome.stop_reason, error=outcome.error, test_metrics=outcome.test_metrics,
        )  # fmt: skip
        if outcome.state == "failed":
            self._n_failed += 1
            if self._n_failed >= self.spec.budget.max_failed_trials:
                self.request_stop("max_failed_trials")


def trial_budget(spec: StudySpec) -> tuple[int, str]:
    """How many trials the study may run, and the reason it ends when they are done."""
    if isinstance(spec.sampler, GridSamplerSpec):
        size = grid_size(spec.sampler, spec.space)
        if size < spec.budget.max_trials:
            return size, "grid_exhausted"
    return spec.budget.max_trials, "max_trials"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"
