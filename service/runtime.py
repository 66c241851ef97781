"""Start-up and shut-down: settings in, a running study service out.

Nothing here runs at import time; `open_runtime` is called by the app's lifespan
(or by tests and `hpo demo`) and `Runtime.close` undoes it.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import optuna
import ray

from service.cluster.fair_share import Shape
from service.cluster.ray_backend import RaySlotBackend
from service.cluster.scheduler import SlotScheduler
from service.data.datasets import DataRoots
from service.data.uploads import Uploads
from service.limits import SpecLimits, SubmissionRate
from service.metrics import ServiceMetrics
from service.run.checkpoints import CheckpointStore
from service.run.optuna_mirror import check_compatible
from service.run.runner import RayTrialRunner, TrialRunner
from service.settings import Settings
from service.spec import StudySpec
from service.studies.insights import InsightService
from service.studies.study_service import StudyService
from storage.datasets import DatasetStore
from storage.engine import (
    Engine,
    column_names,
    create_engine_for,
    ping,
    sqlite_pragmas,
    tune_engine,
)
from storage.insights import StudyInsights
from storage.migrate import upgrade_schema
from storage.repository import Store
from storage.session import describe_error
from workers.tasks import installed_tasks
from workers.trial_checkpoints import TrialCheckpoints

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    engine: Engine
    optuna_storage: optuna.storages.RDBStorage
    store: Store
    studies: StudyService
    owns_ray: bool
    tenants_by_token: dict[str, str] = field(default_factory=dict)
    uploads: Uploads | None = None
    insights: InsightService | None = None
    scheduler: SlotScheduler | None = None

    def readiness(self) -> dict[str, str]:
        """Whether the database answers and Ray is connected: 'ok' or the problem, per part."""
        checks: dict[str, str] = {}
        try:
            ping(self.engine)
            checks["database"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised (no SQL in it)
            checks["database"] = describe_error(exc)
        try:
            checks["ray"] = (
                "ok" if ray.is_initialized() and ray.cluster_resources() else "not connected"
            )
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            checks["ray"] = f"{type(exc).__name__}: {exc}"
        return checks

    async def close(self) -> None:
        await self.studies.close()
        if self.scheduler is not None:
            await self.scheduler.close()
        self.engine.dispose()
        self.optuna_storage.engine.dispose()
        if self.owns_ray:
            await asyncio.to_thread(ray.shutdown)


async def open_runtime(settings: Settings) -> Runtime:
    """Migrate the database, connect Ray and resume what the database says is pending."""
    settings.tenants_by_token()  # a malformed HPO_API_TOKENS fails start-up, not a request
    settings.tenant_policy()  # likewise HPO_TENANT_WEIGHTS and HPO_TENANT_QUOTAS
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Ray's start (its daemons) and the plug-in tasks' import (torch: a second or two) run
    # while the store is migrated and checked: the first request does not pay for either.
    ray_started = asyncio.ensure_future(asyncio.to_thread(connect_ray, settings))
    tasks_imported = asyncio.ensure_future(asyncio.to_thread(installed_tasks))
    try:
        engine, store, optuna_storage = await _open_store(settings)
        owns_ray = await ray_started
    except BaseException:
        await _settled(tasks_imported)
        if await _settled(ray_started):
            await asyncio.to_thread(ray.shutdown)
        raise
    uploads = Uploads(
        DatasetStore(engine), settings.data_dir / "uploads", max_bytes=settings.max_upload_bytes
    )
    roots = DataRoots(settings.data_root_paths(), uploads, own=settings.own_paths())

    checkpoints = CheckpointStore(settings.data_dir / "artifacts")
    metrics = ServiceMetrics(store.count_studies)
    scheduler = SlotScheduler(
        RaySlotBackend(allow_cpu_for_gpus=settings.allow_cpu_for_gpus),
        settings.tenant_policy(),
        max_idle=settings.warm_slots,
        on_wait=metrics.queue_wait_seconds.observe,
        preempt_after_s=settings.preempt_after_s,
        reshape_cpu_slots=settings.reshape_cpu_slots,
    )
    await scheduler.start()
    metrics.watch_cluster(scheduler.snapshot)
    if settings.prewarm_slots:
        scheduler.prewarm(Shape.of(1, 0), settings.warm_slots)
    await tasks_imported  # a broken plug-in is no error here: /api/v1/tasks reports it

    async def ray_runner(study_id: int, spec: StudySpec) -> TrialRunner:
        return await RayTrialRunner.for_study(study_id, spec, roots, scheduler)

    studies = StudyService(
        store,
        optuna_storage,
        ray_runner,
        data_roots=roots,
        checkpoints=checkpoints,
        trial_checkpoints=TrialCheckpoints(settings.checkpoint_uri),
        metrics=metrics,
        rate=SubmissionRate(settings.studies_per_minute),
        scheduler=scheduler,
        limits=SpecLimits(
            settings.max_trials_limit, settings.max_epochs_limit, settings.max_parallelism_limit
        ),
    )
    await studies.start()
    return Runtime(
        settings,
        engine,
        optuna_storage,
        store,
        studies,
        owns_ray,
        settings.tenants_by_token(),
        uploads,
        InsightService(studies, StudyInsights(engine)),
        scheduler,
    )


async def _open_store(settings: Settings) -> tuple[Engine, Store, optuna.storages.RDBStorage]:
    """The migrated store and Optuna's storage on the same database, its schema checked."""
    await asyncio.to_thread(upgrade_schema, settings.database_url)
    pragmas = sqlite_pragmas(settings.sqlite_durability)
    engine = create_engine_for(settings.database_url, sqlite_pragmas=pragmas)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna_storage = optuna.storages.RDBStorage(
        settings.database_url, engine_kwargs=_optuna_engine_kwargs(settings.database_url)
    )
    tune_engine(optuna_storage.engine, sqlite_pragmas=pragmas)
    await asyncio.to_thread(
        check_compatible, optuna.__version__, partial(column_names, optuna_storage.engine)
    )
    return engine, Store(engine), optuna_storage


async def _settled(started: asyncio.Future[Any]) -> Any:
    """Wait out work that a failed start-up left running; its result, None if it failed."""
    try:
        return await asyncio.shield(started)
    except BaseException:  # noqa: BLE001 - the start-up's own error is the one raised
        return None


def _optuna_engine_kwargs(url: str) -> dict[str, object]:
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": 30}}
    return {"pool_pre_ping": True}


def disconnect_ray() -> None:
    """Leave Ray (and stop the local one this process started)."""
    ray.shutdown()


def connect_ray(settings: Settings) -> bool:
    """Join the configured Ray cluster, or start a local one; True when this call did it.

    Call it from the main thread where possible: Ray installs signal handlers there.
    """
    if ray.is_initialized():
        return False
    if settings.ray_address is None:
        # "local" starts a new Ray even when another runs on this machine (Ray would join it).
        ray.init(
            address="local",
            num_cpus=settings.ray_num_cpus,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=False,
            runtime_env=settings.ray_runtime_env,
        )
    else:
        ray.init(
            address=settings.ray_address,
            logging_level=logging.WARNING,
            log_to_driver=False,
            runtime_env=settings.ray_runtime_env,
        )
    log.info("Ray resources: %s", ray.cluster_resources())
    return True
