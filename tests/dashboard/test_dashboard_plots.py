"""The study page's plots in a real browser: parallel coordinates keep pace with the other
charts while a study runs, and Plotly's modebar covers nothing any plot draws."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.settings import Settings
from tests.conftest import FAST_SPEC, running_service, wait_for_study
from tests.dashboard.helpers import chart_traces, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.ray]

N_TRIALS = 30
# One trial at a time, 12 epochs each (no early stop): it runs for several refreshes here.
THIRTY = {"max_trials": N_TRIALS, "max_epochs": 12, "parallelism": 1}
NO_EARLY_STOP = {"patience": 1000}
TWO_OBJECTIVES = [{"metric": "val_accuracy"}, {"metric": "train_seconds"}]
PARCOORDS_SAMPLE = "trials?state=complete&order=best&limit=500"

# Logs, in order, the requests for the history's and the parallel coordinates' data (a refresh
# asks for both at once, in that order), the replies of the latter, and the figures Plotly
# draws, with how many trials each holds (history: a point a trial; parcoords: a line a trial).
RECORDER = """(() => {
  const log = window.__plots = [];
  const fetched = window.fetch.bind(window);
  window.fetch = async (url, ...rest) => {
    const kind = /\\/history\\?/.test(url) ? 'history'
      : String(url).includes('__SAMPLE__') ? 'sample' : null;
    if (kind) log.push({ kind });
    const response = await fetched(url, ...rest);
    if (kind === 'sample' && response.ok) {
      response.clone().json().then((body) => log.push({ kind: 'sample-reply', n: body.items.length }));
    }
    return response;
  };
  let plotly;
  Object.defineProperty(window, 'Plotly', { configurable: true, get: () => plotly, set: (p) => {
    plotly = p;
    const react = p.react.bind(p);
    p.react = (div, traces, ...rest) => {
      const first = (traces || [])[0];
      const n = !first ? 0 : first.type === 'parcoords'
        ? first.dimensions[0].values.length : (first.x || []).length;
      log.push({ kind: 'draw', chart: div.id, n });
      return react(div, traces, ...rest);
    };
  } });
})()""".replace("__SAMPLE__", PARCOORDS_SAMPLE)

# What a plot draws that the modebar could hide: bars, legend entries and every text (axis
# titles, tick labels, parallel axes' labels, the colour bar's title), as page boxes.
COVERABLE = """div => [...div.querySelectorAll(
    '.barlayer .point path, .legend .traces, svg text')]
  .filter(el => !el.closest('.hoverlayer'))  // the tooltip under the mouse
  .map(el => ({ what: el.getAttribute('class') || el.tagName, text: el.textContent,
                box: el.getBoundingClientRect().toJSON() }))
  .filter(({ box }) => box.width > 0 && box.height > 0)"""


@dataclass(frozen=True)
class Live:
    url: str
    http: httpx.Client
    pareto_id: int


@pytest.fixture(scope="module")
def live(ray_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A service with a finished two-objective study (for the Pareto chart)."""
    root: Path = tmp_path_factory.mktemp("plots")
    settings = Settings(database_url=f"sqlite:///{root / 'hpo.db'}", data_dir=root / "data")
    with running_service(settings) as url, httpx.Client(base_url=url, timeout=30) as http:
        body = {
            **FAST_SPEC,
            "name": "two-objectives",
            "objective": TWO_OBJECTIVES,
            "budget": {"max_trials": 3, "max_epochs": 2, "parallelism": 1},
        }
        pareto_id = submit(http, body)
        wait_for_study(http, pareto_id)
        yield Live(url, http, pareto_id)


@pytest.fixture(scope="module")
def thirty(live: Live) -> dict[str, int]:
    """The 30-trial study's id, filled by the first test, which watches it run."""
    return {}


def submit(http: httpx.Client, body: dict[str, Any]) -> int:
    created = http.post("/api/v1/studies", json=body)
    assert created.status_code == 201, created.text
    study_id: int = created.json()["id"]
    return study_id


def test_parallel_coordinates_are_redrawn_in_every_refresh_while_a_study_runs(
    live: Live, thirty: dict[str, int], page: Any
) -> None:
    page.add_init_script(RECORDER)
    study_id = submit(
        live.http,
        {**FAST_SPEC, "name": "thirty", "budget": THIRTY, "early_stopping": NO_EARLY_STOP},
    )
    thirty["id"] = study_id
    page.goto(f"{live.url}/studies/{study_id}")
    study = wait_for_study(live.http, study_id)
    assert study["counts"]["complete"] == N_TRIALS, study["counts"]
    page.locator("[data-testid=study-state][data-state=completed]").wait_for()
    page.wait_for_function(
        """n => window.__plots.some(e => e.kind === 'draw' && e.chart === 'chart-parcoords'
                                         && e.n === n)""",
        arg=N_TRIALS,
    )
    log: list[dict[str, Any]] = page.evaluate("() => window.__plots")

    kinds = [e["kind"] for e in log if e["kind"] in ("history", "sample")]
    assert kinds.count("history") >= 3, f"too few refreshes while the study ran to tell: {log}"
    # Each refresh asks for both: no two history requests without a parcoords one between.
    assert "history,history" not in ",".join(kinds), log
    # And every new sample with lines to draw is drawn.
    samples = [e["n"] for e in log if e["kind"] == "sample-reply"]
    drawn = {e["n"] for e in log if e["kind"] == "draw" and e["chart"] == "chart-parcoords"}
    assert {n for n in samples if n >= 2} <= drawn, log


def test_the_modebar_covers_nothing_on_any_plot(
    live: Live, thirty: dict[str, int], page: Any
) -> None:
    study_id = thirty.get("id")
    if study_id is None:
        pytest.skip("needs the 30-trial study of the test before")
    pages = {
        f"/studies/{study_id}/trials/0": ["history", "importance", "curves", "parcoords", "trial"],
        f"/studies/{live.pareto_id}": ["pareto"],
    }
    for path, charts in pages.items():
        page.goto(f"{live.url}{path}")
        for chart in charts:
            chart_id = f"chart-{chart}"
            chart_traces(page, chart_id)  # drawn, with data
            div = page.locator(f"#{chart_id}")
            div.scroll_into_view_if_needed()
            div.hover()
            modebar = div.locator(".modebar")
            modebar.wait_for()
            page.wait_for_function(
                "el => getComputedStyle(el).opacity === '1'", arg=modebar.element_handle()
            )
            bar = modebar.bounding_box()
            assert bar is not None and bar["width"] > 0
            covered = [
                item
                for item in page.evaluate(COVERABLE, div.element_handle())
                if overlaps(bar, item["box"])
            ]
            assert not covered, (chart, bar, covered)
        screenshot(page, f"plots-modebar-{path.strip('/').replace('/', '-')}")


def overlaps(a: dict[str, float], b: dict[str, float]) -> bool:
    """Whether two boxes ({x, y, width, height}) share more than an edge."""
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )
