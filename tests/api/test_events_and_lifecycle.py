"""Live events (SSE) with Last-Event-ID, delete, and readiness, on a live service."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import optuna
import pytest

from api.client import ClientError, HpoClient
from tests.conftest import LiveService, wait_for_study

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture
def client(shared_service: LiveService) -> Iterator[HpoClient]:
    with HpoClient(shared_service.url) as http:
        yield http


def test_events_replay_every_trial_once_and_resume_without_gaps(
    client: HpoClient, make_spec: Callable[..., dict[str, Any]]
) -> None:
    study = client.submit(make_spec(name="events", budget={"max_trials": 5, "max_epochs": 3}))
    first = []
    for event in client.events(study["id"]):
        first.append(event)
        if len(first) == 7:
            break  # drop the connection mid-study
    rest = list(client.events(study["id"], last_event_id=first[-1]["id"]))
    seen = first + rest
    ids = [e["id"] for e in seen]
    assert ids == sorted(set(ids)), "an event was repeated or out of order"
    assert ids == [e["id"] for e in client.events(study["id"])], "the resumed stream missed events"
    finished = [e["data"]["number"] for e in seen if e["event"] == "trial_finished"]
    started = [e["data"]["number"] for e in seen if e["event"] == "trial_started"]
    assert sorted(finished) == sorted(started) == list(range(5))
    epochs = [e for e in seen if e["event"] == "epoch"]
    done = client.get(study["id"])
    assert len(epochs) == sum(t["epochs_run"] for t in client.trials(study["id"], limit=100))
    assert (
        seen[-1]["event"] == "study" and seen[-1]["data"]["state"] == done["state"] == "completed"
    )


def test_events_of_an_unknown_study_are_404(shared_service: LiveService) -> None:
    assert httpx.get(f"{shared_service.url}/api/v1/studies/9999/events").status_code == 404


def test_delete_removes_the_study_and_its_optuna_study(
    client: HpoClient, shared_service: LiveService, make_spec: Callable[..., dict[str, Any]]
) -> None:
    study = client.submit(make_spec(name="doomed", budget={"max_trials": 2, "max_epochs": 2}))
    with pytest.raises(ClientError, match="409.*stop it before deleting"):
        client.delete(study["id"])
    with httpx.Client(base_url=shared_service.url) as http:
        wait_for_study(http, study["id"])
    client.delete(study["id"])
    with pytest.raises(ClientError, match="404"):
        client.get(study["id"])
    storage = optuna.storages.RDBStorage(f"sqlite:///{shared_service.data_dir.parent / 'hpo.db'}")
    try:
        assert study["optuna_study_name"] not in [
            s.study_name for s in optuna.get_all_study_summaries(storage)
        ]
    finally:
        storage.engine.dispose()
    with pytest.raises(ClientError, match="404"):
        client.delete(study["id"])


def test_readyz_reports_database_and_ray(shared_service: LiveService) -> None:
    response = httpx.get(f"{shared_service.url}/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "ray": "ok"}


def test_the_best_checkpoint_reproduces_the_stored_test_accuracy(
    client: HpoClient, shared_service: LiveService, make_spec: Callable[..., dict[str, Any]]
) -> None:
    import io

    import torch

    from workers.data import load_prepared
    from workers.models import build_model
    from workers.spec import BuiltinDataset, SplitSpec

    study = client.submit(make_spec(name="weights", budget={"max_trials": 4, "max_epochs": 4}))
    with httpx.Client(base_url=shared_service.url, timeout=30) as http:
        done = wait_for_study(http, study["id"])
        response = http.get(f"/api/v1/studies/{study['id']}/best/checkpoint")
    assert (
        response.status_code == 200
        and response.headers["content-type"] == "application/octet-stream"
    )
    assert int(response.headers["x-trial-number"]) == done["best"]["number"]
    saved = torch.load(io.BytesIO(response.content), weights_only=True)
    model = build_model(
        saved["model"], tuple(saved["sample_shape"]), saved["n_outputs"], saved["params"]
    )
    model.load_state_dict(saved["state_dict"])
    model.eval()
    fold = load_prepared(BuiltinDataset(source="builtin", name="digits"), SplitSpec()).folds[0]
    with torch.no_grad():
        predicted = model(torch.tensor(fold.x_test)).argmax(dim=1)
    accuracy = float((predicted == torch.tensor(fold.y_test)).float().mean())
    assert accuracy == pytest.approx(done["best"]["test_metrics"]["test_accuracy"], abs=1e-6)
    artifacts = list((shared_service.data_dir / "artifacts" / f"study-{study['id']}").glob("*.pt"))
    assert [p.name for p in artifacts] == [f"trial-{done['best']['number']}.pt"]


def test_no_checkpoint_before_a_complete_trial_is_404(
    client: HpoClient, shared_service: LiveService
) -> None:
    with httpx.Client(base_url=shared_service.url, timeout=30) as http:
        assert http.get("/api/v1/studies/9999/best/checkpoint").status_code == 404


def test_metrics_count_trials_epochs_states_and_latencies(
    client: HpoClient, shared_service: LiveService, make_spec: Callable[..., dict[str, Any]]
) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(f"{shared_service.url}/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    before = scrape()
    study = client.submit(make_spec(name="metered", budget={"max_trials": 3, "max_epochs": 2}))
    with httpx.Client(base_url=shared_service.url, timeout=30) as http:
        wait_for_study(http, study["id"])
    trials = client.trials(study["id"], limit=100)
    after = scrape()

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("hpo_trials_started_total") == 3
    finished = sum(
        grew("hpo_trials_finished_total", state=s) for s in ("complete", "pruned", "failed")
    )
    assert finished == 3 and after[("hpo_trials_running", ())] == 0
    assert grew("hpo_epochs_trained_total") == sum(t["epochs_run"] for t in trials)
    assert grew("hpo_optuna_ask_seconds_count") == 3 and grew("hpo_optuna_tell_seconds_count") == 3
    assert after[("hpo_studies", (("state", "completed"),))] >= 1
    assert ("hpo_queue_depth", ()) in after
    # The scheduler: one wait per slot granted, idle slots kept warm by shape afterwards.
    assert grew("hpo_queue_wait_seconds_count") == 3
    assert after[("hpo_slots", (("shape", "1cpu-0gpu"), ("state", "idle")))] >= 1
    assert ("hpo_slots", (("shape", "1cpu-0gpu"), ("state", "busy"))) not in after
    assert after[("hpo_tenant_slots", (("tenant", "default"),))] == 0
    assert after[("hpo_queue_length", ())] == 0
    route = (("method", "GET"), ("route", "/api/v1/studies/{study_id}"), ("status", "200"))
    assert after[("hpo_http_request_seconds_count", route)] >= 1
