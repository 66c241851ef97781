"""A slot lease goes back to the scheduler on every path out of `open_slot`.

Real Ray: slot actors whose set-up raises what a real one can (a CUDA driver that
fails to initialise, an error nobody mapped) on the session's cluster; the real
scheduler on Ray's real nodes. The leak would show as a slot the study never used but
that no other study can have.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
import ray

from service.cluster.fair_share import Shape
from service.cluster.ray_backend import RaySlotBackend
from service.cluster.scheduler import SlotScheduler
from service.cluster.slot_contract import StudyDemand
from service.data.datasets import DataRoots
from service.run.runner import DataUnavailable, RayTrialRunner
from service.spec import StudySpec

pytestmark = [pytest.mark.ray]


@ray.remote(num_cpus=0)
class BrokenSetUp:
    """A slot actor whose first call raises, as a slot that cannot set itself up."""

    def __init__(self, error: str) -> None:
        self.error = error

    def placement(self) -> Any:
        if self.error == "runtime":
            raise RuntimeError("CUDA driver initialization failed")
        raise KeyError("CUDA_VISIBLE_DEVICES")

    def warm_up(self) -> None:
        pass


class BrokenSlots(RaySlotBackend):
    """Ray's nodes; every slot it starts is broken (`error`), up to `broken` of them."""

    def __init__(self, error: str, broken: int) -> None:
        super().__init__()
        self.error = error
        self.broken = broken

    def create(self, shape: Shape, node_id: str, *, reserved: Shape) -> Any:
        if self.broken > 0:
            self.broken -= 1
            return BrokenSetUp.remote(self.error)
        return super().create(shape, node_id, reserved=reserved)


def demand(study_id: int, tenant: str) -> StudyDemand:
    return StudyDemand(
        study_id=study_id,
        name=f"s{study_id}",
        tenant=tenant,
        priority=0,
        created_at=datetime.now(UTC),
        shape=Shape.of(1, 0),
        parallelism=1,
    )


@pytest.mark.parametrize("error", ["runtime", "unmapped"])
def test_a_slot_whose_set_up_raises_gives_its_lease_back(
    ray_cluster: Any, make_spec: Any, error: str
) -> None:
    async def main() -> tuple[str, int, int]:
        scheduler = SlotScheduler(BrokenSlots(error, broken=1), max_idle=0)
        await scheduler.start()
        try:
            spec = StudySpec.model_validate(make_spec())
            runner = await RayTrialRunner.for_study(1, spec, DataRoots(()), scheduler)
            scheduler.register(demand(1, "a"))
            with pytest.raises(Exception) as raised:
                await asyncio.wait_for(runner.open_slot(), timeout=120)
            held = sum(len(s.held) for s in scheduler._book.studies.values())
            busy = sum(1 for s in scheduler._pool.slots.values() if s.study_id is not None)
            return type(raised.value).__name__, held, busy
        finally:
            await scheduler.close()

    raised, held, busy = asyncio.run(main())
    assert raised == "TrialError"
    assert (held, busy) == (0, 0), "the broken slot's lease was kept"


def test_a_queued_study_reads_its_data_only_once_granted_and_a_bad_source_fails_it(
    ray_cluster: Any, make_spec: Any, tmp_path: Any
) -> None:
    """The data set is read at the first grant (none while queued); a data set that cannot
    be read then is the study's fault, and its slot goes back to the pool untouched."""
    (tmp_path / "gone.csv").write_text("a,label\n1,0\n")

    async def main() -> tuple[str, int]:
        scheduler = SlotScheduler(BrokenSlots("runtime", broken=0), max_idle=1)
        await scheduler.start()
        try:
            spec = StudySpec.model_validate(
                make_spec(
                    dataset={
                        "source": "path",
                        "path": str(tmp_path / "gone.csv"),
                        "target": "label",
                    }
                )
            )
            scheduler.register(demand(2, "b"))
            runner = await RayTrialRunner.for_study(2, spec, DataRoots((tmp_path,)), scheduler)
            (tmp_path / "gone.csv").unlink()  # a queued study holds no copy: not read yet
            with pytest.raises(DataUnavailable) as raised:
                await asyncio.wait_for(runner.open_slot(), timeout=120)
            busy = sum(1 for s in scheduler._pool.slots.values() if s.study_id is not None)
            return str(raised.value), busy
        finally:
            await scheduler.close()

    error, busy = asyncio.run(main())
    assert "gone.csv" in error and busy == 0
