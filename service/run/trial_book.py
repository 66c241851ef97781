"""A study's trial rows as its driver writes them: begun, interrupted, ended (and the
study's warnings).

Optuna is told first and the service's row written after it, both through the study's
writer in that order (see `recovery` for what a crash between the two leaves). The
times are taken when the driver decides, not when the writer runs.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import optuna

from service.metrics import ServiceMetrics
from service.run.draws import Drawer
from service.run.jobs import TrialJob
from service.run.ledger import Ledger
from service.run.optuna_bridge import OptunaBridge
from service.run.outcome import TrialOutcome
from service.run.runner import Slot
from service.run.writer import OrderedWriter


class TrialBook:
    """Writes one study's trials in both stores, and counts them in the metrics."""

    def __init__(
        self,
        study_id: int,
        optuna: OptunaBridge,
        *,
        ledger: Ledger,
        writer: OrderedWriter,
        metrics: ServiceMetrics | None,
    ):
        self.study_id = study_id
        self.optuna = optuna
        self.ledger = ledger
        self.writer = writer
        self._drawer = Drawer(optuna)
        self._metrics = metrics
        self._warned: set[str] = set()

    def warn(self, warning: str) -> None:
        """Put `warning` on the study, once."""
        if warning not in self._warned:
            self._warned.add(warning)
            self.writer.submit(self.ledger.store.add_warning, self.study_id, warning)

    async def begin(self, slot: Slot, job: TrialJob) -> tuple[optuna.Trial, dict[str, Any]]:
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
            self.ledger.store.create_trial,
            self.study_id,
            trial.number,
            params,
            node=slot.node,
            started_at=datetime.now(UTC),
            device=slot.device,
        )
        return trial, params

    def interrupt(self, number: int, reason: str) -> None:
        """Trial `number` stopped unfinished for `reason`: it waits to resume."""
        self.writer.submit(
            self.ledger.store.interrupt_trial, self.study_id, number, end=reason, state="waiting"
        )

    def end(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """Tell Optuna first, then end the trial's row the API reads (`Ledger.end_trial`)."""
        values = outcome.values if outcome.state == "complete" else None
        started = time.perf_counter()
        self.writer.submit(self.optuna.tell(trial, outcome.optuna_state, values))
        if self._metrics is not None:
            self._metrics.tell_seconds.observe(time.perf_counter() - started)
            self._metrics.trials_finished.labels(outcome.state).inc()
            self._metrics.epochs.inc(outcome.epochs_run)
        self.writer.submit(
            self.ledger.end_trial,
            self.study_id,
            trial.number,
            state=outcome.state,
            value=outcome.value,
            values=outcome.values,
            best_epoch=outcome.best_epoch,
            stop_reason=outcome.stop_reason,
            error=outcome.error,
            test_metrics=outcome.test_metrics,
            finished_at=datetime.now(UTC),
        )
