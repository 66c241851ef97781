"""What the dashboard tests ask of a page: Plotly's data on a chart, screenshots, table rows,
and how to read what it shows (durations, tick labels)."""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"

_TRACES = """id => (document.getElementById(id).data || []).map(t => ({
    type: t.type || 'scatter', name: t.name || null,
    x: Array.from(t.x || []), y: Array.from(t.y || []),
    dimensions: (t.dimensions || []).map(d => ({label: d.label, n: (d.values || []).length})),
}))"""
_DRAWN = """id => {
    const div = document.getElementById(id);
    return Boolean(div && div.data && div.data.length && !div.classList.contains('empty-chart'));
}"""


def screenshot(page: Any, name: str) -> None:
    """Save a full-page screenshot under test-artifacts/dashboard/ for a person to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def chart_traces(page: Any, chart_id: str) -> list[dict[str, Any]]:
    """The traces Plotly drew in `chart_id`, once it holds data (not an empty-state message)."""
    page.wait_for_function(_DRAWN, arg=chart_id)
    traces: list[dict[str, Any]] = page.evaluate(_TRACES, chart_id)
    return traces


def row_numbers(page: Any) -> list[int]:
    """The trial numbers of the trials table's rows, top to bottom."""
    rows = page.locator("[data-testid=trial-row]")
    return [int(n) for n in rows.evaluate_all("rows => rows.map(r => r.dataset.number)")]


def seconds_shown(text: str) -> float:
    """The seconds a duration cell such as `35 ms` or `1.23 s` says."""
    number, unit = text.split()
    return float(number) / {"ms": 1e3, "s": 1.0}[unit]


def is_round_scale(ticks: list[float]) -> bool:
    """Whether ticks step evenly by 1, 2 or 5 times a power of ten, each a multiple of it."""
    if len(ticks) < 2:
        return False
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    even = all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in itertools.pairwise(ticks))
    whole = all(abs(t / step - round(t / step)) < 1e-6 for t in ticks)
    return even and whole and any(math.isclose(mantissa, m) for m in (1, 2, 5))


def is_round_log_scale(ticks: list[float]) -> bool:
    """Whether each tick of a log axis is 1, 2 or 5 times a power of ten."""
    mantissas = [t / 10 ** math.floor(math.log10(t) + 1e-9) for t in ticks]
    return len(ticks) >= 2 and all(any(math.isclose(m, r) for r in (1, 2, 5)) for m in mantissas)
