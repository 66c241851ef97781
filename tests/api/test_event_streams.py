"""Event streams: one shared poll per process, heartbeats, idle ends, a per-tenant cap,
and no tenant ever sees another's events; all over a live service."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import EventSource
from sqlalchemy import event

from api.app import create_app
from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service

pytestmark = [pytest.mark.ray, pytest.mark.slow]

CAP = 3
A, B = {"Authorization": "Bearer token-a"}, {"Authorization": "Bearer token-b"}
NEVER = {"after": str(2**63 - 1)}  # no event has a larger id: the stream only waits
LONG_BUDGET = {"max_trials": 1000, "max_epochs": 200, "parallelism": 1}


@dataclass
class Live:
    url: str
    app: Any
    study_a: int
    study_b: int

    def hub(self) -> Any:
        return self.app.state.event_hub


@contextmanager
def live_service(settings: Settings) -> Iterator[Live]:
    """A service with one long study per tenant, stopped when the block ends."""
    app = create_app(settings)
    with running_service(settings, app=app) as url, httpx.Client(base_url=url, timeout=60) as http:
        ids = [
            http.post(
                "/api/v1/studies",
                json={**FAST_SPEC, "name": name, "budget": LONG_BUDGET},
                headers=headers,
            ).json()["id"]
            for name, headers in (("long-a", A), ("long-b", B))
        ]
        try:
            yield Live(url, app, *ids)
        finally:
            for study_id, headers in zip(ids, (A, B), strict=True):
                http.post(f"/api/v1/studies/{study_id}/stop", headers=headers)


@pytest.fixture(scope="module")
def live(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("streams")
    settings = Settings(
        database_url=f"sqlite:///{root / 'hpo.db'}",
        data_dir=root / "data",
        api_tokens="a:token-a,b:token-b",
        max_event_streams_per_tenant=CAP,
        event_heartbeat_s=0.05,
        event_idle_s=600,
    )
    with live_service(settings) as service:
        yield service


@contextmanager
def stream(
    live: Live, study_id: int, headers: dict[str, str], params: dict[str, str] | None = None
) -> Iterator[httpx.Response]:
    """An open event stream (headers received); closed when the block ends."""
    with (
        httpx.Client(base_url=live.url, headers=headers, timeout=60) as http,
        http.stream("GET", f"/api/v1/studies/{study_id}/events", params=params) as response,
    ):
        yield response


def take_events(response: httpx.Response, n: int) -> list[int]:
    """The ids of the stream's next `n` events (one reader per response, kept on it)."""
    events = response.extensions.setdefault("test_events", EventSource(response).iter_sse())
    return [int(next(events).id) for _ in range(n)]


def count_event_reads(engine: Any) -> list[str]:
    """Every SELECT on the events table from now on (a list that grows)."""
    reads: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "hpo_events" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    return reads


def test_concurrent_streams_share_one_poll_of_the_events_table(live: Live) -> None:
    with ExitStack() as open_streams:
        first = open_streams.enter_context(stream(live, live.study_a, A))
        take_events(first, 1)
        hub = live.hub()
        started, polls = hub.n_pollers_started, hub.n_polls
        reads = count_event_reads(live.app.state.runtime.engine)
        others = [open_streams.enter_context(stream(live, live.study_a, A)) for _ in range(2)]
        seen = [take_events(response, 12) for response in others]
        seen.append(take_events(first, 11))
        assert seen[0] == seen[1] and seen[2] == seen[0][1:], "the streams saw different events"
        assert hub.n_pollers_started == started, "a second poller started"
        assert hub.n_polls > polls and len(reads) == hub.n_polls - polls


def test_a_stream_with_nothing_to_send_sends_heartbeats(live: Live) -> None:
    with stream(live, live.study_a, A, NEVER) as response:
        comments = []
        for line in response.iter_lines():
            if line.startswith(":"):
                comments.append(line)
                if len(comments) == 2:
                    break
        assert comments == [": heartbeat", ": heartbeat"]


def test_one_stream_over_the_tenant_cap_is_429_naming_the_cap(live: Live) -> None:
    with ExitStack() as open_streams:
        held = [
            open_streams.enter_context(stream(live, live.study_a, A, NEVER)) for _ in range(CAP)
        ]
        assert [r.status_code for r in held] == [200] * CAP
        with stream(live, live.study_a, A, NEVER) as refused:
            refused.read()
            assert refused.status_code == 429
            assert refused.json()["error"]["code"] == "cap_reached"
            assert refused.json()["error"]["message"] == (
                f"tenant cap reached: max_event_streams_per_tenant = {CAP}"
            )
        with stream(live, live.study_b, B, NEVER) as other_tenant:
            assert other_tenant.status_code == 200
        open_streams.close()  # the clients go away: their slots come back
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with ExitStack() as again:
            codes = [
                again.enter_context(stream(live, live.study_a, A, NEVER)).status_code
                for _ in range(CAP)
            ]
        if codes == [200] * CAP:
            break
        time.sleep(0.1)
    assert codes == [200] * CAP


def test_a_tenants_stream_never_carries_another_tenants_events(live: Live) -> None:
    with stream(live, live.study_a, A) as of_a, stream(live, live.study_b, B) as of_b:
        ids_a, ids_b = take_events(of_a, 15), take_events(of_b, 15)
    assert ids_a == sorted(ids_a) and ids_b == sorted(ids_b)
    assert not set(ids_a) & set(ids_b)
    with stream(live, live.study_b, A) as foreign:
        assert foreign.status_code == 404


def test_an_idle_stream_ends_and_frees_its_slot(ray_cluster: Any, tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'hpo.db'}",
        data_dir=tmp_path / "data",
        api_tokens="a:token-a,b:token-b",
        max_event_streams_per_tenant=1,
        event_heartbeat_s=0.05,
        event_idle_s=0.5,
        prewarm_slots=False,
    )
    with live_service(settings) as live:
        with stream(live, live.study_a, A, NEVER) as idle:
            lines = list(idle.iter_lines())  # returns only once the server ends the stream
        assert lines and all(line in (": heartbeat", "") for line in lines)
        assert live.hub().n_streams("a") == 0
        with stream(live, live.study_a, A, NEVER) as next_one:
            assert next_one.status_code == 200
