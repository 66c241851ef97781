"""One trial on one slot: start it, train epoch by epoch until a stop rule fires, end it.

Rules, in the order they are checked after each epoch: a NaN or infinite value
(diverged), the study's target (the study then ends), the pruner, early stopping,
`max_epochs`. A study that is ending (stop, timeout, target reached elsewhere)
cancels the trial before its next epoch; `trial_timeout_s` cancels it too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from service.optuna_bridge import OptunaBridge
from service.outcome import CurveBest, TrialOutcome
from service.runner import LastEpoch, Slot, TrialError, TrialStart, WorkerLost
from service.spec import StudySpec
from service.writer import OrderedWriter
from storage.repository import Store
from workers.early_stopping import EarlyStopping


@dataclass(frozen=True)
class TrialContext:
    """What a trial needs from its study's driver."""

    study_id: int
    spec: StudySpec
    optuna: OptunaBridge
    store: Store
    writer: OrderedWriter
    study_ending: Callable[[], bool]
    target_reached: Callable[[], None]
    keeps_checkpoint: Callable[[float], bool]
    last_epoch: Callable[[], LastEpoch]
    save_checkpoint: Callable[[int, float, bytes], None]


async def run_trial(
    ctx: TrialContext, slot: Slot, trial: optuna.Trial, params: dict[str, object]
) -> TrialOutcome:
    """Train one trial; worker and training failures become outcomes, not exceptions."""
    started = time.monotonic()
    try:
        await slot.start_trial(TrialStart(dict(params), seed=ctx.spec.split.seed + trial.number))
        outcome = await _epochs(ctx, slot, trial, started)
        if outcome.timed_out:
            return outcome
        value = outcome.value
        keep = outcome.state == "complete" and value is not None and ctx.keeps_checkpoint(value)
        end = await slot.end_trial(keep_weights=keep)
        if keep and value is not None and end.weights is not None:
            ctx.save_checkpoint(trial.number, value, end.weights)
        return dataclasses.replace(outcome, test_metrics=end.test_metrics)
    except WorkerLost as exc:
        return TrialOutcome("worker_lost", error=str(exc))
    except TrialError as exc:
        return TrialOutcome("failed", error=str(exc))


async def _epochs(
    ctx: TrialContext, slot: Slot, trial: optuna.Trial, started: float
) -> TrialOutcome:
    spec, primary = ctx.spec, ctx.spec.primary
    stopper = EarlyStopping(
        patience=spec.early_stopping.patience, min_delta=spec.early_stopping.min_delta,
        direction=primary.direction,
    )  # fmt: skip
    best = CurveBest(primary.metric, primary.direction, [o.metric for o in spec.objectives])
    for epoch in range(1, spec.budget.max_epochs + 1):
        if ctx.study_ending():
            return best.outcome("cancelled")
        try:
            last = ctx.last_epoch() if epoch == spec.budget.max_epochs else None
            metrics = await asyncio.wait_for(slot.run_epoch(last=last), _time_left(spec, started))
        except TimeoutError:
            limit = spec.budget.trial_timeout_s
            return dataclasses.replace(
                best.outcome("cancelled"),
                error=f"ran longer than trial_timeout_s={limit}",
                timed_out=True,
            )
        value = float(metrics[primary.metric])
        _record_epoch(ctx, trial, epoch, metrics)
        if not (math.isfinite(value) and math.isfinite(metrics["train_loss"])):
            return best.outcome("diverged")
        best.update(epoch, metrics)
        pruned, write = ctx.optuna.report(trial, epoch, value)
        ctx.writer.submit(write)
        if best.reached(spec.budget.target):
            ctx.target_reached()
            return best.outcome("completed")
        if pruned:
            return best.outcome("pruned")
        if stopper.update(epoch, value):
            return best.outcome("early_stopped")
    return best.outcome("completed")


def _time_left(spec: StudySpec, started: float) -> float | None:
    limit = spec.budget.trial_timeout_s
    return None if limit is None else max(0.0, limit - (time.monotonic() - started))


def _record_epoch(
    ctx: TrialContext, trial: optuna.Trial, epoch: int, metrics: dict[str, float]
) -> None:
    """Queue the epoch's row; JSON has no NaN or infinity, so those are stored as null."""
    values = {k: (v if math.isfinite(v) else None) for k, v in metrics.items() if k != "seconds"}
    ctx.writer.submit(
        ctx.store.add_epoch, ctx.study_id, trial.number, epoch=epoch,
        seconds=metrics.get("seconds", 0.0), metrics=values,
    )  # fmt: skip
