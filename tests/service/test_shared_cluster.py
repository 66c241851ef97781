"""Many studies and tenants on one real multi-node Ray cluster, through the HTTP API.

The session's cluster (tests/conftest.py): a head with 2 CPUs, a node with 2 CPUs and a
node with 1 CPU and one declared GPU, all on this machine: 5 CPUs and 1 GPU (not there:
its slots train on the CPU, as `allow_cpu_for_gpus` lets them). Checks
read what users see: trial start/finish times and nodes, study states and
`GET /api/v1/cluster`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import ray

from service.settings import Settings
from tests.conftest import running_service, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

TOKENS = {"solo": "tok-solo", "crowd": "tok-crowd", "capped": "tok-capped", "ops": "tok-ops"}
# Trials long enough for shares to show (about a second): 3 epochs of a wide two-layer
# MLP in small batches, no pruning or early stopping.
STEADY = {
    "params": {"hidden_units": 512, "hidden_layers": 2, "optimizer": "sgd", "batch_size": 16},
    "space": {"lr": {"type": "float", "low": 0.01, "high": 0.05}},
    "pruner": {"type": "none"},
    "early_stopping": {"patience": 100},
}


def tenant(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


@pytest.fixture
def shared_url(ray_cluster: Any, sqlite_url: str, tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        database_url=sqlite_url,
        data_dir=tmp_path / "data",
        prewarm_slots=False,
        warm_slots=5,
        api_tokens=",".join(f"{t}:{k}" for t, k in TOKENS.items()),
        tenant_quotas="capped:cpus=2",
        allow_cpu_for_gpus=True,
    )
    with running_service(settings) as url:
        yield url


def submit(http: httpx.Client, spec: dict[str, Any], who: str = "solo") -> int:
    response = http.post("/api/v1/studies", json=spec, headers=tenant(who))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def trials_of(http: httpx.Client, study_id: int, who: str = "solo") -> list[dict[str, Any]]:
    page = http.get(
        f"/api/v1/studies/{study_id}/trials", params={"limit": 1000}, headers=tenant(who)
    )
    return list(page.json()["items"])


def finish(http: httpx.Client, study_id: int, who: str = "solo") -> dict[str, Any]:
    http.headers.update(tenant(who))
    study = wait_for_study(http, study_id, timeout_s=240)
    assert study["state"] == "completed", study
    return study


@dataclass(frozen=True)
class Interval:
    study_id: int
    node: str
    cpus: float
    gpus: float
    start: float
    end: float


def intervals(trials: list[dict[str, Any]], study_id: int, spec: dict[str, Any]) -> list[Interval]:
    resources = {"cpus_per_trial": 1, "gpus_per_trial": 0, **spec.get("resources", {})}
    return [
        Interval(
            study_id,
            t["node"].split()[0],
            resources["cpus_per_trial"],
            resources["gpus_per_trial"],
            _ts(t["started_at"]),
            _ts(t["finished_at"]),
        )
        for t in trials
    ]


def _ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def peak_use(runs: list[Interval], node: str) -> tuple[float, float]:
    """The most CPUs and GPUs that trials on `node` held at any one moment."""
    on_node = [r for r in runs if r.node == node]
    peaks = [(0.0, 0.0)]
    for moment in (r.start for r in on_node):
        live = [r for r in on_node if r.start <= moment < r.end]
        peaks.append((sum(r.cpus for r in live), sum(r.gpus for r in live)))
    return max(p[0] for p in peaks), max(p[1] for p in peaks)


def concurrency(runs: list[Interval]) -> int:
    return max(sum(1 for r in runs if r.start <= x.start < r.end) for x in runs)


# -- demand far over capacity, every shape at once ------------------------------------


@pytest.fixture
def any_db_url(ray_cluster: Any, database_url: str, tmp_path: Path) -> Iterator[str]:
    settings = Settings(
        database_url=database_url,
        data_dir=tmp_path / "data",
        prewarm_slots=False,
        warm_slots=4,
        allow_cpu_for_gpus=True,
    )
    with running_service(settings) as url:
        yield url


SHAPES = [
    {"cpus_per_trial": 1},
    {"cpus_per_trial": 2},
    {"cpus_per_trial": 0.5},
    {"cpus_per_trial": 1, "gpus_per_trial": 1},
    {"cpus_per_trial": 2},
    {"cpus_per_trial": 0.5, "gpus_per_trial": 0.5},
    {"cpus_per_trial": 1},
]


def test_mixed_shapes_at_four_times_capacity_all_finish_without_overcommitting_a_node(
    any_db_url: str, make_spec: Callable[..., dict[str, Any]]
) -> None:
    specs = [
        make_spec(
            name=f"mixed-{i}",
            resources=shape,
            budget={"max_trials": 3, "max_epochs": 2, "parallelism": 3},
        )
        for i, shape in enumerate(SHAPES)
    ]
    demand = sum(3 * s["resources"]["cpus_per_trial"] for s in specs)
    assert demand >= 4 * 5  # four times the cluster's 5 CPUs
    with httpx.Client(base_url=any_db_url, timeout=30) as http:
        ids = [submit(http, spec) for spec in specs]
        seen = [http.get(f"/api/v1/studies/{i}").json() for i in ids]
        queued = [s for s in seen if s["state"] == "queued" and s["slots_held"] == 0]
        assert queued, "with 4x demand some study must wait for its first slot"
        assert all(s["queue_position"] >= 1 and s["waiting_since"] for s in queued)
        runs: list[Interval] = []
        for study_id, spec in zip(ids, specs, strict=True):
            study = finish(http, study_id)
            assert study["counts"]["complete"] == 3 and study["queue_position"] is None
            runs += intervals(trials_of(http, study_id), study_id, spec)
    capacity = {n["NodeID"][:12]: n["Resources"] for n in ray.nodes() if n["Alive"]}
    for node, resources in capacity.items():
        cpus, gpus = peak_use(runs, node)
        assert cpus <= resources.get("CPU", 0) and gpus <= resources.get("GPU", 0), node


def test_a_trial_that_fits_no_node_or_exceeds_the_quota_is_refused_at_submission(
    shared_url: str, make_spec: Callable[..., dict[str, Any]]
) -> None:
    with httpx.Client(base_url=shared_url, timeout=30) as http:
        too_big = make_spec(name="big", resources={"cpus_per_trial": 1, "gpus_per_trial": 2})
        response = http.post("/api/v1/studies", json=too_big, headers=tenant("solo"))
        assert response.status_code == 422, response.text
        (detail,) = response.json()["error"]["details"]
        assert detail["loc"] == "resources.gpus_per_trial" and "no node" in detail["msg"]
        wide = make_spec(name="wide", resources={"cpus_per_trial": 3})
        response = http.post("/api/v1/studies", json=wide, headers=tenant("capped"))
        assert response.status_code == 422, response.text
        (detail,) = response.json()["error"]["details"]
        assert detail["loc"] == "resources.cpus_per_trial" and "quota 2" in detail["msg"]
        listed = http.get("/api/v1/studies", headers=tenant("capped")).json()["items"]
        assert listed == []  # nothing was stored


# -- fair share, quotas, priorities ----------------------------------------------------


def warm_up(http: httpx.Client, make_spec: Callable[..., dict[str, Any]]) -> None:
    """Start the cluster's five 1-CPU slots, so that shares are not measured on start-up;
    a third tenant does it, so that neither measured tenant has used the cluster before."""
    spec = make_spec(name="warm-up", budget={"max_trials": 5, "max_epochs": 1, "parallelism": 5})
    finish(http, submit(http, spec, "ops"), "ops")


def test_one_study_against_six_of_another_tenant_gets_half_the_cluster(
    shared_url: str, make_spec: Callable[..., dict[str, Any]]
) -> None:
    """Counted in grants, not seconds: the trials each tenant started while both had
    trials waiting. Fair, each starts about half of them; shared by study, the crowd
    would start six in seven, and first come first served would leave it none."""

    def spec(name: str, n: int) -> dict[str, Any]:
        return make_spec(
            name=name, **STEADY, budget={"max_trials": n, "max_epochs": 3, "parallelism": 5}
        )

    with httpx.Client(base_url=shared_url, timeout=30) as http:
        warm_up(http, make_spec)
        solo = submit(http, spec("solo", 18), "solo")
        crowd = [submit(http, spec(f"crowd-{i}", 3), "crowd") for i in range(6)]
        view = cluster_view_once_both_hold_slots(http)
        runs = {"solo": intervals(trials_of(http, finish(http, solo)["id"]), solo, {})}
        runs["crowd"] = [
            r
            for i in crowd
            for r in intervals(trials_of(http, finish(http, i, "crowd")["id"], "crowd"), i, {})
        ]
    # While both tenants had trials waiting: until the last trial of either began.
    contended_until = min(max(r.start for r in rs) for rs in runs.values())
    started = {t: sum(1 for r in rs if r.start < contended_until) for t, rs in runs.items()}
    assert sum(started.values()) >= 12, started  # enough grants to tell shares apart
    assert min(started.values()) >= sum(started.values()) / 3, started
    # The cluster as tenant solo sees it: its own study by id, the crowd only as totals.
    assert [t["tenant"] for t in view["tenants"]] == ["solo"]
    assert view["others"]["slots"] >= 1 and view["others"]["tenant"] == "others"
    assert {q["study_id"] for q in view["queue"]} <= {solo, None}
    assert all(s["study_id"] in (solo, None) for s in view["slots"])
    assert len([n for n in view["nodes"] if n["alive"]]) >= 3


def cluster_view_once_both_hold_slots(http: httpx.Client) -> dict[str, Any]:
    """`GET /api/v1/cluster` as tenant solo, polled until solo and the others both hold a
    slot; the deadline fails the test, it measures nothing."""
    deadline = time.monotonic() + 180
    while True:
        view: dict[str, Any] = http.get("/api/v1/cluster", headers=tenant("solo")).json()
        mine = sum(t["slots"] for t in view["tenants"])
        if mine >= 1 and (view.get("others") or {}).get("slots", 0) >= 1:
            return view
        assert time.monotonic() < deadline, f"both tenants never held a slot at once: {view}"
        time.sleep(0.05)


def test_a_quota_is_never_exceeded_while_other_tenants_use_the_rest(
    shared_url: str, make_spec: Callable[..., dict[str, Any]]
) -> None:
    with httpx.Client(base_url=shared_url, timeout=30) as http:
        budget = {"max_trials": 8, "max_epochs": 2, "parallelism": 5}
        capped = submit(http, make_spec(name="capped", budget=budget), "capped")
        other = submit(http, make_spec(name="other", budget=budget), "crowd")
        capped_runs = intervals(
            trials_of(http, finish(http, capped, "capped")["id"], "capped"), capped, {}
        )
        other_runs = intervals(
            trials_of(http, finish(http, other, "crowd")["id"], "crowd"), other, {}
        )
    assert concurrency(capped_runs) == 2  # HPO_TENANT_QUOTAS=capped:cpus=2
    assert concurrency(other_runs) >= 3


def test_a_higher_priority_study_submitted_last_gets_the_next_freed_slots(
    shared_url: str, make_spec: Callable[..., dict[str, Any]]
) -> None:
    with httpx.Client(base_url=shared_url, headers=tenant("solo"), timeout=30) as http:
        busy = submit(
            http,
            make_spec(
                name="busy", **STEADY, budget={"max_trials": 5, "max_epochs": 3, "parallelism": 5}
            ),
        )
        deadline = time.monotonic() + 60
        while http.get(f"/api/v1/studies/{busy}").json()["slots_held"] < 5:  # the whole cluster
            assert time.monotonic() < deadline, "the busy study never held the cluster"
            time.sleep(0.05)
        budget = {"max_trials": 2, "max_epochs": 1, "parallelism": 2}
        low = submit(http, make_spec(name="low", budget=budget, priority=0))
        high = submit(http, make_spec(name="high", budget=budget, priority=5))
        waiting = {i: http.get(f"/api/v1/studies/{i}").json() for i in (low, high)}
        assert waiting[high]["queue_position"] < waiting[low]["queue_position"]
        assert waiting[high]["priority"] == 5
        for study_id in (busy, low, high):
            finish(http, study_id)
        first_low = min(r.start for r in intervals(trials_of(http, low), low, {}))
        high_runs = intervals(trials_of(http, high), high, {})
    assert all(r.start <= first_low for r in high_runs)


# -- the cluster grows -----------------------------------------------------------------


def test_a_node_that_joins_mid_study_raises_its_concurrency(
    ray_cluster: Any, sqlite_url: str, tmp_path: Path, make_spec: Callable[..., dict[str, Any]]
) -> None:
    settings = Settings(database_url=sqlite_url, data_dir=tmp_path / "data", warm_slots=7)
    spec = make_spec(
        name="grows", **STEADY, budget={"max_trials": 21, "max_epochs": 3, "parallelism": 7}
    )
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        study_id = submit(http, spec)
        deadline = time.monotonic() + 60
        while http.get(f"/api/v1/studies/{study_id}").json()["slots_held"] < 5:
            assert time.monotonic() < deadline, "the study never held the cluster's 5 slots"
            time.sleep(0.2)
        node = ray_cluster.add_node(num_cpus=2, object_store_memory=100 * 2**20)
        try:
            study = finish(http, study_id)
            runs = intervals(trials_of(http, study_id), study_id, {})
        finally:
            ray_cluster.remove_node(node)
    assert study["counts"]["complete"] == 21
    assert concurrency(runs) == 7
    assert node.node_id[:12] in {r.node for r in runs}
