"""What the dashboard tests ask of a page: Plotly's data on a chart, screenshots, table rows."""

from __future__ import annotations

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
