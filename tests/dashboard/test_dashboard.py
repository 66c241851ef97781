"""The dashboard in a real browser against a live service: lists, charts, live progress, stop."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service, wait_for_study
from tests.dashboard.helpers import (
    chart_traces,
    is_round_log_scale,
    is_round_scale,
    row_numbers,
    screenshot,
    seconds_shown,
)

pytestmark = [pytest.mark.browser, pytest.mark.ray]

# Keeps the best 40% at each epoch after 3 complete trials: some trials complete, most prune.
PRUNER = {"type": "percentile", "percentile": 40, "n_startup_trials": 3, "n_warmup_epochs": 1}
TWO_OBJECTIVES = [{"metric": "val_accuracy"}, {"metric": "train_seconds"}]
SHORT = {"max_trials": 7, "max_epochs": 3, "parallelism": 2}
TINY = {"max_trials": 3, "max_epochs": 2, "parallelism": 1}
LONG = {"max_trials": 20_000, "max_epochs": 2, "parallelism": 1}  # never finishes here
# Trials that never end here (no divergence, no early stop): their slots stay busy.
ENDLESS = {
    "space": {"lr": {"type": "float", "low": 0.01, "high": 0.05}},
    "params": {"hidden_units": 32, "optimizer": "sgd", "batch_size": 64},
    "pruner": {"type": "none"},
    "early_stopping": {"patience": 10_000},
}


COLOUR = "el => getComputedStyle(el).backgroundColor"
PARCOORDS_TICKS = """() => document.getElementById('chart-parcoords').data[0].dimensions
    .map(d => ({label: d.label, ticktext: d.ticktext || []}))"""


def spec(name: str, **sections: Any) -> dict[str, Any]:
    """FAST_SPEC with whole sections replaced."""
    return {**FAST_SPEC, "name": name, **sections}


@dataclass(frozen=True)
class Live:
    url: str
    http: httpx.Client
    finished: dict[str, Any]
    pareto: dict[str, Any]


def submit(http: httpx.Client, body: dict[str, Any]) -> int:
    created = http.post("/api/v1/studies", json=body)
    assert created.status_code == 201, created.text
    study_id: int = created.json()["id"]
    return study_id


@pytest.fixture(scope="module")
def live(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A service with a finished study (complete and pruned trials) and a finished
    two-objective study."""
    root: Path = tmp_path_factory.mktemp("dashboard")
    settings = Settings(database_url=f"sqlite:///{root / 'hpo.db'}", data_dir=root / "data")
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        finished = submit(http, spec("pruned-search", pruner=PRUNER, budget=SHORT))
        pareto = submit(http, spec("two-objectives", objective=TWO_OBJECTIVES, budget=TINY))
        study = wait_for_study(http, finished)
        assert study["state"] == "completed", study
        assert study["counts"]["complete"] >= 2 and study["counts"]["pruned"] >= 1, study["counts"]
        yield Live(url, http, study, wait_for_study(http, pareto))


@pytest.fixture(scope="module")
def running(live: Live) -> Iterator[int]:
    """A study too long to finish here, one trial at a time, with a trial done already.

    Shared by the live tests (the last of them stops it) so its slot warms up once.
    """
    study_id = submit(live.http, spec("long-search", budget=LONG))
    deadline = time.monotonic() + 60
    while live.http.get(f"/api/v1/studies/{study_id}").json()["counts"]["complete"] < 1:
        assert time.monotonic() < deadline, "the long study finished no trial within 60 s"
        time.sleep(0.2)
    yield study_id
    live.http.post(f"/api/v1/studies/{study_id}/stop")


def test_the_studies_page_lists_a_finished_study(live: Live, page: Any) -> None:
    study = live.finished
    page.goto(live.url)
    row = page.locator(f"[data-testid=study-row][data-study-id='{study['id']}']")
    row.wait_for()
    assert row.get_by_role("link", name=study["name"]).is_visible()
    assert row.locator("[data-testid=state]").inner_text() == "completed"
    done = sum(study["counts"][s] for s in ("complete", "pruned", "failed"))
    assert (
        row.locator("[data-testid=study-done]").inner_text()
        == f"{done}/{study['spec']['budget']['max_trials']}"
    )
    legend = page.locator("[data-testid=progress-legend]")
    items = legend.locator(".legend-item")
    assert items.evaluate_all("els => els.map(e => e.dataset.state)") == [
        "complete",
        "pruned",
        "failed",
        "running",
        "to-run",
    ]
    assert items.all_inner_texts() == ["complete", "pruned", "failed", "running", "not run yet"]
    segments = row.locator("[data-testid=study-progress] .seg").all()
    assert len(segments) == 2  # complete and pruned
    for segment in segments:
        state = segment.get_attribute("class").split("state-bg-")[1]
        swatch = legend.locator(f"[data-state={state}] .swatch")
        assert segment.evaluate(COLOUR) == swatch.evaluate(COLOUR), state
    screenshot(page, "studies")


def test_the_study_page_shows_the_best_trial_first_and_every_chart_with_data(
    live: Live, page: Any
) -> None:
    study = live.finished
    api = f"/api/v1/studies/{study['id']}"
    best = live.http.get(f"{api}/best").json()["items"][0]
    page.goto(f"{live.url}/studies/{study['id']}")
    page.locator("[data-testid=trial-row]").first.wait_for()
    assert (
        page.locator("[data-testid=optuna-study-name]").inner_text() == study["optuna_study_name"]
    )
    assert page.locator("[data-testid=study-state]").get_attribute("data-state") == "completed"

    # Best first over every trial (a pruned trial's value counts too), then complete ones only.
    top = live.http.get(f"{api}/trials", params={"order": "best", "limit": 1}).json()["items"][0]
    assert first_row(page) == (top["number"], pytest.approx(top["value"], rel=1e-3))
    page.locator("[data-testid=trial-state-filter]").select_option("complete")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=trial-row] [data-testid=state]')]"
        ".every(s => s.textContent === 'complete')"
    )
    assert first_row(page) == (best["number"], pytest.approx(best["value"], rel=1e-3))

    history = chart_traces(page, "chart-history")
    assert history[0]["x"] and history[0]["y"] and history[-1]["name"] == "best so far"
    assert len(history[0]["x"]) == study["counts"]["complete"]
    importance = chart_traces(page, "chart-importance")
    assert importance[0]["type"] == "bar" and importance[0]["x"] and importance[0]["y"]
    parcoords = chart_traces(page, "chart-parcoords")[0]
    assert parcoords["type"] == "parcoords"
    assert {d["label"] for d in parcoords["dimensions"]} >= {"optimizer", "val_accuracy"}
    assert all(d["n"] == study["counts"]["complete"] for d in parcoords["dimensions"])
    curves = chart_traces(page, "chart-curves")
    assert all(c["x"] and c["y"] for c in curves)
    assert any(c["name"].endswith("(pruned)") for c in curves)
    assert f"#{best['number']}" in [c["name"] for c in curves]
    assert_curves_zoom_to_the_top_trials(live, page, study["id"])
    numeric = {d["label"]: d["ticktext"] for d in page.evaluate(PARCOORDS_TICKS)}
    assert is_round_log_scale([float(t) for t in numeric["lr (log)"]]), numeric
    for label in ("momentum", "val_accuracy"):
        assert is_round_scale([float(t) for t in numeric[label] if t != "n/a"]), numeric
    screenshot(page, "study")


def assert_curves_zoom_to_the_top_trials(live: Live, page: Any, study_id: int) -> None:
    """The y-axis spans the best half of the complete curves (at least 3, at most 5), when
    that at least halves the span of every curve drawn; worse curves then run off the chart."""
    curves = live.http.get(
        f"/api/v1/studies/{study_id}/curves", params={"top": 10, "pruned": 10}
    ).json()["items"]
    complete = sorted(
        (c for c in curves if c["state"] == "complete"), key=lambda c: c["value"], reverse=True
    )
    top = complete[: min(5, max(3, -(-len(complete) // 2)))]
    lo, hi = span(v for c in top for v in c["values"])
    low, high = span(v for c in curves for v in c["values"])
    y0, y1 = page.evaluate("() => document.getElementById('chart-curves').layout.yaxis.range")
    assert y0 <= lo and hi <= y1, ((y0, y1), (lo, hi))
    zoomed = 2 * (hi - lo) < high - low
    assert page.locator("[data-testid=curves-zoom]").is_visible() == zoomed
    assert (y0 > low or y1 < high) == zoomed, ((y0, y1), (low, high))


def span(values: Iterable[float | None]) -> tuple[float, float]:
    finite = [v for v in values if v is not None]
    return min(finite), max(finite)


def first_row(page: Any) -> tuple[int, float]:
    """The trials table's first row: its trial number and the value shown."""
    row = page.locator("[data-testid=trial-row]").first
    value = float(row.locator("[data-testid=trial-value]").inner_text())
    return int(row.get_attribute("data-number")), value


def test_the_trials_table_sorts_filters_and_opens_a_trial(live: Live, page: Any) -> None:
    study = live.finished
    page.goto(f"{live.url}/studies/{study['id']}")
    page.locator("[data-testid=trial-row]").first.wait_for()

    page.locator("[data-testid=sort-number]").click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=trial-row]').dataset.number === '0'"
    )
    assert row_numbers(page) == sorted(row_numbers(page))
    page.locator("[data-testid=trial-state-filter]").select_option("pruned")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=trial-row] [data-testid=state]')]"
        ".every(s => s.textContent === 'pruned')"
    )
    assert len(row_numbers(page)) == study["counts"]["pruned"]

    pruned = row_numbers(page)[0]
    page.locator(f"[data-testid=trial-row][data-number='{pruned}'] td").nth(2).click()
    page.wait_for_function(
        "() => document.getElementById('curves-note').textContent.includes('selected')"
    )
    page.wait_for_function(  # the chart redraws once the picked trial's curve arrives
        f"() => document.getElementById('chart-curves').dataset.shows === '{pruned}'"
    )
    assert [c["name"] for c in chart_traces(page, "chart-curves")] == [f"#{pruned} (pruned)"]
    assert page.locator("[data-testid=curves-zoom]").is_hidden()  # a picked trial shows whole

    page.locator(
        f"[data-testid=trial-row][data-number='{pruned}'] [data-testid=trial-link]"
    ).click()
    page.wait_for_url(f"**/studies/{study['id']}/trials/{pruned}")
    detail = page.locator("[data-testid=trial-detail]")
    detail.locator("[data-testid=trial-params]").wait_for()
    assert "pruned" in detail.inner_text()
    trial = live.http.get(f"/api/v1/studies/{study['id']}/trials/{pruned}").json()
    assert trial["device"] == "cpu"  # where it trained: this suite's slots have no GPU
    assert detail.locator("[data-testid=trial-device]").inner_text() == trial["device"]
    curve = chart_traces(page, "chart-trial")
    assert {"train_loss", "val_loss", "val_accuracy"} <= {t["name"] for t in curve}
    epochs_run = live.http.get(f"/api/v1/studies/{study['id']}/trials/{pruned}").json()[
        "epochs_run"
    ]
    assert all(len(t["x"]) == epochs_run for t in curve)
    assert_epochs_table_shows_real_seconds(live, page, study["id"], pruned)
    right = [float(t) for t in page.locator("#chart-trial .y2tick text").all_text_contents()]
    assert is_round_scale(sorted(right)), right
    screenshot(page, "trial")
    page.locator("[data-testid=trial-close]").click()
    page.wait_for_url(f"**/studies/{study['id']}")
    assert detail.is_hidden()
    assert page.locator("[data-testid=trial-state-filter]").input_value() == "pruned"  # not rebuilt


def assert_epochs_table_shows_real_seconds(
    live: Live, page: Any, study_id: int, number: int
) -> None:
    """Each epoch's seconds as measured (an epoch here takes milliseconds, which once read
    `0.0 s`), and n_params as the integer it is."""
    epochs = live.http.get(f"/api/v1/studies/{study_id}/trials/{number}").json()["epochs"]
    table = page.locator("[data-testid=trial-epochs]")
    shown = table.locator("td[data-key=seconds]").all_inner_texts()
    assert len(shown) == len(epochs)
    for text, epoch in zip(shown, epochs, strict=True):
        assert seconds_shown(text) == pytest.approx(epoch["seconds"], rel=0.06), (text, epoch)
    assert table.locator("td[data-key=n_params]").all_inner_texts() == [
        str(e["n_params"]) for e in epochs
    ]


def test_the_pareto_front_is_drawn_for_two_objectives(live: Live, page: Any) -> None:
    study = live.pareto
    front = live.http.get(f"/api/v1/studies/{study['id']}/best", params={"k": 1000}).json()
    page.goto(f"{live.url}/studies/{study['id']}")
    traces = {t["name"]: t for t in chart_traces(page, "chart-pareto")}
    assert len(traces["Pareto front"]["x"]) == len(front["items"]) >= 1
    assert (
        len(traces["Pareto front"]["x"]) + len(traces["trials"]["x"]) == study["counts"]["complete"]
    )
    screenshot(page, "pareto")


def test_a_running_study_progresses_without_a_reload(live: Live, page: Any, running: int) -> None:
    page.goto(f"{live.url}/studies/{running}")
    done = page.locator("[data-testid=done-count]")
    done.wait_for()
    page.evaluate("() => { window.__sameDocument = true; }")
    before = int(done.inner_text())
    page.wait_for_function(
        "n => Number(document.querySelector('[data-testid=done-count]').textContent) > n",
        arg=before,
        timeout=30_000,
    )
    assert page.evaluate("() => window.__sameDocument === true"), "the page reloaded"
    assert page.locator("[data-testid=live-indicator]").is_visible()
    screenshot(page, "study-running")


def test_pause_then_resume_continues_the_trial_and_shows_its_runs(live: Live, page: Any) -> None:
    study_id = submit(
        live.http,
        {
            **spec("pausable", budget={"max_trials": 1, "max_epochs": 1000, "parallelism": 1}),
            **ENDLESS,
        },
    )
    deadline = time.monotonic() + 60
    while not [
        t
        for t in live.http.get(f"/api/v1/studies/{study_id}/trials").json()["items"]
        if t["epochs_run"] >= 1
    ]:
        assert time.monotonic() < deadline, "the trial trained no epoch within 60 s"
        time.sleep(0.2)
    try:
        page.goto(f"{live.url}/studies/{study_id}")
        pause = page.locator("[data-testid=pause-button]")
        page.locator("[data-testid=study-state][data-state=running]").wait_for()
        pause.click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=study-state]').dataset.state === 'paused'"
        )
        study = live.http.get(f"/api/v1/studies/{study_id}").json()
        assert study["state"] == "paused" and study["counts"]["waiting"] == 1, study
        assert pause.is_disabled() and page.locator("[data-testid=stop-button]").is_disabled()
        paused = live.http.get(f"/api/v1/studies/{study_id}/trials/0").json()

        page.locator("[data-testid=resume-button]").click()
        page.wait_for_function(
            "() => document.querySelector('[data-testid=study-state]').dataset.state === 'running'"
        )
        page.goto(f"{live.url}/studies/{study_id}/trials/0")
        runs = page.locator("[data-testid=trial-attempt]")
        runs.nth(1).wait_for()
        first = runs.first.locator("td").all_text_contents()
        assert first[2:] == ["0", str(paused["epochs_run"]), "paused"], first
        assert runs.nth(1).locator("td").all_text_contents()[2] == str(paused["epochs_run"])
        screenshot(page, "trial-runs")
    finally:
        # Paused, not stopped: its slot stays warm (idle) for the tests after this one.
        live.http.post(f"/api/v1/studies/{study_id}/pause")
        wait_for_study(live.http, study_id, timeout_s=30)


def test_the_stop_button_stops_a_running_study(live: Live, page: Any, running: int) -> None:
    page.goto(f"{live.url}/studies/{running}")
    stop = page.locator("[data-testid=stop-button]")
    stop.wait_for()
    assert stop.is_enabled()
    stop.click()
    page.wait_for_function(
        "() => document.querySelector('[data-testid=study-state]').dataset.state === 'stopped'"
    )
    assert live.http.get(f"/api/v1/studies/{running}").json()["state"] == "stopped"
    assert page.locator("[data-testid=resume-button]").is_enabled()
    screenshot(page, "study-stopped")


def test_the_cluster_page_shows_the_nodes_and_the_slots_studies_left(live: Live, page: Any) -> None:
    page.goto(live.url)
    page.locator("[data-testid=cluster-link]").click()
    page.wait_for_url("**/cluster")
    rows = page.locator("[data-testid=node-row]")
    rows.first.wait_for()
    nodes = live.http.get("/api/v1/cluster").json()["nodes"]
    # The session's Ray cluster: 3 alive (a node another test removed stays listed, lost).
    assert sum(n["alive"] for n in nodes) == 3
    assert sorted(rows.evaluate_all("rows => rows.map(r => r.dataset.nodeId)")) == sorted(
        n["node_id"] for n in nodes
    )
    assert rows.locator("td:nth-child(2)").all_inner_texts() == [
        "alive" if n["alive"] else "lost" for n in nodes
    ]
    assert (
        "3 nodes alive · 5 CPUs · 1 GPU in all"
        in page.locator("[data-testid=cluster-summary]").inner_text()
    )

    # The finished studies' slots stay warm (idle) for the next study.
    slots = live.http.get("/api/v1/cluster").json()["slots"]
    assert slots and all(s["state"] == "idle" for s in slots), slots
    page.wait_for_function(
        "ids => JSON.stringify([...document.querySelectorAll('[data-testid=slot-row]')]"
        ".map(r => Number(r.dataset.slotId))) === JSON.stringify(ids)",
        arg=[s["slot_id"] for s in slots],
    )
    assert (
        page.locator("[data-testid=queue-table]")
        .inner_text()
        .endswith("No study waits for a slot.")
    )


@pytest.fixture
def crowded(live: Live) -> Iterator[tuple[int, int]]:
    """A study holding 4 of the cluster's 5 CPUs with endless 1-CPU trials, and one whose
    2-CPU trials fit nowhere until they end: it stays queued, first in line."""
    hog = submit(
        live.http, spec("hog", budget={**LONG, "parallelism": 4, "max_epochs": 10_000}, **ENDLESS)
    )
    big = 0
    try:
        deadline = time.monotonic() + 60
        while not _training_on_all(live.http.get(f"/api/v1/studies/{hog}").json(), 4):
            assert time.monotonic() < deadline, "the hog got no 4 slots within 60 s"
            time.sleep(0.1)
        big = submit(
            live.http, spec("needs-a-node", resources={"cpus_per_trial": 2}, priority=2, **ENDLESS)
        )
        yield hog, big
    finally:
        for study_id in (hog, big):
            if study_id:
                live.http.post(f"/api/v1/studies/{study_id}/stop")


def _training_on_all(study: dict[str, Any], n_slots: int) -> bool:
    return study["state"] == "running" and study["slots_held"] == n_slots


def test_a_queued_study_shows_its_place_on_every_page(
    live: Live, page: Any, crowded: tuple[int, int]
) -> None:
    hog, big = crowded
    queued = live.http.get(f"/api/v1/studies/{big}").json()
    assert (queued["state"], queued["queue_position"], queued["slots_held"]) == ("queued", 1, 0)

    page.goto(live.url)
    row = page.locator(f"[data-testid=study-row][data-study-id='{big}']")
    row.locator("[data-testid=queue-position]").wait_for()
    assert row.locator("[data-testid=state]").inner_text() == "queued"
    assert row.locator("[data-testid=queue-position]").inner_text() == "#1"
    assert row.locator("[data-testid=study-slots]").inner_text() == "0/2"
    hog_row = page.locator(f"[data-testid=study-row][data-study-id='{hog}']")
    assert hog_row.locator("[data-testid=study-slots]").inner_text() == "4/4"
    screenshot(page, "studies-queued")

    page.goto(f"{live.url}/studies/{big}")
    page.locator("[data-testid=study-queue-position]").wait_for()
    assert page.locator("[data-testid=study-queue-position]").inner_text() == "#1"
    assert page.locator("[data-testid=study-priority]").inner_text() == "2"
    assert page.locator("[data-testid=study-slots]").inner_text() == "0/2"
    assert page.locator("[data-testid=study-waiting-since]").inner_text() != "–"
    screenshot(page, "study-queued")

    page.goto(f"{live.url}/cluster")
    first = page.locator("[data-testid=queue-row]").first
    first.wait_for()
    assert (first.get_attribute("data-position"), first.get_attribute("data-study-id")) == (
        "1",
        str(big),
    )
    assert first.locator("[data-testid=queue-study]").inner_text() == f"#{big} needs-a-node"
    assert "2 CPUs" in first.inner_text()
    busy = page.locator("[data-testid=slot-row][data-state=busy] [data-testid=slot-study]")
    assert busy.all_inner_texts() == [f"#{hog} hog"] * 4
    screenshot(page, "cluster")


def test_a_pbt_members_page_shows_its_schedule_and_whom_it_copied(live: Live, page: Any) -> None:
    from tests.service.test_population import pbt_spec

    study = wait_for_study(live.http, submit(live.http, pbt_spec("population")), timeout_s=120)
    members = live.http.get(f"/api/v1/studies/{study['id']}/trials").json()["items"]
    member = next(m for m in members if m["lineage"])
    page.goto(f"{live.url}/studies/{study['id']}/trials/{member['number']}")
    pieces = page.locator("[data-testid=schedule-piece]")
    pieces.first.wait_for()
    assert pieces.count() == len(member["schedule"]) == len(member["lineage"]) + 1
    first = pieces.first.locator("td").all_text_contents()
    assert first[:2] == ["1", "own draw"], first
    copy = member["lineage"][0]
    second = pieces.nth(1).locator("td").all_text_contents()
    assert second[:2] == [
        str(copy["epoch"] + 1),
        f"trial {copy['copied']} @{copy['copied_epoch']}",
    ], second
    screenshot(page, "trial-schedule")
    # The study page draws the whole population, with a star at every copy.
    page.goto(f"{live.url}/studies/{study['id']}")
    page.wait_for_function(
        "() => (document.getElementById('chart-curves')?.data || []).some(t => t.name === 'copies')"
    )
    traces = chart_traces(page, "chart-curves")
    assert sorted(t["name"] for t in traces if t["name"] != "copies") == [f"#{n}" for n in range(4)]
    stars = next(t for t in traces if t["name"] == "copies")
    n_copies = sum(len(m["lineage"]) for m in members)
    assert len(stars["x"]) == n_copies
    assert "4 members" in page.locator("[data-testid=curves-note]").inner_text()
    screenshot(page, "study-population")
