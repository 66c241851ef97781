"""A slot's device on the session's real Ray cluster: a GPU slot without CUDA refuses to
train, and a trial that runs out of memory fails alone while its slot trains the next.

The cluster (tests/conftest.py) has a node that declares one GPU; on a machine without
CUDA that is what a worker built from the CPU image looks like. The out-of-memory tests
run a real study (driver, store, Optuna) on real slot actors: on the CPU torch's error
class is injected into them, on a GPU the memory really runs out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import optuna
import pytest
import ray
import torch

from service.cluster.fair_share import Shape
from service.cluster.slot_contract import Lease
from service.data.datasets import DataRoots, prepare_data
from service.run.runner import RaySlot, Slot
from service.settings import Settings
from service.spec import StudySpec
from service.studies.study_service import StudyService
from storage.records import TrialRecord
from storage.repository import Store
from tests.conftest import running_service, wait_for_study
from workers.slot import TrialSlot

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def client(ray_cluster: Any, sqlite_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", prewarm_slots=False)
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


@pytest.mark.skipif(torch.cuda.is_available(), reason="here the declared GPU is a real one")
def test_a_gpu_trial_on_a_node_without_cuda_fails_saying_why_and_warns_the_study(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    gpu_node = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and n["Resources"].get("GPU"))
    spec = make_spec(
        name="no-cuda",
        resources={"cpus_per_trial": 1, "gpus_per_trial": 1},
        budget={"max_trials": 4, "max_epochs": 3, "parallelism": 1, "max_failed_trials": 2},
    )
    created = client.post("/api/v1/studies", json=spec)
    assert created.status_code == 201, created.text
    study = wait_for_study(client, created.json()["id"])
    assert (study["state"], study["state_reason"]) == ("failed", "max_failed_trials"), study
    items = client.get(f"/api/v1/studies/{study['id']}/trials").json()["items"]
    assert len(items) == 2
    for trial in items:
        assert (trial["state"], trial["stop_reason"], trial["epochs_run"]) == (
            "failed",
            "failed",
            0,
        )
        assert f"node {gpu_node}" in trial["error"] and "GPU ids ['0']" in trial["error"]
        assert "torch.cuda.is_available() is False" in trial["error"]
        assert trial["node"].startswith(gpu_node[:12]) and "gpu=0" in trial["node"]
        assert trial["device"] is None
        detail = client.get(f"/api/v1/studies/{study['id']}/trials/{trial['number']}").json()
        assert detail["epochs"] == []  # nothing trained, on the CPU or anywhere else
    (warning,) = study["warnings"]
    assert "cannot use its GPUs" in warning and f"node {gpu_node}" in warning


# -- out of memory ---------------------------------------------------------------------


class ActorRunner:
    """Slot actors of `slot_class` for one study, each kept for the study's next trials;
    no scheduler (these studies are alone on their slots)."""

    def __init__(self, spec: StudySpec, data: Any, slot_class: type[TrialSlot], gpus: float = 0):
        self._spec, self._slot_class, self._gpus = spec, slot_class, gpus
        self._data_key = f"study-{uuid.uuid4().hex}"
        self._data_ref = ray.put(data)
        self.slots: list[RaySlot] = []
        self._free: list[RaySlot] = []

    async def open_slot(self, *, on_grant: Callable[[], None] | None = None) -> Slot:
        if on_grant is not None:
            on_grant()
        if self._free:
            return self._free.pop()
        actor = ray.remote(self._slot_class).options(num_cpus=1, num_gpus=self._gpus).remote()
        lease = Lease(len(self.slots), actor, "", Shape.of(1, self._gpus))
        slot = RaySlot(lease, self._data_key, self._data_ref, self._spec)
        await slot.locate()
        self.slots.append(slot)
        return slot

    async def release_slot(self, slot: Slot, *, healthy: bool) -> None:
        assert isinstance(slot, RaySlot)
        if healthy:
            self._free.append(slot)
        else:
            await slot.close()

    def should_yield(self, slot: Slot) -> bool:
        return False

    async def close(self) -> None:
        return None

    def kill(self) -> None:
        for slot in self.slots:
            ray.kill(slot.lease.actor, no_restart=True)


@pytest.fixture
def database_url(sqlite_url: str) -> str:
    return sqlite_url


@pytest.fixture
def runners() -> Iterator[list[ActorRunner]]:
    """The runners a test made; their actors are killed after it."""
    made: list[ActorRunner] = []
    yield made
    for runner in made:
        runner.kill()


@pytest.fixture
def optuna_storage(sqlite_url: str) -> Iterator[optuna.storages.RDBStorage]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(sqlite_url)
    yield storage
    storage.engine.dispose()


def run_on_actors(
    store: Store, storage: Any, spec: dict[str, Any], runner_class: Callable[..., ActorRunner]
) -> tuple[StudyService, int, ActorRunner]:
    """Run a study to its end on the slot actors of `runner_class(spec, data)`."""
    study_spec = StudySpec.model_validate(spec)
    runner = runner_class(study_spec, prepare_data(study_spec, DataRoots(())))

    async def runners(study_id: int, _: StudySpec) -> ActorRunner:
        return runner

    async def main() -> tuple[StudyService, int]:
        service = StudyService(store, storage, runners)
        view = await service.submit(study_spec)
        await service.wait(view.record.id)
        return service, view.record.id

    service, study_id = asyncio.run(main())
    return service, study_id, runner


def trials(service: StudyService, study_id: int) -> list[TrialRecord]:
    page = service.list_trials(study_id, state=None, order="number", limit=100, cursor=None)
    return [service.trial(study_id, t.number) for t in page.items]


def optuna_states(service: StudyService, study_id: int, storage: Any) -> list[str]:
    name = service.get(study_id).record.optuna_study_name
    return [t.state.name for t in optuna.load_study(study_name=name, storage=storage).trials]


def injecting_slot() -> type[TrialSlot]:
    """A TrialSlot whose trials with batch_size 64 raise torch's CUDA out-of-memory error in
    the first forward pass of their second epoch. Made in a function, so that Ray ships the
    class to its workers by value."""

    class InjectedOutOfMemory(TrialSlot):
        def start_trial(self, *args: Any, **kwargs: Any) -> None:
            super().start_trial(*args, **kwargs)
            trainer = self._trainer
            if trainer.params["batch_size"] != 64:
                return

            def hook(module: Any, inputs: Any) -> None:
                if trainer.epoch >= 2:
                    raise torch.cuda.OutOfMemoryError(
                        "CUDA out of memory. Tried to allocate 20.00 GiB (injected)"
                    )

            trainer.folds[0].model.register_forward_pre_hook(hook)

    return InjectedOutOfMemory


def test_a_trial_out_of_memory_fails_alone_and_its_slot_trains_the_next_trials(
    store: Store,
    optuna_storage: Any,
    make_spec: Callable[..., dict[str, Any]],
    runners: list[ActorRunner],
) -> None:
    spec = make_spec(
        space={"batch_size": {"type": "categorical", "choices": [32, 64]}},
        initial_trials=[
            {"batch_size": 64},
            {"batch_size": 32},
            {"batch_size": 64},
            {"batch_size": 32},
        ],
        budget={"max_trials": 4, "max_epochs": 3, "parallelism": 1},
        early_stopping={"patience": 10},
    )

    def runner(spec: StudySpec, data: Any) -> ActorRunner:
        runners.append(ActorRunner(spec, data, injecting_slot()))
        return runners[-1]

    service, study_id, used = run_on_actors(store, optuna_storage, spec, runner)
    study = service.get(study_id).record
    assert (study.state, study.state_reason, study.warnings) == ("completed", "max_trials", [])
    done = trials(service, study_id)
    assert [(t.state, t.stop_reason, t.epochs_run) for t in done] == [
        ("failed", "out_of_memory", 1),
        ("complete", "completed", 3),
        ("failed", "out_of_memory", 1),
        ("complete", "completed", 3),
    ]
    assert done[0].error == (
        "out of memory on cpu: CUDA out of memory. Tried to allocate 20.00 GiB (injected)"
    )
    # One slot process trained all four: the one after each out-of-memory trial too.
    assert len(used.slots) == 1 and len({t.node for t in done}) == 1
    assert {t.device for t in done} == {"cpu"}
    # Told to Optuna as pruned, which TPE learns from (it skips failed trials).
    assert optuna_states(service, study_id, optuna_storage) == [
        "PRUNED",
        "COMPLETE",
        "PRUNED",
        "COMPLETE",
    ]


def capped_slot() -> type[TrialSlot]:
    """A TrialSlot whose process may use about 150 MiB of its GPU, so that a wide layer over
    the whole training split runs out of memory for real."""

    class CappedMemory(TrialSlot):
        def __init__(self, **kwargs: Any):
            super().__init__(**kwargs)
            total = torch.cuda.get_device_properties(0).total_memory
            torch.cuda.set_per_process_memory_fraction(150 * 2**20 / total, 0)

        def allocated_mb(self) -> float:
            return float(torch.cuda.memory_allocated(0)) / 2**20

    return CappedMemory


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_real_cuda_out_of_memory_frees_the_slot_for_the_next_trial(
    store: Store,
    optuna_storage: Any,
    make_spec: Callable[..., dict[str, Any]],
    runners: list[ActorRunner],
) -> None:
    spec = make_spec(
        space={"hidden_units": {"type": "categorical", "choices": [32, 65536]}},
        params={"batch_size": "full"},
        initial_trials=[{"hidden_units": 65536}, {"hidden_units": 32}],
        budget={"max_trials": 2, "max_epochs": 2, "parallelism": 1},
    )

    def runner(spec: StudySpec, data: Any) -> ActorRunner:
        runners.append(ActorRunner(spec, data, capped_slot(), gpus=1))
        return runners[-1]

    service, study_id, used = run_on_actors(store, optuna_storage, spec, runner)
    done = trials(service, study_id)
    assert [(t.state, t.stop_reason) for t in done] == [
        ("failed", "out_of_memory"),
        ("complete", "completed"),
    ]
    assert done[0].error is not None and "CUDA out of memory" in done[0].error
    assert {t.device for t in done} == {torch.cuda.get_device_name(0)}
    assert len(used.slots) == 1 and len({t.node for t in done}) == 1
    assert all(e.metrics["peak_gpu_memory_mb"] for e in done[1].epochs)
    # What the wide trial held went back: the slot keeps the study's data (under 1 MiB).
    assert ray.get(used.slots[0].lease.actor.allocated_mb.remote()) < 16
