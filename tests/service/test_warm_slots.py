"""Warm slots: the scheduler keeps idle slot actors between studies, by resource shape.

Real Ray (the session's cluster, all on this machine, so slot pids are local) and a
live service on SQLite.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import running_service, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(params=[True], ids=["reshapeable"])
def client(
    request: pytest.FixtureRequest, ray_cluster: Any, sqlite_url: str, tmp_path: Path
) -> Iterator[httpx.Client]:
    settings = Settings(
        database_url=sqlite_url,
        data_dir=tmp_path / "data",
        warm_slots=2,
        reshape_cpu_slots=request.param,
    )
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http


def run(client: httpx.Client, spec: dict[str, Any]) -> set[int]:
    """Run a study to its end; the pids of the slot processes its trials ran on."""
    response = client.post("/api/v1/studies", json=spec)
    assert response.status_code == 201, response.text
    study = wait_for_study(client, response.json()["id"])
    assert study["state"] == "completed", study
    items = client.get(f"/api/v1/studies/{study['id']}/trials", params={"limit": 100}).json()
    return {int(t["node"].split("pid=")[1].split()[0]) for t in items["items"]}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_studies_in_turn_train_on_the_same_warm_slots_and_a_dead_one_is_replaced(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    budget = {"max_trials": 4, "max_epochs": 2, "parallelism": 2}
    first = run(client, make_spec(name="first", budget=budget))
    second = run(client, make_spec(name="second", budget=budget))
    assert len(first) == 2
    assert second == first  # no new slot process for the second study
    assert all(alive(pid) for pid in first)  # kept idle, ready for the next one

    victim = min(first)  # dies while idle: the next study must not fail on it
    os.kill(victim, 9)
    while alive(victim):
        time.sleep(0.05)
    third = run(client, make_spec(name="third", budget=budget))
    assert victim not in third
    assert third & first  # the warm slot that lived is still used


def one_cpu_study(client: httpx.Client, make_spec: Callable[..., dict[str, Any]]) -> set[int]:
    """Two 1-CPU trials at once: the pids they trained on."""
    budget = {"max_trials": 2, "max_epochs": 1, "parallelism": 2}
    return run(client, make_spec(name="small", budget=budget))


def two_cpu_study(client: httpx.Client, make_spec: Callable[..., dict[str, Any]]) -> set[int]:
    """Four 2-CPU trials, two at once: the pids they trained on."""
    budget = {"max_trials": 4, "max_epochs": 1, "parallelism": 2}
    return run(client, make_spec(name="big", resources={"cpus_per_trial": 2}, budget=budget))


@pytest.mark.parametrize("client", [False], ids=["reserved"], indirect=True)
def test_idle_slots_of_another_shape_end_only_when_a_study_needs_their_room(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    # Slots that reserve their CPUs in Ray (HPO_RESHAPE_CPU_SLOTS=false). Two 1-CPU slots
    # go to one 2-CPU node (best fit); a 2-CPU study with parallelism 2 then needs both
    # 2-CPU nodes of the cluster, so the idle small slots must end.
    small = one_cpu_study(client, make_spec)
    assert len(small) == 2 and all(alive(pid) for pid in small)
    big = two_cpu_study(client, make_spec)
    assert not small & big and len(big) == 2
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in small) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(pid) for pid in small)


def test_an_idle_cpu_slot_serves_another_cpu_shape_in_its_own_process(
    client: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    # Reshapeable slots (the default) reserve nothing in Ray: the 2-CPU study's first
    # trial runs in a process the 1-CPU study left; its second needs the other 2-CPU node.
    small = one_cpu_study(client, make_spec)
    assert len(small) == 2
    big = two_cpu_study(client, make_spec)
    assert len(big) == 2 and big & small, (small, big)
    view = client.get("/api/v1/cluster").json()
    for node in view["nodes"]:  # idle slots hold no room: only busy ones count
        assert node["cpus_used"] == 0, view
