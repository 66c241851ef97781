"""Response schemas: what the API promises to return, per resource."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field

from service.cluster.cluster_view import ScopedCluster, TenantView, amount
from service.records import TrialRecord
from service.run.outcome import STOP_REASONS
from service.studies.insights import Curve
from service.studies.study_service import StudyView

StudyState = Literal["queued", "running", "paused", "completed", "stopped", "failed"]
TrialState = Literal["waiting", "running", "complete", "pruned", "failed"]


class LineageOut(BaseModel):
    """A PBT member's copy of another member at a boundary."""

    epoch: int = Field(description="The boundary: the copy trains from the next epoch on.")
    copied: int = Field(description="The number of the member copied (weights and params).")
    copied_epoch: int | None = Field(description="The copied member's epoch in its checkpoint.")
    copied_value: float | None = Field(description="Its objective value at that epoch.")
    loaded_value: float | None = Field(
        description="The copy's objective value before it trained: equal to copied_value."
    )
    changed: dict[str, Any] = Field(description="The params the mutation changed, new values.")
    params: dict[str, Any] = Field(description="The searched params it trains with from here.")


class SchedulePiece(BaseModel):
    from_epoch: int
    params: dict[str, Any]


class TrialOut(BaseModel):
    number: int
    state: TrialState
    params: dict[str, Any]
    value: float | None
    values: list[float] | None
    best_epoch: int | None
    epochs_run: int
    stop_reason: str | None = Field(
        description=f"Why a finished trial ended: one of {', '.join(STOP_REASONS)}. "
        "`out_of_memory`: the device ran out of memory (the trial is failed here, and told to "
        "Optuna as pruned so that the sampler draws less of its region)."
    )
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    node: str | None
    device: str | None = Field(
        description="What the trial trained on: the GPU's name (e.g. NVIDIA H200), or cpu."
    )
    retry_of: int | None
    error: str | None
    test_metrics: dict[str, float] | None = Field(
        description="Test metrics of the trial's best weights; selection uses validation only."
    )
    checkpoint_epoch: int | None = Field(
        description="The epoch an unfinished trial resumes after (its latest checkpoint)."
    )
    lineage: list[LineageOut] = Field(
        default_factory=list, description="A PBT member's copies of other members, in order."
    )
    schedule: list[SchedulePiece] = Field(
        default_factory=list,
        description="A PBT member's searched params over its epochs: each piece holds from "
        "`from_epoch` until the next piece. The schedule to replay (empty outside PBT).",
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialOut:
        fields = {name: getattr(trial, name) for name in cls.model_fields
                  if name not in ("lineage", "schedule")}  # fmt: skip
        lineage = [LineageOut(**entry) for entry in trial.lineage]
        schedule = [SchedulePiece(from_epoch=1, params=trial.params)] if lineage else []
        schedule += [SchedulePiece(from_epoch=e.epoch + 1, params=e.params) for e in lineage]
        return cls(**fields, lineage=lineage, schedule=schedule)


class AttemptOut(BaseModel):
    """One run of a trial on one slot; a resumed trial has one per run."""

    node: str | None
    device: str | None = None
    started_at: datetime
    finished_at: datetime | None
    from_epoch: int = Field(description="Epochs the run started with, from a checkpoint.")
    epochs_trained: int | None = Field(description="Epochs this run trained, once it ended.")
    end: str | None = Field(
        description="Why the run ended: a stop reason, or paused, preempted, worker_lost, "
        "rotated (a PBT member gave its slot to one behind it), shutdown, interrupted (the "
        "service died); null while it runs."
    )


# Counts, not measurements: workers report every metric as a float, the API says these whole.
INTEGER_METRICS = frozenset({"n_params"})
EpochValue = int | float | None


class TrialDetailOut(TrialOut):
    attempts: list[AttemptOut] = Field(description="The trial's runs, oldest first.")
    epochs: list[dict[str, EpochValue]] = Field(
        description="Per epoch: epoch, train_loss, val_loss, val metrics, lr, seconds (of that "
        "epoch), train_seconds (so far) and n_params, and on a GPU peak_gpu_memory_mb; epoch "
        "and n_params are integers. A NaN or infinite value (a diverged trial) is null."
    )

    @classmethod
    def of(cls, trial: TrialRecord) -> TrialDetailOut:
        base = TrialOut.of(trial).model_dump()
        epochs: list[dict[str, EpochValue]] = [
            {"epoch": e.epoch, **_with_counts(e.metrics), "seconds": e.seconds}
            for e in trial.epochs
        ]
        attempts = [AttemptOut(**vars(a)) for a in trial.attempts]
        return cls(**base, attempts=attempts, epochs=epochs)


def _with_counts(metrics: dict[str, float | None]) -> dict[str, EpochValue]:
    return {k: as_count(v) if k in INTEGER_METRICS else v for k, v in metrics.items()}


def as_count(value: float | None) -> int | None:
    """A count the worker sent as a float (1234.0), as the integer it is."""
    return None if value is None else int(value)


class BudgetPatch(BaseModel):
    """Budget fields to change when resuming; omitted ones keep their values."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_trials: int | None = Field(default=None, ge=1, le=100_000)
    max_epochs: int | None = Field(default=None, ge=1, le=10_000)
    parallelism: int | None = Field(default=None, ge=1, le=1_024)
    timeout_s: float | None = Field(default=None, gt=0)
    target: float | None = None
    max_failed_trials: int | None = Field(default=None, ge=1)


class ResumeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    budget: BudgetPatch | None = None


class StudyOut(BaseModel):
    id: int
    name: str
    state: StudyState
    state_reason: str | None
    spec: dict[str, Any]
    counts: dict[str, int]
    best: TrialOut | None
    optuna_study_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    warnings: list[str] = Field(description="What the service changed or degraded, and why.")
    priority: int = Field(description="Among its tenant's studies, higher gets slots first.")
    queue_position: int | None = Field(
        description="Its place among the studies waiting for a slot (1 is next); null when "
        "it waits for none."
    )
    waiting_since: datetime | None = Field(description="When its current wait for a slot began.")
    slots_held: int = Field(description="Slots training its trials now (up to parallelism).")
    checkpoint_bytes: int = Field(
        description="What its unfinished trials' checkpoints take in the checkpoint store."
    )

    @classmethod
    def of(cls, view: StudyView) -> StudyOut:
        r, q = view.record, view.queue
        return cls(
            id=r.id, name=r.name, state=cast(StudyState, r.state),
            state_reason=r.state_reason, spec=r.spec,
            counts=view.counts, best=TrialOut.of(view.best) if view.best else None,
            optuna_study_name=r.optuna_study_name, created_at=r.created_at,
            started_at=r.started_at, finished_at=r.finished_at, error=r.error,
            warnings=r.warnings, priority=int(r.spec.get("priority", 0)),
            queue_position=q.position if q else None, waiting_since=q.waiting_since if q else None,
            slots_held=q.slots_held if q else 0, checkpoint_bytes=view.checkpoint_bytes,
        )  # fmt: skip


class StudyPage(BaseModel):
    items: list[StudyOut]
    next_cursor: str | None


class TrialPage(BaseModel):
    items: list[TrialOut]
    next_cursor: str | None


class BestOut(BaseModel):
    items: list[TrialOut]


class HistoryPoint(BaseModel):
    number: int = Field(description="First trial number in the bucket.")
    last: int = Field(description="Last trial number in the bucket.")
    lo: float
    hi: float
    best: float = Field(description="Best value of every trial up to `last`.")
    count: int


class HistoryOut(BaseModel):
    """Complete trials' primary value by number, bucketed to at most `points` buckets."""

    direction: Literal["minimize", "maximize"]
    n_complete: int
    bucket_size: int
    items: list[HistoryPoint]


class ImportanceItem(BaseModel):
    param: str
    importance: float


class ImportanceOut(BaseModel):
    evaluator: str = Field(description="Optuna's importance evaluator used.")
    n_trials: int = Field(description="Complete trials the importances were computed from.")
    items: list[ImportanceItem]


class CurveOut(BaseModel):
    number: int
    state: TrialState
    value: float | None
    epochs: list[int]
    values: list[EpochValue] = Field(
        description="The metric per epoch (an integer for a count such as n_params); null if "
        "not finite."
    )

    @classmethod
    def of(cls, curve: Curve, metric: str) -> CurveOut:
        values: list[EpochValue] = list(curve.values)
        if metric in INTEGER_METRICS:
            values = [as_count(v) for v in curve.values]
        state = cast(TrialState, curve.state)
        return cls(
            number=curve.number, state=state, value=curve.value, epochs=curve.epochs, values=values
        )


class CurvesOut(BaseModel):
    metric: str
    items: list[CurveOut]


class ErrorDetail(BaseModel):
    loc: str
    msg: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail] = []


class ErrorOut(BaseModel):
    """The one shape of every error response."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text}
    for code, text in (
        (401, "missing or wrong bearer token (when HPO_API_TOKENS is set)"),
        (404, "no such study, trial or data set (or another tenant's)"),
        (409, "the study's state does not allow this"),
        (413, "request body too large"),
        (422, "invalid request; details name each field"),
        (429, "too many submissions (see Retry-After), or a tenant cap reached"),
        (503, "database or Ray unreachable"),
    )
}


class NodeOut(BaseModel):
    node_id: str
    alive: bool
    cpus: float
    gpus: float
    cpus_used: float = Field(
        description="Held by the service's slots: busy ones, and idle ones that reserve their "
        "room in Ray (a reshapeable CPU slot holds none while idle)."
    )
    gpus_used: float


class SlotOut(BaseModel):
    slot_id: int
    node_id: str
    cpus: float
    gpus: float
    state: Literal["busy", "idle"]
    study_id: int | None = Field(
        description="The study it trains for; null when idle or another tenant's."
    )
    tenant: str | None


class TenantOut(BaseModel):
    tenant: str = Field(description="The tenant, or `others`: every other tenant summed.")
    weight: float
    share: float = Field(
        description="The fraction of the cluster its weight entitles it to "
        "among the tenants with studies now."
    )
    cpus: float
    gpus: float
    slots: int = Field(description="Busy slots.")
    dominant_share: float = Field(
        description="Its largest fraction of the cluster's CPUs or GPUs held now."
    )
    studies_waiting: int
    quota_cpus: float | None
    quota_gpus: float | None


class QueueEntryOut(BaseModel):
    position: int
    study_id: int | None = Field(description="Null for another tenant's study.")
    name: str | None
    tenant: str | None
    priority: int | None
    waiting_since: datetime | None
    slots_held: int
    parallelism: int
    cpus_per_trial: float
    gpus_per_trial: float


class ClusterOut(BaseModel):
    """The cluster as the caller's tenant may see it."""

    nodes: list[NodeOut]
    slots: list[SlotOut]
    tenants: list[TenantOut]
    others: TenantOut | None = Field(description="Other tenants' usage as one total.")
    queue: list[QueueEntryOut] = Field(
        description="Studies waiting for a slot, in the order they will get one."
    )
    reserved_node: str | None = Field(
        description="A node kept free for the first study in "
        "the queue, whose trials fit nowhere else yet."
    )

    @classmethod
    def of(cls, cluster: ScopedCluster) -> ClusterOut:
        snap = cluster.snapshot
        return cls(
            nodes=[NodeOut(node_id=n.node_id, alive=n.alive, cpus=amount(n.capacity.cpus),
                           gpus=amount(n.capacity.gpus), cpus_used=amount(n.used.cpus),
                           gpus_used=amount(n.used.gpus)) for n in snap.nodes],
            slots=[SlotOut(slot_id=s.slot_id, node_id=s.node_id, cpus=amount(s.shape.cpus),
                           gpus=amount(s.shape.gpus), state=cast(Any, s.state),
                           study_id=s.study_id, tenant=s.tenant) for s in snap.slots],
            tenants=[_tenant_out(t) for t in snap.tenants],
            others=_tenant_out(cluster.others) if cluster.others else None,
            queue=[QueueEntryOut(
                position=q.position, study_id=q.study_id, name=q.name, tenant=q.tenant,
                priority=q.priority, waiting_since=q.waiting_since, slots_held=q.slots_held,
                parallelism=q.parallelism, cpus_per_trial=amount(q.shape.cpus),
                gpus_per_trial=amount(q.shape.gpus)) for q in snap.queue],
            reserved_node=snap.reserved_node,
        )  # fmt: skip


def _tenant_out(t: TenantView) -> TenantOut:
    return TenantOut(
        tenant=t.tenant, weight=t.weight, share=t.share, cpus=amount(t.held.cpus),
        gpus=amount(t.held.gpus), slots=t.slots, dominant_share=t.dominant_share,
        studies_waiting=t.studies_waiting, quota_cpus=t.quota.cpus, quota_gpus=t.quota.gpus,
    )  # fmt: skip
