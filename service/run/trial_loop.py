"""One trial on one slot: start (or resume) it, train epoch by epoch until a rule fires.

Rules, in the order they are checked after each epoch: a NaN or infinite value
(diverged), the study's target (the study then ends), the pruner, early stopping,
`max_epochs`. Before each epoch: a pause, a preemption or a shutdown stops the trial
unfinished with a checkpoint (it resumes later); a study that is ending (stop,
timeout, target reached elsewhere) cancels it; `trial_timeout_s` cancels it too.

A resumed trial replays the epochs its checkpoint holds into the stop rules, so
early stopping's patience, the best epoch and the pruner see one unbroken curve.

In a PBT study (`population`), every `interval_epochs` a member saves its state and is
ranked; one in the bottom quantile goes on as a mutated copy of one in the top
quantile (`_exploit_step`). The copy's best value and early stopping start over: the
member's value is the best of the model it ends with. When members wait for slots the
study cannot have (a cluster smaller than the population), a member past a boundary
gives its slot to the member furthest behind (`rotates`, as Ray Tune's PBT does): the
population trains in step and is ranked against itself, not against finished members.

Out of device memory ends the trial as `out_of_memory` and its slot goes on to the
next one; a slot that cannot use its GPUs fails each trial and warns the study.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from service.run.optuna_bridge import OptunaBridge
from service.run.outcome import CurveBest, TrialOutcome
from service.run.population import Population
from service.run.runner import (
    LastEpoch,
    Slot,
    SlotCannotTrain,
    TrialError,
    TrialOutOfMemory,
    TrialStart,
    WorkerLost,
)
from service.run.writer import OrderedWriter
from service.spec import StudySpec
from storage.repository import Store
from storage.session import describe_error
from workers.early_stopping import EarlyStopping
from workers.trial_checkpoints import CheckpointPolicy

log = logging.getLogger(__name__)

ROTATED = "rotated"
"""A PBT member stopped at a boundary to let a member behind it train (see `rotates`)."""


@dataclass(frozen=True, kw_only=True)
class TrialContext:
    """What a trial needs from its study's driver."""

    study_id: int
    spec: StudySpec
    optuna: OptunaBridge
    store: Store
    writer: OrderedWriter
    study_ending: Callable[[], bool]
    interruption: Callable[[Slot], str | None]
    target_reached: Callable[[], object]
    keeps_checkpoint: Callable[[float], bool]
    last_epoch: Callable[[], LastEpoch]
    save_checkpoint: Callable[[int, float, bytes], None]
    checkpoint_policy: Callable[[int], CheckpointPolicy | None]
    warn: Callable[[str], None]
    population: Population | None = None
    rotates: Callable[[int], bool] = lambda _epochs: False
    """Whether a PBT member that trained this many epochs gives its slot to one behind."""


@dataclass
class _Rules:
    """The stop rules' state along one curve."""

    stopper: EarlyStopping
    best: CurveBest
    last_value: float | None = None


async def run_trial(
    ctx: TrialContext,
    slot: Slot,
    trial: optuna.Trial,
    params: dict[str, object],
    *,
    resume: bool = False,
) -> TrialOutcome:
    """Train one trial; every failure of the trial becomes an outcome, never an exception:
    an error nobody mapped fails this trial only, and marks its slot as suspect."""
    started = time.monotonic()
    start = TrialStart(
        dict(params),
        seed=ctx.spec.trial_seed(trial.number),
        checkpoint=ctx.checkpoint_policy(trial.number),
    )
    rules = _rules(ctx.spec)
    try:
        first = 1
        if resume:
            first = await _resume(ctx, slot, trial, start, rules)
        else:
            await slot.start_trial(start)
        outcome = await _epochs(ctx, slot, trial, rules, first, started)
        if outcome.timed_out or outcome.interrupted:
            return outcome
        if ctx.population is not None and outcome.state != "failed":
            # A finished member stays a donor until the study ends, as in Ray Tune: members
            # that started late are ranked against it and may copy its final state.
            await _checkpoint_now(ctx, slot, trial, outcome.epochs_run)
            if rules.last_value is not None:
                ctx.population.finished(trial.number, rules.last_value)
        value = outcome.value
        keep = outcome.state == "complete" and value is not None and ctx.keeps_checkpoint(value)
        end = await slot.end_trial(keep_weights=keep)
        if keep and value is not None and end.weights is not None:
            ctx.save_checkpoint(trial.number, value, end.weights)
        return dataclasses.replace(outcome, test_metrics=end.test_metrics)
    except WorkerLost as exc:
        return TrialOutcome("worker_lost", error=str(exc))
    except TrialOutOfMemory as exc:
        return TrialOutcome("out_of_memory", error=str(exc), epochs_run=rules.best.epochs_seen)
    except SlotCannotTrain as exc:
        ctx.warn(f"trials fail on a slot that cannot use its GPUs: {exc}")
        return TrialOutcome("failed", error=str(exc))
    except TrialError as exc:
        return TrialOutcome("failed", error=str(exc), epochs_run=rules.best.epochs_seen)
    except Exception as exc:  # noqa: BLE001 - what nobody mapped fails this trial, no other
        log.exception("study %s trial %s raised", ctx.study_id, trial.number)
        return TrialOutcome(
            "failed",
            error=describe_error(exc),
            epochs_run=rules.best.epochs_seen,
            slot_suspect=True,
        )


def _rules(spec: StudySpec) -> _Rules:
    primary = spec.primary
    stopper = EarlyStopping(
        patience=spec.early_stopping.patience,
        min_delta=spec.early_stopping.min_delta,
        direction=primary.direction,
    )
    best = CurveBest(primary.metric, primary.direction, [o.metric for o in spec.objectives])
    return _Rules(stopper, best)


async def _resume(
    ctx: TrialContext, slot: Slot, trial: optuna.Trial, start: TrialStart, rules: _Rules
) -> int:
    """Load the trial's checkpoint on the slot and replay its epochs; the next epoch."""
    resumed = await slot.resume_trial(start)
    if resumed.error is not None:
        ctx.warn(f"trial {trial.number}: {resumed.error}")
    history = [(m.get("seconds", 0.0), _recordable(m)) for m in resumed.history]
    ctx.writer.submit(
        ctx.store.resume_trial,
        ctx.study_id,
        trial.number,
        node=slot.node,
        history=history,
        device=slot.device,
    )
    metric = ctx.spec.primary.metric
    for epoch, metrics in enumerate(resumed.history, start=1):
        rules.best.update(epoch, metrics)
        rules.stopper.update(epoch, float(metrics[metric]))
        write = ctx.optuna.replay(trial, epoch, float(metrics[metric]))
        if write is not None:
            ctx.writer.submit(write)
        if epoch == resumed.adopted_at:  # a PBT copy: its rules started over here
            _restart(ctx, rules)
    return len(resumed.history) + 1


async def _epochs(
    ctx: TrialContext, slot: Slot, trial: optuna.Trial, rules: _Rules, first: int, started: float
) -> TrialOutcome:
    spec, primary, best = ctx.spec, ctx.spec.primary, rules.best
    for epoch in range(first, spec.budget.max_epochs + 1):
        reason = ctx.interruption(slot)
        if reason == "preempted" and epoch == first:
            reason = None  # a run that yields trains an epoch first: no start goes to waste
        if reason is None and epoch > first and _at_boundary(spec, epoch - 1):
            reason = ROTATED if ctx.rotates(epoch - 1) else None
        if reason is not None:
            await _checkpoint_now(ctx, slot, trial, epoch - 1)
            return dataclasses.replace(best.outcome("cancelled"), interrupted=reason)
        if ctx.study_ending():
            return best.outcome("cancelled")
        try:
            # The last epoch and the trial's end in one call; not for a PBT member, whose
            # final state is saved for others to copy.
            merge = epoch == spec.budget.max_epochs and ctx.population is None
            last = ctx.last_epoch() if merge else None
            result = await asyncio.wait_for(slot.run_epoch(last=last), _time_left(spec, started))
        except TimeoutError:
            limit = spec.budget.trial_timeout_s
            return dataclasses.replace(
                best.outcome("cancelled"),
                error=f"ran longer than trial_timeout_s={limit}",
                timed_out=True,
            )
        metrics = result.metrics
        if primary.metric not in metrics:
            raise TrialError(
                f"epoch {epoch} reported no {primary.metric!r} (the objective); it reported "
                f"{sorted(metrics)}"
            )
        value = rules.last_value = float(metrics[primary.metric])
        _record_epoch(ctx, trial, epoch, metrics)
        _note_checkpoint(ctx, trial, epoch, result.checkpoint_bytes, result.checkpoint_error)
        if not (math.isfinite(value) and math.isfinite(metrics.get("train_loss", value))):
            return best.outcome("diverged")
        best.update(epoch, metrics)
        pruned, write = ctx.optuna.report(trial, epoch, value)
        ctx.writer.submit(write)
        if best.reached(spec.budget.target):
            ctx.target_reached()
            return best.outcome("completed")
        if pruned:
            return best.outcome("pruned")
        if rules.stopper.update(epoch, value):
            return best.outcome("early_stopped")
        if _at_boundary(spec, epoch):
            await _exploit_step(ctx, slot, trial, rules, epoch, value)
            best = rules.best
    return best.outcome("completed")


def _at_boundary(spec: StudySpec, epoch: int) -> bool:
    population = spec.population
    return (
        population is not None
        and epoch % population.interval_epochs == 0
        and epoch < spec.budget.max_epochs
    )


async def _exploit_step(
    ctx: TrialContext, slot: Slot, trial: optuna.Trial, rules: _Rules, epoch: int, value: float
) -> None:
    """PBT: save the member (so others may copy it), rank it; one in the bottom quantile
    goes on as a mutated copy of one in the top quantile, loaded on its own slot."""
    population = ctx.population
    assert population is not None
    await _checkpoint_now(ctx, slot, trial, epoch)
    exploit = population.at_boundary(trial.number, value)
    donor_policy = ctx.checkpoint_policy(exploit.donor) if exploit is not None else None
    if exploit is None or donor_policy is None:
        return
    start = TrialStart(
        {**ctx.spec.params, **exploit.params},
        seed=ctx.spec.trial_seed(trial.number),
        checkpoint=ctx.checkpoint_policy(trial.number),
    )
    copied = await slot.exploit(start, donor_policy.key)
    if copied.error is not None:
        return  # the donor's checkpoint is gone (it failed meanwhile): train on unchanged
    metric = ctx.spec.primary.metric
    loaded = _finite((copied.loaded_metrics or {}).get(metric))
    population.adopted(trial.number, exploit, loaded)
    entry = {
        "epoch": epoch,
        "copied": exploit.donor,
        "copied_epoch": copied.donor_epoch,
        "copied_value": _finite((copied.donor_metrics or {}).get(metric)),
        "loaded_value": loaded,
        "changed": exploit.changed,
        "params": exploit.params,
    }
    ctx.writer.submit(ctx.store.add_lineage, ctx.study_id, trial.number, entry)
    _restart(ctx, rules)


def _restart(ctx: TrialContext, rules: _Rules) -> None:
    """A PBT copy's best value and early stopping start over (its epochs count on)."""
    fresh = _rules(ctx.spec)
    fresh.best.epochs_seen = rules.best.epochs_seen
    rules.best, rules.stopper = fresh.best, fresh.stopper


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


async def _checkpoint_now(ctx: TrialContext, slot: Slot, trial: optuna.Trial, epoch: int) -> None:
    """Save the trial's state at this boundary (a no-op if its last epoch was saved)."""
    if epoch < 1:
        return
    try:
        size, error = await slot.save_checkpoint()
    except (WorkerLost, TrialError) as exc:
        size, error = None, str(exc)
    _note_checkpoint(ctx, trial, epoch, size, error)


def _note_checkpoint(
    ctx: TrialContext, trial: optuna.Trial, epoch: int, size: int | None, error: str | None
) -> None:
    if size is not None:
        ctx.writer.submit(
            ctx.store.note_checkpoint, ctx.study_id, trial.number, epoch=epoch, size=size
        )
    if error is not None:
        ctx.warn(f"checkpoints could not be written, trials run on without them: {error}")


def _time_left(spec: StudySpec, started: float) -> float | None:
    limit = spec.budget.trial_timeout_s
    return None if limit is None else max(0.0, limit - (time.monotonic() - started))


def _recordable(metrics: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN or infinity, so those are stored as null; seconds has a column."""
    return {k: (v if math.isfinite(v) else None) for k, v in metrics.items() if k != "seconds"}


def _record_epoch(
    ctx: TrialContext, trial: optuna.Trial, epoch: int, metrics: dict[str, float]
) -> None:
    ctx.writer.submit(
        ctx.store.add_epoch,
        ctx.study_id,
        trial.number,
        epoch=epoch,
        seconds=metrics.get("seconds", 0.0),
        metrics=_recordable(metrics),
    )
