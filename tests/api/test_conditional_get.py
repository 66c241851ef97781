"""ETags, 304s and Cache-Control on a live service: a poller revalidates instead of
downloading again, and never keeps an answer that changed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from api.conditional import etag_of, matches
from tests.conftest import LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def http(shared_service: LiveService) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_service.url, timeout=30) as client:
        yield client


def test_a_poller_gets_304_while_nothing_changed_and_the_new_body_when_it_did(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(name="polled", budget={"max_trials": 2, "max_epochs": 2, "parallelism": 1})
    study_id = http.post("/api/v1/studies", json=spec).json()["id"]
    path = f"/api/v1/studies/{study_id}"
    first = http.get(path)
    held, etag = first.json(), first.headers["etag"]
    assert first.headers["cache-control"] == "private, no-cache"
    tags = {etag}
    while held["state"] in ("queued", "running"):
        time.sleep(0.05)  # a poller's pace; a tight loop would slow the study it watches
        answer = http.get(path, headers={"If-None-Match": etag})
        if answer.status_code == 304:
            assert answer.content == b"" and answer.headers["etag"] == etag
            # The tag names the body: the same tag, the same answer.
            plain = http.get(path)
            assert plain.headers["etag"] == etag_of(plain.content)
            if plain.headers["etag"] == etag:
                assert plain.json() == held
        else:
            assert answer.status_code == 200 and answer.headers["etag"] != etag
            held, etag = answer.json(), answer.headers["etag"]
            tags.add(etag)
    assert held == wait_for_study(http, study_id)
    assert len(tags) >= 3  # queued or running, then progress, then finished
    again = http.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.headers["cache-control"] == "private, no-cache"


def test_a_finished_trial_may_be_kept_a_minute_and_a_list_lists_validators(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    spec = make_spec(name="cached", budget={"max_trials": 1, "max_epochs": 2})
    study_id = http.post("/api/v1/studies", json=spec).json()["id"]
    wait_for_study(http, study_id)
    trial = http.get(f"/api/v1/studies/{study_id}/trials/0")
    assert trial.json()["state"] == "complete"
    assert trial.headers["cache-control"] == "private, max-age=60"
    tag = trial.headers["etag"]
    for validators in (tag, f'"nope", W/{tag}', "*"):
        revalidated = http.get(
            f"/api/v1/studies/{study_id}/trials/0", headers={"If-None-Match": validators}
        )
        assert revalidated.status_code == 304, validators
        assert revalidated.headers["cache-control"] == "private, max-age=60"
    stale = http.get(f"/api/v1/studies/{study_id}/trials/0", headers={"If-None-Match": '"nope"'})
    assert stale.status_code == 200 and stale.json() == trial.json()


def test_errors_streams_and_writes_carry_no_validator(
    http: httpx.Client, make_spec: Callable[..., dict[str, Any]]
) -> None:
    missing = http.get("/api/v1/studies/999999")
    assert missing.status_code == 404 and "etag" not in missing.headers
    assert "etag" not in http.get("/metrics").headers
    created = http.post("/api/v1/studies", json=make_spec(name="posted"))
    assert created.status_code == 201 and "etag" not in created.headers
    wait_for_study(http, created.json()["id"])


def test_if_none_match_compares_weakly_and_lists() -> None:
    assert matches('"a"', '"a"') and matches('W/"a"', '"a"') and matches('"b", "a"', '"a"')
    assert matches("*", '"a"')
    assert not matches(None, '"a"') and not matches('"b"', '"a"') and not matches("", '"a"')
