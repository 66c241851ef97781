"""Commands raced over HTTP: hypothesis draws pairs of commands (resume, stop, pause,
delete, read) and fires each pair at one study at the same instant from two threads.

Whatever the order the service sees them in, no answer is a 5xx, each is one the
document promises for that route, and the study ends in one state: gone, or ended with
no trial left running or waiting. A live service on real Ray (the session's cluster)
and SQLite; the compare-and-sets under it are raced on both databases in
tests/service/test_command_races.py. Studies of one one-epoch trial keep cases cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import hypothesis
import pytest
from hypothesis import HealthCheck
from hypothesis import strategies as st

from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]

COMMANDS = ("resume", "stop", "pause", "delete", "get")
ANSWERS = {  # what each command may answer, racing another one
    "resume": {202, 404, 409},
    "stop": {202, 404, 409},
    "pause": {202, 404, 409},
    "delete": {204, 404, 409},
    "get": {200, 404},
}
TINY = {**FAST_SPEC, "budget": {"max_trials": 1, "max_epochs": 1, "parallelism": 1}}


@pytest.fixture(scope="module")
def client(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("races")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}", data_dir=root / "data", studies_per_minute=1000
    )
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=60) as http:
        yield http


def send(http: httpx.Client, command: str, study_id: int) -> httpx.Response:
    path = f"/api/v1/studies/{study_id}"
    if command == "get":
        return http.get(path)
    if command == "delete":
        return http.delete(path)
    body = {"budget": {"max_trials": 2}} if command == "resume" else None
    return http.post(f"{path}/{command}", json=body)


def at_once(http: httpx.Client, pair: tuple[str, str], study_id: int) -> list[httpx.Response]:
    barrier = threading.Barrier(2)
    answers: list[Any] = [None, None]

    def fire(i: int) -> None:
        barrier.wait()
        answers[i] = send(http, pair[i], study_id)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


@hypothesis.settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@hypothesis.given(
    pairs=st.lists(
        st.tuples(st.sampled_from(COMMANDS), st.sampled_from(COMMANDS)), min_size=1, max_size=3
    ),
    ended=st.booleans(),
)
def test_commands_raced_on_one_study_leave_one_outcome_and_no_5xx(
    client: httpx.Client, pairs: list[tuple[str, str]], ended: bool
) -> None:
    created = client.post("/api/v1/studies", json=TINY)
    assert created.status_code == 201, created.text
    study_id = created.json()["id"]
    if ended:
        wait_for_study(client, study_id)
    for pair in pairs:
        answers = at_once(client, pair, study_id)
        for command, answer in zip(pair, answers, strict=True):
            assert answer.status_code in ANSWERS[command], (pair, answer.status_code, answer.text)
        deleted = any(
            c == "delete" and a.status_code == 204 for c, a in zip(pair, answers, strict=True)
        )
        if deleted:
            assert client.get(f"/api/v1/studies/{study_id}").status_code == 404
            return
    study = wait_for_study(client, study_id)
    if study["state"] == "paused":
        return  # paused trials wait for a resume, as they should
    assert study["counts"]["running"] == study["counts"]["waiting"] == 0, study
    assert study["state"] in ("completed", "stopped"), study


def test_resume_of_a_study_deleted_meanwhile_is_404(client: httpx.Client) -> None:
    created = client.post("/api/v1/studies", json=TINY).json()
    wait_for_study(client, created["id"])
    assert client.delete(f"/api/v1/studies/{created['id']}").status_code == 204
    answer = client.post(f"/api/v1/studies/{created['id']}/resume", json={})
    assert answer.status_code == 404, answer.text
