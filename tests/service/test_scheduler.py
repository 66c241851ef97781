"""The slot scheduler's rules, driven by simulated studies on a recording backend.

The backend stands in for Ray's nodes and actors only to check the scheduler's own
decisions fast and exactly: every actor it is asked to start must fit, with what it
reserves in Ray, on its node beside the live ones (Ray would otherwise queue it); the
trials' own use of each node is checked from their start and end times (`overlapping`). The same rules run against real
Ray in tests/service/test_shared_cluster.py.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.cluster.fair_share import (
    Claim,
    Quota,
    Shape,
    TenantPolicy,
    TenantUse,
    grant_order,
    units,
)
from service.cluster.scheduler import SlotScheduler
from service.cluster.slot_contract import Lease, NodeInfo, StudyDemand

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FakeActor:
    id: int
    node_id: str
    shape: Shape
    reserved: Shape


@dataclass
class RecordingBackend:
    """Nodes and actors as the scheduler asks for them; refuses what would not fit."""

    capacity: dict[str, Shape]
    autoscaler: bool = False
    dead: set[str] = field(default_factory=set)
    live: dict[int, FakeActor] = field(default_factory=dict)
    created: int = 0
    requests: list[list[dict[str, float]]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def nodes(self) -> list[NodeInfo]:
        return [NodeInfo(n, c, alive=n not in self.dead) for n, c in self.capacity.items()]

    def create(self, shape: Shape, node_id: str, *, reserved: Shape) -> FakeActor:
        used = sum((a.reserved for a in self.live.values() if a.node_id == node_id), Shape(0, 0))
        assert node_id not in self.dead, f"an actor was placed on dead node {node_id}"
        assert (used + reserved).fits_in(self.capacity[node_id]), (
            f"{reserved} does not fit on {node_id} beside {used} (capacity {self.capacity[node_id]})"
        )
        assert reserved in (shape, Shape(0, 0)), reserved
        actor = FakeActor(next(self._ids), node_id, shape, reserved)
        self.live[actor.id] = actor
        self.created += 1
        return actor

    def kill(self, actor: FakeActor) -> None:
        self.live.pop(actor.id, None)

    def request_resources(self, bundles: list[dict[str, float]]) -> None:
        self.requests.append(bundles)

    def has_autoscaler(self) -> bool:
        return self.autoscaler


def cluster(**nodes: tuple[float, float]) -> RecordingBackend:
    return RecordingBackend({n: Shape.of(c, g) for n, (c, g) in nodes.items()})


@dataclass(frozen=True)
class Run:
    study_id: int
    tenant: str
    node_id: str
    shape: Shape
    start: float
    end: float


@dataclass
class Sim:
    """Studies that behave like drivers: each of `parallelism` loops acquires a slot,
    holds it for a trial's length and releases it, until its trials are spent."""

    scheduler: SlotScheduler
    runs: list[Run] = field(default_factory=list)
    held: dict[str, Shape] = field(default_factory=dict)
    peak_over_quota: list[str] = field(default_factory=list)
    started: float = 0.0

    def add(
        self,
        study_id: int,
        *,
        tenant: str = "t",
        cpus: float = 1,
        gpus: float = 0,
        parallelism: int = 1,
        priority: int = 0,
        age: int = 0,
    ) -> StudyDemand:
        demand = StudyDemand(
            study_id=study_id,
            name=f"s{study_id}",
            tenant=tenant,
            priority=priority,
            created_at=T0 + timedelta(seconds=age or study_id),
            shape=Shape.of(cpus, gpus),
            parallelism=parallelism,
        )
        self.scheduler.register(demand)
        return demand

    async def study(
        self,
        demand: StudyDemand,
        trials: Iterable[float],
        *,
        unregister: bool = True,
        ready_after_s: float = 0.0,
    ) -> None:
        queue = list(trials)
        await asyncio.sleep(ready_after_s)  # setting up its data and sampler

        async def loop() -> None:
            while queue:
                length = queue.pop()
                lease = await self.scheduler.acquire(demand.study_id)
                await self.train(demand, lease, length)

        await asyncio.gather(*(loop() for _ in range(demand.parallelism)))
        if unregister:
            self.scheduler.unregister(demand.study_id)

    async def train(self, demand: StudyDemand, lease: Lease, length: float) -> None:
        assert lease.shape == demand.shape, (lease.shape, demand.shape)
        loop = asyncio.get_running_loop()
        held = self.held.get(demand.tenant, Shape(0, 0)) + lease.shape
        self.held[demand.tenant] = held
        if not self.scheduler.policy.quota(demand.tenant).allows(held):
            self.peak_over_quota.append(demand.tenant)
        start = loop.time() - self.started
        await asyncio.sleep(length)
        self.held[demand.tenant] = self.held[demand.tenant] - lease.shape
        end = loop.time() - self.started
        self.runs.append(
            Run(demand.study_id, demand.tenant, lease.node_id, lease.shape, start, end)
        )
        self.scheduler.release(lease, keep=True)


async def open_sim(
    backend: RecordingBackend,
    policy: TenantPolicy | None = None,
    max_idle: int = 2,
    reshape_cpu_slots: bool = True,
) -> Sim:
    scheduler = SlotScheduler(
        backend, policy, max_idle=max_idle, refresh_s=0.05, reshape_cpu_slots=reshape_cpu_slots
    )
    await scheduler.start()
    return Sim(scheduler, started=asyncio.get_running_loop().time())


def overlapping(runs: list[Run], node_id: str) -> Shape:
    """The most resources ever in use at once on a node, from start/end times."""
    points = sorted({r.start for r in runs if r.node_id == node_id})
    peak = Shape(0, 0)
    for t in points:
        live = [r.shape for r in runs if r.node_id == node_id and r.start <= t < r.end]
        used = sum(live, Shape(0, 0))
        peak = Shape(max(peak.cpus, used.cpus), max(peak.gpus, used.gpus))
    return peak


@dataclass
class FakeClock:
    """Simulated time for the scheduler: shares and waits then follow its rules alone,
    not how fast a busy machine turns the event loop."""

    t: float = 0.0

    def monotonic(self) -> float:
        return self.t

    def utc_now(self) -> datetime:
        return T0 + timedelta(seconds=self.t)


async def open_simulated(
    backend: RecordingBackend, policy: TenantPolicy | None = None, **kwargs: Any
) -> tuple[SlotScheduler, FakeClock]:
    """A scheduler on simulated time; it never re-reads the nodes by itself."""
    clock = FakeClock()
    scheduler = SlotScheduler(
        backend, policy, refresh_s=3600, clock=clock.monotonic, utc_now=clock.utc_now, **kwargs
    )
    await scheduler.start()
    return scheduler, clock


async def settle() -> None:
    """Let the scheduler's pending passes, and the grants they made, run: loop turns, no
    time passes."""
    for _ in range(8):
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Arrival:
    demand: StudyDemand
    n_trials: int
    trial_s: float
    at: float = 0.0
    lengths: tuple[float, ...] = ()  # each trial's own length, in order; else trial_s

    def length(self, trial: int) -> float:
        return self.lengths[trial] if trial < len(self.lengths) else self.trial_s


async def simulate(
    scheduler: SlotScheduler, clock: FakeClock, arrivals: list[Arrival]
) -> list[Run]:
    """Studies that behave like drivers, as discrete events in simulated time.

    Each study keeps `parallelism` acquires out while it has trials left, and each trial
    holds its slot for `trial_s` simulated seconds. Events (a study's arrival, a trial's
    end) happen one at a time in time order, and the scheduler's passes run in between:
    the grants it makes decide the result, never the machine's speed.
    """
    runs: list[Run] = []
    seq = itertools.count()
    events: list[tuple[float, int, Arrival | tuple[Lease, Arrival]]] = []
    for arrival in arrivals:
        heapq.heappush(events, (arrival.at, next(seq), arrival))
    left: dict[int, int] = {}
    busy: dict[int, int] = {}
    granted_n: dict[int, int] = {}
    waiting: dict[asyncio.Future[Lease], Arrival] = {}

    def ask(study: Arrival) -> None:
        left[study.demand.study_id] -= 1
        waiting[asyncio.ensure_future(scheduler.acquire(study.demand.study_id))] = study

    def arrive(study: Arrival) -> None:
        scheduler.register(study.demand)
        left[study.demand.study_id], busy[study.demand.study_id] = study.n_trials, 0
        for _ in range(min(study.demand.parallelism, study.n_trials)):
            ask(study)

    def give_back(lease: Lease, study: Arrival) -> None:
        sid = study.demand.study_id
        scheduler.release(lease, keep=True)
        if not left[sid] and not busy[sid] and study not in waiting.values():
            scheduler.unregister(sid)

    while events:
        clock.t = events[0][0]
        now = []  # what happens at once shares a pass
        while events and events[0][0] == clock.t:
            now.append(heapq.heappop(events)[2])
        ended = [e for e in now if not isinstance(e, Arrival)]
        for study in (e for e in now if isinstance(e, Arrival)):
            arrive(study)
        for _, study in ended:  # a driver asks for its next trial's slot as it releases
            busy[study.demand.study_id] -= 1
            if left[study.demand.study_id]:
                ask(study)
        await asyncio.sleep(0)  # those acquires join the queue before the releases' pass
        for lease, study in ended:
            give_back(lease, study)
        await settle()
        for granted in [f for f in waiting if f.done()]:
            study = waiting.pop(granted)
            lease = granted.result()
            d = study.demand
            nth = granted_n[d.study_id] = granted_n.get(d.study_id, -1) + 1
            end = clock.t + study.length(nth)
            runs.append(Run(d.study_id, d.tenant, lease.node_id, lease.shape, clock.t, end))
            busy[d.study_id] += 1
            heapq.heappush(events, (end, next(seq), (lease, study)))
    assert not waiting, "a study waited for a slot that was never granted"
    return runs


def demand(
    study_id: int, *, tenant: str = "t", cpus: float = 1, parallelism: int = 1, priority: int = 0
) -> StudyDemand:
    return StudyDemand(
        study_id=study_id,
        name=f"s{study_id}",
        tenant=tenant,
        priority=priority,
        created_at=T0 + timedelta(seconds=study_id),
        shape=Shape.of(cpus, 0),
        parallelism=parallelism,
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 30) -> None:
    """Wait until `check()` holds; the timeout fails the test, it measures nothing."""
    async with asyncio.timeout(timeout_s):
        while not check():
            await asyncio.sleep(0.001)


def contended_seconds(runs: list[Run], tenants: tuple[str, str]) -> dict[str, float]:
    """Each tenant's slot-seconds while both still had work: until the first of the two
    ran out of trials."""
    contended = min(max(r.end for r in runs if r.tenant == t) for t in tenants)
    return {
        t: sum(
            min(r.end, contended) - r.start for r in runs if r.tenant == t and r.start < contended
        )
        for t in tenants
    }


def test_mixed_shapes_at_four_times_capacity_all_finish_and_never_overcommit_a_node() -> None:
    backend = cluster(a=(2, 0), b=(2, 0), g=(1, 1))

    async def main() -> Sim:
        sim = await open_sim(backend)
        shapes = [(1, 0), (2, 0), (0.5, 0), (1, 1), (0.5, 0.25), (2, 0), (1, 0), (0.5, 0.5)]
        studies = [
            sim.study(
                sim.add(i, tenant=f"t{i % 2}", cpus=c, gpus=g, parallelism=3),
                [0.02 + 0.01 * (j % 3) for j in range(6)],
            )
            for i, (c, g) in enumerate(shapes, 1)
        ]
        await asyncio.wait_for(asyncio.gather(*studies), timeout=30)
        await sim.scheduler.close()
        return sim

    sim = asyncio.run(main())
    assert len(sim.runs) == 8 * 6
    for node_id, capacity in backend.capacity.items():
        assert overlapping(sim.runs, node_id).fits_in(capacity), node_id
    assert not backend.live  # close ended every slot


def test_a_tenant_with_one_study_and_a_tenant_with_six_share_the_cluster_evenly() -> None:
    backend = cluster(a=(2, 0), b=(2, 0), c=(1, 0))

    async def main() -> list[Run]:
        scheduler, clock = await open_simulated(backend)
        lone = Arrival(demand(1, tenant="solo", parallelism=5), 60, 0.03)
        many = [Arrival(demand(i, tenant="crowd", parallelism=5), 10, 0.03) for i in range(2, 8)]
        runs = await simulate(scheduler, clock, [lone, *many])
        await scheduler.close()
        return runs

    runs = asyncio.run(main())
    seconds = contended_seconds(runs, ("solo", "crowd"))
    assert abs(seconds["solo"] - seconds["crowd"]) / max(seconds.values()) <= 0.05, seconds
    # Grant by grant: while both had work, neither tenant held more than one slot over
    # an even split of the five.
    contended = min(max(r.end for r in runs if r.tenant == t) for t in ("solo", "crowd"))
    for moment in sorted({r.start for r in runs if r.start < contended}):
        held = [
            sum(1 for r in runs if r.tenant == t and r.start <= moment < r.end)
            for t in ("solo", "crowd")
        ]
        assert abs(held[0] - held[1]) <= 1, (moment, held)


def test_weights_split_the_cluster_two_to_one() -> None:
    backend = cluster(a=(3, 0), b=(3, 0))
    policy = TenantPolicy.parse("heavy:2,light:1")

    async def main() -> list[Run]:
        scheduler, clock = await open_simulated(backend, policy)
        heavy = Arrival(demand(1, tenant="heavy", parallelism=6), 60, 0.03)
        light = Arrival(demand(2, tenant="light", parallelism=6), 60, 0.03)
        runs = await simulate(scheduler, clock, [heavy, light])
        await scheduler.close()
        return runs

    seconds = contended_seconds(asyncio.run(main()), ("heavy", "light"))
    assert seconds["heavy"] / seconds["light"] == pytest.approx(2.0, rel=0.05), seconds


def test_a_quota_is_never_exceeded_and_the_rest_of_the_cluster_goes_to_others() -> None:
    backend = cluster(a=(2, 0), b=(2, 0), g=(2, 2))
    policy = TenantPolicy(quotas={"capped": Quota(cpus=2, gpus=1)})

    async def main() -> Sim:
        sim = await open_sim(backend, policy)
        capped = sim.study(
            sim.add(1, tenant="capped", cpus=0.5, gpus=0.5, parallelism=6), [0.02] * 20
        )
        other = sim.study(sim.add(2, tenant="free", parallelism=6), [0.02] * 40)
        await asyncio.wait_for(asyncio.gather(capped, other), timeout=30)
        await sim.scheduler.close()
        return sim

    sim = asyncio.run(main())
    assert not sim.peak_over_quota
    capped_runs = [r for r in sim.runs if r.tenant == "capped"]
    assert len(capped_runs) == 20
    peak = max(sum(1 for r in capped_runs if r.start <= x.start < r.end) for x in capped_runs)
    assert peak == 2  # 2 x 0.5 GPU: the GPU cap, not the CPU cap, binds


def test_the_highest_priority_study_gets_the_next_freed_slots_whatever_its_age() -> None:
    backend = cluster(a=(2, 0))

    async def main() -> list[int]:
        scheduler, clock = await open_simulated(backend)
        runs = await simulate(
            scheduler,
            clock,
            [
                Arrival(demand(1, parallelism=2), 2, 0.1),
                Arrival(demand(2, parallelism=2, priority=0), 2, 0.05, at=0.03),  # both slots busy
                Arrival(demand(3, parallelism=2, priority=5), 2, 0.05, at=0.03),
            ],
        )
        await scheduler.close()
        order = sorted((r for r in runs if r.study_id != 1), key=lambda r: (r.start, r.study_id))
        return [r.study_id for r in order]

    assert asyncio.run(main()) == [3, 3, 2, 2]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_big_shape_is_not_starved_by_a_stream_of_small_trials(seed: int) -> None:
    backend = cluster(a=(2, 0), b=(2, 0))
    rng = random.Random(seed)
    # Two small studies of another tenant keep all four CPUs busy with 1-CPU trials of
    # different lengths, so their ends are staggered: a freed CPU alone never fits the
    # 2-CPU trial that arrives once they are running. Simulated time: what is granted
    # follows the scheduler's rules, not how fast the machine turns the event loop.
    lengths = [tuple(round(rng.uniform(0.015, 0.04), 4) for _ in range(40)) for _ in range(2)]
    big_at = 0.05

    async def main() -> list[Run]:
        scheduler, clock = await open_simulated(backend)
        runs = await simulate(
            scheduler,
            clock,
            [
                Arrival(demand(1, tenant="small", parallelism=2), 40, 0, lengths=lengths[0]),
                Arrival(demand(2, tenant="small", parallelism=2), 40, 0, lengths=lengths[1]),
                Arrival(demand(9, tenant="big", cpus=2), 3, 0.02, at=big_at),
            ],
        )
        await scheduler.close()
        return runs

    runs = asyncio.run(main())
    big_runs = sorted((r for r in runs if r.study_id == 9), key=lambda r: r.start)
    assert len(big_runs) == 3
    assert len([r for r in runs if r.study_id != 9]) == 80
    first_big = big_runs[0]
    # Nothing small started on the node kept for it between its arrival and its start,
    # even once half of the node had drained (then one more end would make room).
    slipped_in = [
        r
        for r in runs
        if r.study_id != 9
        and r.node_id == first_big.node_id
        and big_at <= r.start < first_big.start
    ]
    assert slipped_in == [], slipped_in
    # So it ran while both small studies still had trials to start.
    still_waiting = min(max(r.start for r in runs if r.study_id == i) for i in (1, 2))
    assert first_big.start < still_waiting
    # And the node never held more than its two CPUs.
    for node in ("a", "b"):
        assert overlapping(runs, node).fits_in(Shape.of(2, 0)), node


def test_idle_slots_that_reserve_their_shape_serve_it_and_end_for_another_shape() -> None:
    """With CPU slots reserving their CPUs in Ray (reshape off), and always for GPU slots."""
    backend = cluster(a=(2, 0), g=(2, 1))

    async def main() -> tuple[int, int, int, list[Shape]]:
        sim = await open_sim(backend, reshape_cpu_slots=False)
        await sim.study(sim.add(1, parallelism=2), [0.01] * 2)
        await sim.study(sim.add(2, parallelism=2), [0.01] * 2)
        created_same_shape = backend.created
        await sim.study(sim.add(3, cpus=2), [0.01])
        created_cpu = backend.created
        await sim.study(sim.add(4, cpus=1, gpus=1), [0.01])
        await sim.study(sim.add(5, cpus=2, gpus=1), [0.01])
        on_gpu_node = [a.shape for a in backend.live.values() if a.node_id == "g"]
        await sim.scheduler.close()
        return created_same_shape, created_cpu, backend.created, on_gpu_node

    same, cpu, gpu, on_gpu_node = asyncio.run(main())
    assert same == 2  # the second study reused the first one's two idle slots
    assert cpu == 3  # the 2-CPU slot replaced both idle 1-CPU slots
    assert gpu == 5  # one per GPU shape: the idle 1-GPU slot was ended for the other
    assert on_gpu_node == [Shape.of(2, 1)]


def test_an_idle_cpu_slot_serves_any_cpu_shape_in_its_own_process() -> None:
    """CPU-only slots reserve nothing in Ray: moving between CPU shapes starts no actor,
    while the trials' own use of each node still never exceeds it."""
    backend = cluster(a=(2, 0))

    async def main() -> tuple[Sim, list[int], list[Shape]]:
        sim = await open_sim(backend, max_idle=4)
        created = []
        await sim.study(sim.add(1, parallelism=2), [0.01] * 2)
        created.append(backend.created)
        await sim.study(sim.add(2, cpus=2), [0.01] * 2)
        created.append(backend.created)
        await sim.study(sim.add(3, cpus=0.5, parallelism=4), [0.01] * 8)
        created.append(backend.created)
        await sim.study(sim.add(4, cpus=1, parallelism=2), [0.01] * 4)
        created.append(backend.created)
        reserved = [a.reserved for a in backend.live.values()]
        await sim.scheduler.close()
        return sim, created, reserved

    sim, created, reserved = asyncio.run(main())
    assert created == [2, 2, 4, 4]  # the 0.5-CPU study needed two processes more, no other
    assert set(reserved) == {Shape(0, 0)}
    assert overlapping(sim.runs, "a").fits_in(Shape.of(2, 0)), overlapping(sim.runs, "a")
    assert {r.shape for r in sim.runs if r.study_id == 3} == {Shape.of(0.5, 0)}


def test_with_an_autoscaler_cpu_slots_reserve_their_cpus_in_ray() -> None:
    """An autoscaler sizes the cluster by what Ray sees reserved: a node whose trials
    reserved nothing would look idle to it and could be taken away."""
    backend = cluster(a=(2, 0))
    backend.autoscaler = True

    async def main() -> list[Shape]:
        sim = await open_sim(backend)
        await sim.study(sim.add(1, parallelism=2), [0.01] * 2)
        reserved = [a.reserved for a in backend.live.values()]
        await sim.scheduler.close()
        return reserved

    assert asyncio.run(main()) == [Shape.of(1, 0)] * 2


def test_idle_slots_beyond_max_idle_are_ended() -> None:
    backend = cluster(a=(4, 0))

    async def main() -> int:
        sim = await open_sim(backend, max_idle=1)
        await sim.study(sim.add(1, parallelism=4), [0.01] * 4)
        await asyncio.sleep(0.01)
        n_live = len(backend.live)
        await sim.scheduler.close()
        return n_live

    assert asyncio.run(main()) == 1


def test_a_node_that_joins_raises_concurrency_and_a_lost_node_is_forgotten() -> None:
    backend = cluster(a=(1, 0))

    def on(node_id: str) -> int:
        return sum(1 for a in backend.live.values() if a.node_id == node_id)

    async def main() -> tuple[Sim, list[tuple[str, bool, int]]]:
        sim = await open_sim(backend)
        study = asyncio.ensure_future(sim.study(sim.add(1, parallelism=3), [0.05] * 40))
        await eventually(lambda: len(sim.runs) >= 1)  # trials run on the first node
        backend.capacity["b"] = Shape.of(2, 0)
        await eventually(lambda: any(r.node_id == "b" for r in sim.runs))
        backend.dead.add("b")
        for actor in [a for a in backend.live.values() if a.node_id == "b"]:
            backend.kill(actor)
        await eventually(
            lambda: (
                not study.done()
                and any(n.node_id == "b" and not n.alive for n in sim.scheduler.snapshot().nodes)
                and on("b") == 0
            )
        )
        await eventually(lambda: sim.scheduler.snapshot().nodes[0].used.cpus == units(1))
        nodes = [(n.node_id, n.alive, n.used.cpus) for n in sim.scheduler.snapshot().nodes]
        await asyncio.wait_for(study, timeout=30)
        await sim.scheduler.close()
        return sim, nodes

    sim, nodes = asyncio.run(main())
    assert len(sim.runs) == 40
    at_once = max(sum(1 for r in sim.runs if r.start <= x.start < r.end) for x in sim.runs)
    assert at_once == 3  # 1 on the first node, 2 on the one that joined
    assert {r.node_id for r in sim.runs} == {"a", "b"}
    assert nodes == [("a", True, units(1)), ("b", False, 0)]  # its slots are forgotten
    assert on("b") == 0  # and nothing was placed on it once it was lost


def test_unmet_demand_is_told_to_the_autoscaler_and_withdrawn_when_met() -> None:
    backend = cluster(a=(1, 0))
    backend.autoscaler = True

    async def main() -> None:
        sim = await open_sim(backend)
        study = asyncio.ensure_future(sim.study(sim.add(1, cpus=1, parallelism=3), [0.05] * 3))
        unmet = [str({"CPU": 1.0})] * 3
        await eventually(
            lambda: bool(backend.requests) and sorted(map(str, backend.requests[-1])) == unmet
        )
        await study
        await eventually(lambda: backend.requests[-1] == [])
        await sim.scheduler.close()

    asyncio.run(main())


def test_a_trial_that_fits_no_node_or_quota_is_refused_naming_the_field() -> None:
    backend = cluster(a=(4, 0), g=(2, 1))
    policy = TenantPolicy(quotas={"small": Quota(cpus=2)})

    async def main() -> list[tuple[str, str] | None]:
        scheduler = SlotScheduler(backend, policy)
        await scheduler.start()
        found = [
            scheduler.check_fits("any", Shape.of(4, 0)),
            scheduler.check_fits("any", Shape.of(1, 2)),
            scheduler.check_fits("any", Shape.of(3, 1)),
            scheduler.check_fits("small", Shape.of(3, 0)),
        ]
        backend.autoscaler = True
        await scheduler.refresh()
        found.append(scheduler.check_fits("any", Shape.of(1, 2)))
        await scheduler.close()
        return found

    fits, gpus, cpus_on_gpu_node, over_quota, with_autoscaler = asyncio.run(main())
    assert fits is None and with_autoscaler is None
    assert gpus is not None and gpus[0] == "resources.gpus_per_trial"
    assert cpus_on_gpu_node is not None and cpus_on_gpu_node[0] == "resources.cpus_per_trial"
    assert over_quota is not None and over_quota[0] == "resources.cpus_per_trial"
    assert "quota 2" in over_quota[1]


def test_queue_positions_follow_the_grant_order_and_the_gate_keeps_it_at_start() -> None:
    backend = cluster(a=(1, 0))

    async def main() -> tuple[list[int | None], list[int]]:
        sim = await open_sim(backend)
        old, new = sim.add(1, age=1), sim.add(2, age=2)
        sim.scheduler.gate([1, 2])
        later = asyncio.ensure_future(sim.study(new, [0.02]))  # ready first, but younger
        await asyncio.sleep(0.05)
        assert not sim.runs and backend.created == 0  # the gate holds every grant
        positions = [sim.scheduler.queue_info(i).position for i in (1, 2)]  # type: ignore[union-attr]
        await asyncio.gather(later, sim.study(old, [0.02]))
        await sim.scheduler.close()
        return positions, [r.study_id for r in sorted(sim.runs, key=lambda r: r.start)]

    positions, order = asyncio.run(main())
    assert positions == [1, 2]
    assert order == [1, 2]


def test_tenant_policy_parses_weights_and_quotas_and_names_a_bad_entry() -> None:
    policy = TenantPolicy.parse("a:2, b:0.5", "a:cpus=8,gpus=2,b:cpus=4")
    assert (policy.weight("a"), policy.weight("b"), policy.weight("c")) == (2, 0.5, 1)
    assert policy.quota("a") == Quota(cpus=8, gpus=2)
    assert policy.quota("b") == Quota(cpus=4)
    assert policy.quota("c").allows(Shape(units(1000), units(1000)))
    with pytest.raises(ValueError, match="'a:zero'"):
        TenantPolicy.parse("a:zero")
    with pytest.raises(ValueError, match="'memory=3'"):
        TenantPolicy.parse("", "a:memory=3")
    with pytest.raises(ValueError, match="'cpus=nan'"):
        TenantPolicy.parse("", "a:cpus=nan")


def test_a_burst_of_submissions_is_shared_not_taken_by_the_first_study_ready() -> None:
    backend = cluster(a=(3, 0), b=(3, 0))

    async def main() -> Sim:
        sim = await open_sim(backend)
        studies = [
            sim.study(
                sim.add(i, tenant=f"t{i}", parallelism=6),
                [0.3] * 6,
                ready_after_s=0.0 if i == 1 else 0.1,
            )
            for i in (1, 2, 3)
        ]
        await asyncio.wait_for(asyncio.gather(*studies), timeout=20)
        await sim.scheduler.close()
        return sim

    sim = asyncio.run(main())
    first_wave = sorted(sim.runs, key=lambda r: r.start)[:6]
    assert sorted(r.study_id for r in first_wave) == [1, 1, 2, 2, 3, 3]


def test_a_tenant_that_arrives_late_shares_evenly_and_does_not_take_all_to_catch_up() -> None:
    """It joins level with the least served tenant (CFS's rule), not at zero service: the
    tenant that had the cluster to itself is not shut out while the other catches up."""
    backend = cluster(a=(2, 0))

    joined = 3.5  # alone on the whole cluster until then: 3.5 share-seconds served

    async def main() -> list[Run]:
        scheduler, clock = await open_simulated(backend)
        runs = await simulate(
            scheduler,
            clock,
            [
                Arrival(demand(1, tenant="early", parallelism=2), 200, 0.05),
                Arrival(demand(2, tenant="late", parallelism=2), 60, 0.05, at=joined),
            ],
        )
        await scheduler.close()
        return runs

    runs = asyncio.run(main())
    window = (joined, joined + 1.0)
    seconds = {
        t: sum(
            max(0.0, min(r.end, window[1]) - max(r.start, window[0])) for r in runs if r.tenant == t
        )
        for t in ("early", "late")
    }
    assert seconds["early"] / sum(seconds.values()) > 0.35, seconds


def test_a_tenant_that_used_more_lately_yields_to_one_that_used_less() -> None:
    total = Shape.of(4, 0)
    greedy = TenantUse()  # held the whole cluster for a minute, holds nothing now
    greedy.advance(60.0, dominant=1.0)
    modest = TenantUse(held=Shape.of(1, 0))  # holds one CPU, held little before
    modest.advance(60.0, dominant=0.25)
    claims = [Claim(1, "greedy", 0, T0), Claim(2, "modest", 0, T0 + timedelta(seconds=1))]
    order = grant_order(claims, {"greedy": greedy, "modest": modest}, total, TenantPolicy())
    assert [c.tenant for c in order] == ["modest", "greedy"]


PREEMPT_AFTER_S = 1.0
ACTOR_START_S = 4.0  # how long the new actors in these tests take to answer (simulated)
STEP_S = 0.25  # how often a pass runs while a study waits (the scheduler's refresh)


async def first_step_where(
    scheduler: SlotScheduler, clock: FakeClock, check: Callable[[], bool]
) -> float:
    """Simulated seconds from now until a pass, run every STEP_S, makes `check()` hold."""
    start = clock.t
    for step in range(1, 100):
        clock.t = start + step * STEP_S
        await scheduler.refresh()  # a pass, as the refresher would run one
        await settle()
        if check():
            return step * STEP_S
    raise AssertionError("it never happened")


@pytest.mark.parametrize("reshape", [False, True], ids=["reserved", "reshapeable"])
def test_a_slot_of_another_shape_yields_only_after_a_wait_longer_than_an_actor_start(
    reshape: bool,
) -> None:
    """Moving a slot across shapes ends one actor and starts another: the scheduler
    measures how long its new actors take to answer and waits that much longer than
    HPO_PREEMPT_AFTER_S before it takes a slot of another shape. A reshapeable CPU slot
    serves the other CPU shape in its own process, so it goes after HPO_PREEMPT_AFTER_S."""
    backend = cluster(n=(2, 0))

    async def main() -> tuple[float, float, bool]:
        scheduler, clock = await open_simulated(
            backend, preempt_after_s=PREEMPT_AFTER_S, reshape_cpu_slots=reshape
        )
        scheduler.register(demand(1, cpus=2))
        lease = await scheduler.acquire(1)
        clock.t += ACTOR_START_S  # the new actor answers
        scheduler.serving(lease)
        measured = scheduler.actor_start_s
        clock.t += 1.0  # it trains a while: preemptible from here on
        scheduler.register(demand(2, cpus=1, priority=5))
        waiting = asyncio.ensure_future(scheduler.acquire(2))
        await settle()  # it waits from now
        asked_at = await first_step_where(scheduler, clock, lambda: scheduler.should_yield(lease))
        scheduler.release(lease, keep=True)
        granted = await asyncio.wait_for(waiting, timeout=30)
        await scheduler.close()
        return measured, asked_at, granted.actor is lease.actor

    measured, asked_at, same_actor = asyncio.run(main())
    assert measured == ACTOR_START_S
    if reshape:
        assert asked_at == PREEMPT_AFTER_S, asked_at
        assert same_actor  # the 1-CPU trial runs in the process the 2-CPU one left
        return
    # Not at preempt_after_s as for a slot of its own shape, but after the measured
    # actor start on top of it.
    assert asked_at == PREEMPT_AFTER_S + measured, (asked_at, measured)
    assert not same_actor


@pytest.mark.parametrize("reshape", [False, True], ids=["reserved", "reshapeable"])
def test_with_preemption_the_trials_on_a_node_kept_for_a_wide_study_yield_to_it(
    reshape: bool,
) -> None:
    """No single 1-CPU slot makes room for a 2-CPU trial, so without this rule the node
    kept for it sat half idle until the last trial there ended. The trials there yield
    once the wide study has waited HPO_PREEMPT_AFTER_S, plus a measured actor start when
    a new actor must start for it (slots that reserve their CPUs; reshapeable ones serve
    the 2-CPU trial in their own processes)."""
    backend = cluster(n1=(2, 0), n2=(2, 0))

    async def main() -> tuple[dict[int, str], set[int], str, float, float, bool]:
        scheduler, clock = await open_simulated(
            backend, preempt_after_s=PREEMPT_AFTER_S, reshape_cpu_slots=reshape
        )
        scheduler.register(demand(1, tenant="a", parallelism=4))
        leases = [await scheduler.acquire(1) for _ in range(4)]
        clock.t += ACTOR_START_S  # their new actors answer
        for lease in leases:
            scheduler.serving(lease)
        measured = scheduler.actor_start_s
        clock.t += 1.0  # they train a while: preemptible from here on
        scheduler.register(demand(2, tenant="b", cpus=2))
        waiting = asyncio.ensure_future(scheduler.acquire(2))
        await settle()  # it waits from now

        def asked() -> set[int]:
            return {lease.slot_id for lease in leases if scheduler.should_yield(lease)}

        asked_after = await first_step_where(scheduler, clock, lambda: bool(asked()))
        yielding = asked()
        nodes = {lease.slot_id: lease.node_id for lease in leases}
        for lease in leases:
            if lease.slot_id in yielding:
                scheduler.release(lease, keep=True)
        granted = await asyncio.wait_for(waiting, timeout=30)
        reused = any(granted.actor is lease.actor for lease in leases)
        await scheduler.close()
        return nodes, yielding, granted.node_id, measured, asked_after, reused

    nodes, asked, granted_on, measured, asked_after, reused = asyncio.run(main())
    assert len(asked) == 2, asked
    (node,) = {nodes[slot] for slot in asked}  # both trials of one node, and only those
    assert granted_on == node
    assert measured == ACTOR_START_S
    if reshape:
        assert asked_after == PREEMPT_AFTER_S, asked_after
        assert reused  # the 2-CPU trial runs in a process a 1-CPU trial left
    else:
        assert asked_after == PREEMPT_AFTER_S + measured, (asked_after, measured)
        assert not reused


def test_warm_slots_spread_over_the_room_their_trials_will_need() -> None:
    """Reshapeable idle slots hold no room, so prewarm counts each as if busy."""
    backend = cluster(a=(2, 0), b=(2, 0))

    async def main() -> list[str]:
        scheduler = SlotScheduler(backend, max_idle=5, refresh_s=0.05)
        await scheduler.start()
        scheduler.prewarm(Shape.of(1, 0), 5)
        nodes = sorted(a.node_id for a in backend.live.values())
        await scheduler.close()
        return nodes

    assert asyncio.run(main()) == ["a", "a", "b", "b"]  # and no fifth: no room for its trial
