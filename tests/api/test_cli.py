"""The `hpo` CLI as a user runs it: a real process talking real HTTP to a live service."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.ray


def hpo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=timeout,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )  # fmt: skip


def test_submit_wait_prints_progress_and_the_best_trial(
    sqlite_service_url: str, make_spec: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    study_file = tmp_path / "study.yaml"
    study_file.write_text(yaml.safe_dump(make_spec(name="cli-study")))
    result = hpo("submit", str(study_file), "--wait", "--url", sqlite_service_url)
    assert result.returncode == 0, result.stderr
    assert "study 1 'cli-study' submitted" in result.stdout
    assert "completed (max_trials)" in result.stdout
    assert "4/4 trials" in result.stdout

    listed = hpo("studies", "--json", "--url", sqlite_service_url)
    assert listed.returncode == 0, listed.stderr
    (study,) = json.loads(listed.stdout)
    assert study["name"] == "cli-study" and study["state"] == "completed"

    best = hpo("best", "1", "--k", "2", "--json", "--url", sqlite_service_url)
    assert best.returncode == 0, best.stderr
    trials = json.loads(best.stdout)["best"]
    assert len(trials) == 2 and trials[0]["value"] >= trials[1]["value"]
    assert trials[0]["value"] == study["best"]["value"]


def test_a_bad_spec_file_exits_non_zero_naming_the_field(
    sqlite_service_url: str, tmp_path: Path
) -> None:
    study_file = tmp_path / "bad.yaml"
    study_file.write_text("name: bad\nbudget: {max_trials: 0}\n")
    result = hpo("submit", str(study_file), "--url", sqlite_service_url)
    assert result.returncode == 1
    assert "budget.max_trials" in result.stderr


def test_a_missing_file_exits_non_zero_with_one_line() -> None:
    result = hpo("submit", "/nonexistent/study.yaml", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    assert "cannot read /nonexistent/study.yaml" in result.stderr


def test_a_service_that_is_down_gives_one_clear_line() -> None:
    result = hpo("best", "1", "--url", "http://127.0.0.1:9")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot reach the service at http://127.0.0.1:9" in lines[0]
